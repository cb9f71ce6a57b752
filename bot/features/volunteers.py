"""!volunteer: a pool of ready-to-go volunteers shared between groups, matched by command.

Profiles live only in DMs (the profile commands are ``personal``: redacted once
stored, answered by DM). Groups ask in their own room; offers go by DM with an
expiry; places are taken atomically (storage.volunteers.take_place). A host
learns a volunteer's Matrix id only when they accept, and about DBS only that
they "meet the DBS requirement". Reminders are sweeps over rows, keyed by an
outbox dedupe key, so a sweep run twice or late sends each reminder once.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, AskFor, CommandError, Param, Role, Where
from bot.commands.values import (
    AreaValue,
    Choice,
    DateValue,
    Decimal,
    Integer,
    ListOf,
    Person,
    Ref,
    Text,
    Window,
    YesNo,
)
from bot.commands.when import describe_date, describe_window
from bot.features import availability
from bot.features.matching import (
    DBS_LEVELS,
    MAX_RADIUS_KM,
    Need,
    SkillError,
    candidates,
    dbs_rank,
    haversine_km,
    normalise_skills,
    offers_to_make,
    rank,
    refusal,
    skill_bits,
    skill_label,
)
from bot.scheduler import Job
from storage import groups, outbox
from storage import volunteers as store
from storage.groups import Group
from storage.outbox import Attachment
from storage.volunteers import Volunteer, VolunteerOffer, VolunteerRequest

if TYPE_CHECKING:
    from bot.host import Host

DEFAULT_RADIUS_KM = 10.0
OFFER_TTL = timedelta(hours=24)
# No official DBS expiry exists; re-checking every 3 years is common policy (notes/domain.md).
RECHECK_YEARS = 3
RECHECK_REMINDER_DAYS = (7, 30, 60)
NUDGE_AFTER = timedelta(days=90)
QUIET_FROM, QUIET_UNTIL = time(21), time(8)
REQUESTS_PER_DAY = 3

_REFUSALS = {
    "not free then": "your availability doesn't cover that time",
    "DBS level too low": "it needs a DBS check you haven't recorded",
    "DBS re-check due": "your DBS re-check falls before it",
    "too far": "it's outside your travel radius",
    "paused": "your profile is paused then",
    "not shared with this group": "it's for that group's own volunteers",
}

SKILLS = ListOf(Text(max_length=40))
AVAILABILITY = Text(max_length=200)
DBS = Choice(DBS_LEVELS)
WORKFORCE = Choice(("child", "adult", "both"))


def _profile_params(required: bool) -> list[Param]:
    return [
        Param("skills", SKILLS, required=required,
              ask="Which skills? (e.g. communication, practical, driving)"),
        Param("area", AreaValue(), required=required,
              ask="Which area are you based in? (a name like Wisbech, or a GSS code)"),
        Param("radius", Decimal(minimum=0.5, maximum=MAX_RADIUS_KM), required=False,
              help="km you'll travel (default 10)"),
        Param("availability", AVAILABILITY, required=required,
              ask=f"When are you usually free? ({availability.FORMS})"),
        Param("dbs", DBS, required=False),
        Param("dbs_workforce", WORKFORCE, required=False,
              ask="Which workforce was your enhanced DBS check for? (child|adult|both)"),
        Param("dbs_checked", DateValue(), required=False,
              ask="When was your DBS certificate issued? (a date)"),
        Param("update_service", YesNo(), required=False),
        Param("group", Ref("G"), required=False),
        Param("share", YesNo(), required=False),
    ]


# -- small pure helpers -------------------------------------------------------------------


def quiet_until(now: datetime, tz: ZoneInfo) -> datetime:
    """When a DM queued now may go out: at once, or at 08:00 if it is 21:00-08:00 local."""
    local = now.astimezone(tz)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return now
    day = local.date() + timedelta(days=1) if local.time() >= QUIET_FROM else local.date()
    return datetime.combine(day, QUIET_UNTIL, tzinfo=tz)


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def need_of(req: VolunteerRequest, group: Group) -> Need:
    return Need(group_id=req.group_id, group_verified=group.verified, starts_at=req.starts_at,
                slots=req.slots, lat=req.lat, lon=req.lon, dbs_level=req.dbs_level,
                skill_mask=skill_bits(req.skills or ()))


def _when(app: Host, req: VolunteerRequest) -> str:
    tz = app.settings.bot.tz
    return describe_window(req.starts_at.astimezone(tz), req.ends_at.astimezone(tz))


def _at(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{describe_date(local.date())} {local:%H:%M}"


def _skills_text(keys: list[str]) -> str:
    return ", ".join(skill_label(k) for k in keys) or "none given"


async def queue_dm(app: Host, session: AsyncSession, now: datetime, user_id: str,
                   body: str, *, dedupe_key: str | None = None,
                   attachment: Attachment | None = None) -> bool:
    """A DM the bot sends on its own: held until 08:00 when it is night where people live."""
    if user_id == store.FORGOTTEN:
        return False
    row = await outbox.enqueue(
        session, now=now, to_user=user_id, body=body, kind="volunteer",
        dedupe_key=dedupe_key, attachment=attachment,
        not_before=quiet_until(now, app.settings.bot.tz),
    )
    app.queued()
    return row is not None


# -- profiles -----------------------------------------------------------------------------


async def _apply(ctx: Context, v: Volunteer, args: Args) -> None:
    """Copy the given options onto the profile, checking each; raises before any partial use."""
    areas = ctx.app.areas
    if args.skills is not None:
        try:
            v.skills = normalise_skills(args.skills)
        except SkillError as exc:
            raise CommandError(f"skills: {exc}.") from None
        v.skill_mask = skill_bits(v.skills)
    if args.area is not None:
        area = areas.get(args.area)
        if area.lat is None or area.lon is None:
            raise CommandError(
                f"area: {areas.label(area.code)} is too big to measure distance from; "
                "give your town or parish, e.g. area=Wisbech."
            )
        v.area_code, v.lat, v.lon = area.code, area.lat, area.lon
    if args.radius is not None:
        v.radius_km = float(args.radius)
    if args.availability is not None:
        try:
            v.slots = availability.parse_slots(args.availability)
        except availability.SlotError as exc:
            raise CommandError(f"availability: {exc}.") from None
        v.availability_confirmed_at = ctx.now
    if args.share is not None:
        v.share = bool(args.share)
    if args.update_service is not None:
        v.update_service = bool(args.update_service)
    if args.dbs_workforce is not None:
        v.dbs_workforce = args.dbs_workforce
    if args.dbs_checked is not None:
        if args.dbs_checked > ctx.today:
            raise CommandError("dbs_checked: that date is in the future; give the issue date "
                               "printed on the certificate.")
        v.dbs_checked = args.dbs_checked
    if args.dbs is not None:
        v.dbs_level = dbs_rank(args.dbs)
    if v.dbs_level == 0:
        v.dbs_workforce = v.dbs_checked = v.dbs_recheck = None
        v.update_service = False
        return
    if v.dbs_checked is None:
        raise AskFor("dbs_checked")
    if v.dbs_level == DBS_LEVELS.index("enhanced") and v.dbs_workforce is None:
        raise AskFor("dbs_workforce")
    v.dbs_recheck = _add_years(v.dbs_checked, RECHECK_YEARS)
    if v.dbs_recheck <= ctx.today:
        raise CommandError(
            f"dbs_checked: a check from {describe_date(v.dbs_checked)} is past the "
            f"{RECHECK_YEARS}-year re-check; register with dbs=none and add it once renewed."
        )


async def _group_for(ctx: Context, group_id: int | None) -> Group | None:
    if group_id is None:
        return None
    group = await groups.by_id(ctx.session, group_id)
    if group is None:
        raise CommandError(f"There's no group G{group_id}; ask the group for its number "
                           f"({ctx.prefix}group in its room shows it).")
    return group


async def _profile_or_refuse(ctx: Context) -> Volunteer:
    v = await store.profile(ctx.session, ctx.sender.user_id)
    if v is None:
        raise CommandError(
            f"You aren't in the volunteer pool yet. Join with {ctx.prefix}volunteer register "
            "skills=... area=... availability=... (here in our DM)."
        )
    return v


async def _describe_profile(ctx: Context, v: Volunteer) -> str:
    areas = ctx.app.areas
    lines = [
        "Your volunteer profile (only you can see it):",
        f"Skills: {_skills_text(v.skills)}",
        f"Area: {areas.label(v.area_code)}, within {v.radius_km:g} km",
        f"Available: {availability.describe(v.slots)} "
        f"(confirmed {describe_date(v.availability_confirmed_at.astimezone(ctx.tz).date())})",
    ]
    if v.dbs_level and v.dbs_checked and v.dbs_recheck:
        workforce = f" ({v.dbs_workforce} workforce)" if v.dbs_workforce else ""
        lines.append(
            f"DBS: {DBS_LEVELS[v.dbs_level]}{workforce}, issued {describe_date(v.dbs_checked)}, "
            f"re-check due {describe_date(v.dbs_recheck)}; Update Service: "
            f"{'yes' if v.update_service else 'no'}"
        )
    else:
        lines.append("DBS: none recorded")
    names = []
    for gid in await store.group_ids(ctx.session, v.id):
        group = await groups.by_id(ctx.session, gid)
        if group is not None:
            names.append(f"{group.ref} {group.name}")
    lines.append(f"Groups: {'; '.join(names) or 'none'}. Other groups' requests: "
                 f"{'yes' if v.share else 'no'}")
    if v.paused:
        until = (f" until {describe_date(v.paused_until.astimezone(ctx.tz).date())}"
                 if v.paused_until else "")
        lines.append(f"Paused{until} ({ctx.prefix}volunteer resume to take offers again)")
    return "\n".join(lines)


@commands.command(
    "volunteer register", summary="join the volunteer pool (by DM)", personal=True,
    params=[*_profile_params(required=True),
            Param("over18", YesNo(), required=False,
                  ask="Are you 18 or over? (yes|no) The pool is for adults only.")],
)
async def register(ctx: Context, args: Args) -> None:
    if args.over18 is None:
        raise AskFor("over18")
    if not args.over18:
        raise CommandError("Sorry: the pool is for adults (18 or over), so I haven't stored "
                           "anything. A group can still welcome you directly.")
    if await store.profile(ctx.session, ctx.sender.user_id) is not None:
        raise CommandError(f"You're already in the pool: {ctx.prefix}volunteer shows your "
                           f"profile, {ctx.prefix}volunteer set key=value changes it.")
    group = await _group_for(ctx, args.group)
    now = ctx.now
    v = Volunteer(
        user_id=ctx.sender.user_id, skills=[], skill_mask=0, radius_km=DEFAULT_RADIUS_KM,
        dbs_level=0,
        update_service=False, share=True, paused=False, adult_confirmed_at=now,
        availability_confirmed_at=now, registered_at=now, updated_at=now,
    )
    await _apply(ctx, v, args)
    await store.save_profile(ctx.session, v)
    if group is not None:
        await store.add_group(ctx.session, v, group.id)
    await ctx.reply(
        "Welcome to the volunteer pool. Offers will come here as O<n>.\n"
        + await _describe_profile(ctx, v)
        + f"\nI removed your message from the chat. {ctx.prefix}volunteer pause takes a break."
    )


@commands.command("volunteer", summary="your volunteer profile (by DM)", personal=True,
                  rest="subcommand")
async def show(ctx: Context, args: Args) -> None:
    if args.rest:
        subs = ", ".join(" ".join(c.words[1:]) for c in ctx.registry.subcommands("volunteer"))
        raise CommandError(f"{ctx.prefix}volunteer needs one of: {subs}. "
                           f"See {ctx.prefix}help volunteer.")
    v = await _profile_or_refuse(ctx)
    await ctx.reply(await _describe_profile(ctx, v))


@commands.command("volunteer set", summary="change your volunteer profile (by DM)",
                  personal=True, params=_profile_params(required=False))
async def set_profile(ctx: Context, args: Args) -> None:
    v = await _profile_or_refuse(ctx)
    if not any(value is not None for value in args.values()):
        raise CommandError(f"Say what to change, e.g. {ctx.prefix}volunteer set radius=15 "
                           "availability=weekends.")
    group = await _group_for(ctx, args.group)
    await _apply(ctx, v, args)
    v.updated_at = ctx.now
    await store.save_profile(ctx.session, v)
    if group is not None:
        await store.add_group(ctx.session, v, group.id)
    await ctx.reply("Saved.\n" + await _describe_profile(ctx, v))


@commands.command("volunteer pause", summary="take a break from offers (by DM)", personal=True,
                  params=[Param("until", DateValue(), required=False)])
async def pause(ctx: Context, args: Args) -> None:
    v = await _profile_or_refuse(ctx)
    until: datetime | None = None
    if args.until is not None:
        if args.until <= ctx.today:
            raise CommandError("until: give a date after today, e.g. until=+14d, or leave it "
                               "out to pause until you resume.")
        until = datetime.combine(args.until, time(0), tzinfo=ctx.tz)
    v.paused, v.paused_until, v.updated_at = True, until, ctx.now
    await store.save_profile(ctx.session, v)
    back = (f" until {describe_date(args.until)}" if until
            else f"; {ctx.prefix}volunteer resume when you're ready")
    await ctx.reply(f"Paused: no new offers{back}. Places you've accepted still stand.")


@commands.command("volunteer resume", summary="take offers again (by DM)", personal=True)
async def resume(ctx: Context, args: Args) -> None:
    v = await _profile_or_refuse(ctx)
    if not v.paused:
        raise CommandError("You're not paused; offers already reach you.")
    v.paused, v.paused_until, v.updated_at = False, None, ctx.now
    await store.save_profile(ctx.session, v)
    await ctx.reply("Welcome back: offers will reach you again.")


@commands.command("volunteer delete", summary="leave the pool (by DM)", personal=True)
async def delete(ctx: Context, args: Args) -> None:
    v = await _profile_or_refuse(ctx)
    left = 0
    for o in await store.offers_for_user(ctx.session, ctx.sender.user_id):
        await _leave(ctx.app, ctx.session, o, store.WITHDRAWN, ctx.now)
        left += 1
    await store.delete_profile(ctx.session, v)
    places = f" and left {left} open offers or places" if left else ""
    await ctx.reply(
        f"Your profile is deleted{places}. Hours already confirmed stay for your certificate; "
        f"{ctx.prefix}privacy forget erases those too."
    )


# -- requests (in a group's room) -------------------------------------------------------


async def _room_group(ctx: Context) -> Group:
    group = await groups.by_room(ctx.session, ctx.room.room_id)
    if group is None:
        raise CommandError(f"This room has no group profile yet; {ctx.prefix}group register "
                           "links it to one first.")
    return group


async def make_offers(app: Host, session: AsyncSession, req: VolunteerRequest,
                      group: Group, now: datetime, limit: int) -> int:
    """Offer the request to the best ``limit`` eligible people not asked before; how many."""
    if limit <= 0:
        return 0
    need = need_of(req, group)
    found = await candidates(session, need, now, limit=limit, exclude_request=req.id,
                             exclude_user=req.created_by)
    ranked = rank(found, need, now)
    send_at = quiet_until(now, app.settings.bot.tz)
    expires = min(send_at + OFFER_TTL, req.starts_at)
    tz = app.settings.bot.tz
    for c in ranked:
        o = VolunteerOffer(request_id=req.id, user_id=c.user_id, status=store.OFFERED,
                           via="offer", offered_at=now, expires_at=expires)
        session.add(o)
        await session.flush()
        km = haversine_km(c.lat, c.lon, req.lat, req.lon)
        dbs = "; you meet its DBS requirement" if req.dbs_level else ""
        await queue_dm(app, session, now, c.user_id, (
            f"{o.ref}: {group.name} needs {req.count} x {req.role}, {_when(app, req)}, "
            f"{app.areas.label(req.area_code)} (about {km:.0f} km from you).\n"
            f"Skills: {_skills_text(req.skills)}{dbs}.\n"
            f"Reply {app.settings.bot.prefix}volunteer accept {o.ref} or "
            f"{app.settings.bot.prefix}volunteer decline {o.ref} by {_at(expires, tz)}."
        ), dedupe_key=f"volunteer:offer:{o.id}")
    await store.mark_offered(session, [c.volunteer_id for c in ranked], now)
    return len(ranked)


@commands.command(
    "volunteer need", summary="ask the pool for volunteers", roles=[Role.GROUP_ADMIN],
    where=Where.ROOM,
    params=[
        Param("count", Integer(minimum=1, maximum=100), positional=True,
              ask="How many volunteers? (a number)"),
        Param("role", Text(max_length=120), ask='What will they do? (e.g. role="Driver")'),
        Param("when", Window(), ask='When? (e.g. "sat 10am-1pm" or 2026-12-05T10:00-13:00)'),
        Param("area", AreaValue(), ask="Where? (a town or parish, e.g. Wisbech)"),
        Param("skills", SKILLS, required=False),
        Param("dbs", DBS, required=False),
    ],
)
async def need(ctx: Context, args: Args) -> None:
    group = await _room_group(ctx)
    starts, ends = args.when
    if starts <= ctx.now:
        raise CommandError("when: that time has passed; give a time still to come, "
                           'e.g. when="sat 10am-1pm".')
    slots = availability.window_slots(starts.astimezone(ctx.tz), ends.astimezone(ctx.tz))
    if slots == 0:
        raise CommandError("when: shifts run between 06:00 and midnight; pick a time then.")
    area = ctx.app.areas.get(args.area)
    if area.lat is None or area.lon is None:
        raise CommandError(f"area: {ctx.app.areas.label(area.code)} is too big; name the town "
                           "or parish where it happens, e.g. area=Wisbech.")
    if not ctx.sender.is_coordinator:
        made = await store.requests_made_since(ctx.session, ctx.sender.user_id,
                                               ctx.now - timedelta(days=1))
        if made >= REQUESTS_PER_DAY:
            raise CommandError(f"You've made {made} volunteer requests today, the daily "
                               "limit; try again tomorrow or ask a coordinator.")
    try:
        skills = normalise_skills(args.skills or ())
    except SkillError as exc:
        raise CommandError(f"skills: {exc}.") from None
    req = VolunteerRequest(
        group_id=group.id, room_id=ctx.room.room_id, created_by=ctx.sender.user_id,
        count=args.count, role=args.role, starts_at=starts, ends_at=ends, slots=slots,
        area_code=area.code, lat=area.lat, lon=area.lon, skills=skills,
        dbs_level=dbs_rank(args.dbs), accepted=0, status=store.OPEN, created_at=ctx.now,
    )
    ctx.session.add(req)
    await ctx.session.flush()
    offered = await make_offers(ctx.app, ctx.session, req, group, ctx.now,
                                offers_to_make(req.count))
    reach = "" if group.verified else " (an unverified group reaches only its own volunteers)"
    outcome = (f"Offered to {offered} volunteers{reach}; offers last 24 hours."
               if offered else f"No volunteer in the pool matches yet{reach}; it stays open "
               f"for {ctx.prefix}volunteer browse.")
    await ctx.reply(
        f"{req.ref}: {req.count} x {req.role}, {_when(ctx.app, req)}, "
        f"{ctx.app.areas.label(area.code)}.\n{outcome}\n"
        f"{ctx.prefix}volunteer requests shows how full it is."
    )


@commands.command("volunteer requests", summary="this group's requests and how full they are",
                  roles=[Role.GROUP_ADMIN], where=Where.ROOM)
async def list_requests(ctx: Context, args: Args) -> None:
    group = await _room_group(ctx)
    rows = await store.requests_of(ctx.session, group.id, ctx.now - timedelta(days=7))
    if not rows:
        await ctx.reply(f"No recent requests. {ctx.prefix}volunteer need asks the pool.")
        return
    lines = []
    for req in rows[-10:]:
        if req.status == store.CANCELLED:
            lines.append(f"{req.ref} {req.role}, {_when(ctx.app, req)}: cancelled")
            continue
        f = await store.fill(ctx.session, req.id)
        lines.append(f"{req.ref} {req.role}, {_when(ctx.app, req)}: {f.accepted}/{req.count} "
                     f"filled, {f.waitlisted} waitlisted, {f.waiting} offers open")
    await ctx.reply("\n".join(lines))


async def _own_request(ctx: Context, request_id: int) -> VolunteerRequest:
    group = await _room_group(ctx)
    req = await store.request(ctx.session, request_id, lock=True)
    if req is None or req.group_id != group.id:
        raise CommandError(f"{group.ref} has no request V{request_id}; "
                           f"{ctx.prefix}volunteer requests lists them.")
    return req


@commands.command("volunteer cancel", summary="cancel a request and tell who accepted",
                  roles=[Role.GROUP_ADMIN], where=Where.ROOM,
                  params=[Param("request", Ref("V"), positional=True)])
async def cancel(ctx: Context, args: Args) -> None:
    req = await _own_request(ctx, args.request)
    if req.status == store.CANCELLED:
        raise CommandError(f"{req.ref} is already cancelled.")
    if req.ends_at <= ctx.now:
        raise CommandError(f"{req.ref} is over; there's nothing to cancel.")
    req.status, req.cancelled_at = store.CANCELLED, ctx.now
    group = await groups.by_id(ctx.session, req.group_id)
    told = 0
    for o in await store.offers_of(ctx.session, req.id):
        had_place = o.status in (store.ACCEPTED, store.WAITLISTED)
        o.status = store.CLOSED
        if had_place:
            told += 1
        await queue_dm(ctx.app, ctx.session, ctx.now, o.user_id,
                       f"{req.ref} ({req.role}, {_when(ctx.app, req)}) from "
                       f"{group.name if group else 'the group'} is cancelled; {o.ref} is "
                       "closed. Thank you for offering.",
                       dedupe_key=f"volunteer:cancelled:{o.id}")
    await ctx.reply(f"Cancelled {req.ref}; told the {told} volunteers who had accepted "
                    "or were waiting.")


@commands.command(
    "volunteer hours", summary="confirm hours given on a request", roles=[Role.GROUP_ADMIN],
    where=Where.ROOM,
    params=[Param("request", Ref("V"), positional=True),
            Param("hours", Decimal(minimum=0.25, maximum=24), positional=True),
            Param("person", Person(), required=False, positional=True)],
)
async def hours(ctx: Context, args: Args) -> None:
    req = await _own_request(ctx, args.request)
    if req.status == store.CANCELLED:
        raise CommandError(f"{req.ref} was cancelled, so there are no hours to confirm.")
    if req.starts_at > ctx.now:
        raise CommandError(f"{req.ref} hasn't started yet; confirm hours once it has.")
    accepted = await store.offers_of(ctx.session, req.id, (store.ACCEPTED,))
    people = [o.user_id for o in accepted]
    if args.person is not None:
        if args.person not in people:
            raise CommandError(f"{args.person} didn't take a place on {req.ref}; hours go to "
                               "people who accepted it.")
        people = [args.person]
    if not people:
        raise CommandError(f"Nobody accepted {req.ref}, so there are no hours to confirm.")
    worked_on = req.starts_at.astimezone(ctx.tz).date()
    for user in people:
        await store.record_hours(ctx.session, req, user, args.hours, ctx.sender.user_id,
                                 ctx.now, worked_on)
        await queue_dm(ctx.app, ctx.session, ctx.now, user,
                       f"{args.hours:g} hours on {req.ref} ({req.role}) are confirmed. "
                       f"{ctx.prefix}volunteer certificate shows your year.")
    await ctx.reply(f"Recorded {args.hours:g} hours for {len(people)} volunteer"
                    f"{'s' if len(people) != 1 else ''} on {req.ref}.")


@commands.command("volunteer share", summary="let other groups' requests reach your volunteers",
                  roles=[Role.GROUP_ADMIN], where=Where.ROOM,
                  params=[Param("setting", Choice(("on", "off")), positional=True)])
async def share(ctx: Context, args: Args) -> None:
    group = await _room_group(ctx)
    group.share_volunteers = args.setting == "on"
    await ctx.session.flush()
    await store.refresh_sharing(ctx.session, group.id)
    if group.share_volunteers:
        await ctx.reply(f"Volunteers who came through {group.ref} can now get other groups' "
                        "requests, when they have agreed to it too (share=yes).")
    else:
        await ctx.reply(f"Volunteers who came through {group.ref} now get only "
                        f"{group.ref}'s requests (unless they joined the pool another way).")


# -- answering offers (by DM) -------------------------------------------------------------


async def _my_offer(ctx: Context, offer_id: int) -> tuple[VolunteerOffer, VolunteerRequest]:
    o = await store.offer(ctx.session, offer_id)
    if o is None or o.user_id != ctx.sender.user_id:
        raise CommandError(f"You have no offer O{offer_id}; offers come by DM as O<n> "
                           f"({ctx.prefix}volunteer browse lists open requests).")
    req = await store.request(ctx.session, o.request_id)
    assert req is not None
    return o, req


def _check_open(ctx: Context, req: VolunteerRequest) -> None:
    if req.status == store.CANCELLED:
        raise CommandError(f"{req.ref} was cancelled by the group.")
    if req.starts_at <= ctx.now:
        raise CommandError(f"{req.ref} has already started.")


async def _took(ctx: Context, o: VolunteerOffer, req: VolunteerRequest) -> None:
    status = await store.take_place(ctx.session, o, ctx.now)
    group = await groups.by_id(ctx.session, req.group_id)
    name = group.name if group else "the group"
    if status == store.WAITLISTED:
        waiting = await store.offers_of(ctx.session, req.id, (store.WAITLISTED,))
        place = next(i for i, w in enumerate(waiting, 1) if w.id == o.id)
        await ctx.reply(f"{req.ref} is full, so you're number {place} on the waitlist. "
                        f"I'll tell you if a place frees up ({ctx.prefix}volunteer decline "
                        f"{o.ref} to leave it).")
        return
    f = await store.fill(ctx.session, req.id)
    await ctx.reply(
        f"You're in for {req.ref}: {req.role} for {name}, {_when(ctx.app, req)}, "
        f"{ctx.app.areas.label(req.area_code)} ({o.ref}).\nI'll remind you a day before. "
        f"Can't make it after all? {ctx.prefix}volunteer decline {o.ref}."
    )
    dbs = " and meets the DBS requirement" if req.dbs_level else ""
    await queue_dm(ctx.app, ctx.session, ctx.now, req.created_by,
                   f"{ctx.sender.user_id} accepted {req.ref} ({req.role}){dbs}: "
                   f"{f.accepted}/{req.count} places filled.")


@commands.command("volunteer accept", summary="take a place you were offered",
                  where=Where.DM, params=[Param("offer", Ref("O"), positional=True)])
async def accept(ctx: Context, args: Args) -> None:
    o, req = await _my_offer(ctx, args.offer)
    if o.status == store.ACCEPTED:
        raise CommandError(f"You've already got a place on {req.ref} ({o.ref}).")
    if o.status == store.WAITLISTED:
        raise CommandError(f"You're already on the waitlist for {req.ref}.")
    _check_open(ctx, req)
    take = f"{ctx.prefix}volunteer take {req.ref}"
    if o.status == store.DECLINED:
        raise CommandError(f"You declined {o.ref}; {take} if you've changed your mind.")
    if o.status != store.OFFERED or o.expires_at <= ctx.now:
        raise CommandError(f"{o.ref} has expired; {take} still works if there's room.")
    await _took(ctx, o, req)


async def _leave(app: Host, session: AsyncSession, o: VolunteerOffer, status: str,
                 now: datetime) -> None:
    """Give up an offer or place; a freed place goes to the waitlist, and the host is told."""
    had_place = o.status == store.ACCEPTED
    promoted = await store.give_up_place(session, o, status, now)
    req = await store.request(session, o.request_id)
    assert req is not None
    if promoted is not None:
        await _tell_promoted(app, session, now, promoted, req)
    if had_place:
        f = await store.fill(session, req.id)
        moved = f" {promoted.user_id} moved up from the waitlist." if promoted else ""
        await queue_dm(app, session, now, req.created_by,
                       f"{o.user_id} can no longer make {req.ref} ({req.role}).{moved} "
                       f"{f.accepted}/{req.count} places filled.")


async def _tell_promoted(app: Host, session: AsyncSession, now: datetime,
                         o: VolunteerOffer, req: VolunteerRequest) -> bool:
    return await queue_dm(
        app, session, now, o.user_id,
        f"A place freed up: you're in for {req.ref} ({req.role}, {_when(app, req)}). "
        f"Can't make it? {app.settings.bot.prefix}volunteer decline {o.ref}.",
        dedupe_key=f"volunteer:promoted:{o.id}",
    )


@commands.command("volunteer decline", summary="say no to an offer, or give up a place",
                  where=Where.DM, params=[Param("offer", Ref("O"), positional=True)])
async def decline(ctx: Context, args: Args) -> None:
    o, req = await _my_offer(ctx, args.offer)
    if o.status not in store.LIVE:
        raise CommandError(f"{o.ref} is already closed; nothing to decline.")
    was = o.status
    await _leave(ctx.app, ctx.session, o, store.DECLINED, ctx.now)
    if was == store.OFFERED and req.status == store.OPEN and req.starts_at > ctx.now:
        group = await groups.by_id(ctx.session, req.group_id)
        if group is not None:
            await make_offers(ctx.app, ctx.session, req, group, ctx.now, 1)
    left = {store.ACCEPTED: "given up your place", store.WAITLISTED: "left the waitlist"}
    await ctx.reply(f"Done: you've {left.get(was, 'declined')} for {req.ref} ({o.ref}). "
                    "Thanks for letting them know.")


@commands.command("volunteer browse", summary="open requests you could take", where=Where.DM,
                  params=[Param("area", AreaValue(allow_all=True), required=False),
                          Param("skills", SKILLS, required=False)])
async def browse(ctx: Context, args: Args) -> None:
    v = await _profile_or_refuse(ctx)
    me = await store.candidate_for(ctx.session, v)
    try:
        wanted = set(normalise_skills(args.skills or ()))
    except SkillError as exc:
        raise CommandError(f"skills: {exc}.") from None
    lines = []
    for req in await store.open_requests(ctx.session, ctx.now):
        group = await groups.by_id(ctx.session, req.group_id)
        if group is None or refusal(me, need_of(req, group)) is not None:
            continue
        if args.area and not ctx.app.areas.contains(args.area, req.area_code):
            continue
        if wanted and not wanted & set(req.skills or ()):
            continue
        f = await store.fill(ctx.session, req.id)
        room = "full, waitlist open" if f.accepted >= req.count else f"{f.accepted}/{req.count}"
        lines.append(f"{req.ref} {req.role} for {group.name}, {_when(ctx.app, req)}, "
                     f"{ctx.app.areas.label(req.area_code)} ({room})")
    if not lines:
        await ctx.reply("No open requests fit you right now; offers will come here.")
        return
    await ctx.reply("\n".join(lines[:10]) + f"\n{ctx.prefix}volunteer take V<n> to take one.")


@commands.command("volunteer take", summary="take a place on an open request", where=Where.DM,
                  params=[Param("request", Ref("V"), positional=True)])
async def take(ctx: Context, args: Args) -> None:
    v = await _profile_or_refuse(ctx)
    req = await store.request(ctx.session, args.request)
    group = await groups.by_id(ctx.session, req.group_id) if req else None
    if req is None or group is None:
        raise CommandError(f"There's no request V{args.request}; {ctx.prefix}volunteer browse "
                           "lists the open ones.")
    _check_open(ctx, req)
    why = refusal(await store.candidate_for(ctx.session, v), need_of(req, group))
    if why is not None:
        raise CommandError(f"You can't take {req.ref}: {_REFUSALS[why]}.")
    o = await store.offer_for(ctx.session, req.id, v.user_id)
    if o is not None and o.status in (store.ACCEPTED, store.WAITLISTED):
        raise CommandError(f"You're already {o.status} on {req.ref} ({o.ref}).")
    if o is None:
        o = VolunteerOffer(request_id=req.id, user_id=v.user_id, status=store.OFFERED,
                           via="take", offered_at=ctx.now, expires_at=req.starts_at)
        ctx.session.add(o)
        await ctx.session.flush()
    await _took(ctx, o, req)


# -- certificate ------------------------------------------------------------------------


def certificate_pdf(person: str, year: int, rows: list[tuple[str, float, int]]) -> bytes:
    """A one-page certificate; core PDF fonts are Latin-1, so other characters become '?'."""
    from fpdf import FPDF

    def latin(text: str) -> str:
        return text.encode("latin-1", "replace").decode("latin-1")

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 14, latin(f"Volunteering certificate {year}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=12)
    total = sum(h for _, h, _ in rows)
    pdf.multi_cell(0, 8, latin(f"{person} gave {total:g} hours as a volunteer in {year}, "
                               "confirmed by the groups below."), new_x="LMARGIN", new_y="NEXT")
    for name, h, shifts in rows:
        pdf.cell(0, 8, latin(f"{name}: {h:g} hours ({shifts} shifts)"),
                 new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@commands.command("volunteer certificate", summary="your hours and groups for a year",
                  where=Where.DM,
                  params=[Param("year", Integer(minimum=2000, maximum=2100), required=False,
                                positional=True)])
async def certificate(ctx: Context, args: Args) -> None:
    year = args.year or ctx.today.year
    rows = await store.hours_in_year(ctx.session, ctx.sender.user_id, year)
    if not rows:
        raise CommandError(f"No confirmed hours in {year} yet; the group's admin confirms them "
                           f"with {ctx.prefix}volunteer hours.")
    total = sum(h for _, h, _ in rows)
    lines = [f"{ctx.sender.user_id}: {total:g} hours volunteering in {year}"]
    lines += [f"{name}: {h:g} hours ({n} shift{'s' if n != 1 else ''})" for name, h, n in rows]
    pdf = certificate_pdf(ctx.sender.user_id, year, rows)
    await ctx.reply("\n".join(lines[:11]) + "\nThe certificate is attached as a PDF.",
                    attachment=Attachment(f"volunteering-{year}.pdf", "application/pdf", pdf))


# -- sweeps (reminders, expiry) -----------------------------------------------------------


async def expire_and_top_up(app: Host, session: AsyncSession, now: datetime) -> int:
    """Lapsed offers close, and each request that lost one is offered to the next person."""
    expired = await store.expire_offers(session, now)
    sent = 0
    for request_id in sorted({o.request_id for o in expired}):
        req = await store.request(session, request_id)
        if req is None or req.status != store.OPEN or req.starts_at <= now:
            continue
        group = await groups.by_id(session, req.group_id)
        f = await store.fill(session, req.id)
        if group is None or f.accepted >= req.count:
            continue
        lost = sum(1 for o in expired if o.request_id == request_id)
        sent += await make_offers(app, session, req, group, now, lost)
    return sent


async def shift_reminders(app: Host, session: AsyncSession, now: datetime) -> int:
    sent = 0
    for o, req in await store.accepted_starting(session, now, now + timedelta(hours=24)):
        group = await groups.by_id(session, req.group_id)
        sent += await queue_dm(
            app, session, now, o.user_id,
            f"Reminder: {req.role} for {group.name if group else 'your group'}, "
            f"{_when(app, req)}, {app.areas.label(req.area_code)} ({o.ref}). Can't make it? "
            f"{app.settings.bot.prefix}volunteer decline {o.ref} so someone else can.",
            dedupe_key=f"volunteer:shift:{o.id}",
        )
    return sent


async def dbs_reminders(app: Host, session: AsyncSession, now: datetime) -> int:
    """60, 30 and 7 days before the re-check; after downtime only the latest one due is sent."""
    today = now.astimezone(app.settings.bot.tz).date()
    sent = 0
    last = today + timedelta(days=max(RECHECK_REMINDER_DAYS))
    for v in await store.rechecks_between(session, today + timedelta(days=1), last):
        assert v.dbs_recheck is not None
        days = (v.dbs_recheck - today).days
        mark = min(d for d in RECHECK_REMINDER_DAYS if days <= d)
        sent += await queue_dm(
            app, session, now, v.user_id,
            f"Your DBS re-check is due on {describe_date(v.dbs_recheck)} ({days} days). Once "
            f"renewed, {app.settings.bot.prefix}volunteer set dbs_checked=<date> keeps offers "
            "that need it coming.",
            dedupe_key=f"volunteer:dbs:{v.id}:{v.dbs_recheck.isoformat()}:{mark}",
        )
    return sent


async def availability_nudges(app: Host, session: AsyncSession, now: datetime) -> int:
    sent = 0
    for v in await store.unconfirmed_since(session, now - NUDGE_AFTER):
        times = availability.describe(v.slots)
        sent += await queue_dm(
            app, session, now, v.user_id,
            f"Are you still free {times}? Confirm with {app.settings.bot.prefix}volunteer set "
            f"availability={times.replace(', ', ',')}, change it, or "
            f"{app.settings.bot.prefix}volunteer pause for a break.",
            dedupe_key=f"volunteer:nudge:{v.id}:{v.availability_confirmed_at.date().isoformat()}",
        )
    return sent


async def promotions(app: Host, session: AsyncSession, now: datetime) -> int:
    """Tell anyone moved up from a waitlist whose news is not yet queued (e.g. after a forget)."""
    sent = 0
    for o, req in await store.promoted_untold(session, now - timedelta(days=7)):
        sent += await _tell_promoted(app, session, now, o, req)
    return sent


async def sweep(app: Host, session: AsyncSession, now: datetime) -> int:
    """Everything due by ``now``: safe to run late, twice, or after downtime. DMs queued."""
    total = 0
    for step in (expire_and_top_up, shift_reminders, dbs_reminders, availability_nudges,
                 promotions):
        total += await step(app, session, now)
    return total


def jobs(app: Host) -> list[Job]:
    """The volunteer sweep, every 15 minutes (the lead registers it with the scheduler)."""

    async def run() -> None:
        async with app.db.transaction() as session:
            await sweep(app, session, app.clock.now())
        app.queued()

    return [Job("volunteers:sweep", IntervalTrigger(minutes=15), run)]
