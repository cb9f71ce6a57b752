"""!volunteer need|requests|cancel|hours|share: a group asking the pool, in its own room.
"""

from __future__ import annotations

from datetime import timedelta

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import AreaValue, Choice, Decimal, Integer, Person, Ref, Text, Window
from bot.features import availability
from bot.features.matching import SkillError, dbs_rank, normalise_skills, offers_to_make
from bot.features.volunteers.common import DBS, SKILLS, queue_dm, when_of
from bot.features.volunteers.places import make_offers
from bot.ratelimit import DAY, daily_refusal
from storage import groups
from storage import volunteers as store
from storage.groups import Group
from storage.models import add_row
from storage.volunteers import VolunteerRequest


async def _room_group(ctx: Context) -> Group:
    group = await groups.by_room(ctx.session, ctx.room.room_id)
    if group is None:
        raise CommandError(f"This room has no group profile yet; {ctx.prefix}group register "
                           "links it to one first.")
    return group


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
                                               ctx.now - DAY)
        refused = daily_refusal(made, ctx.now, ctx.app.settings.bot.requests_per_day, ctx.tz,
                                "volunteer requests")
        if refused:
            raise CommandError(refused)
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
    await add_row(ctx.session, req)
    offered = await make_offers(ctx.app, ctx.session, req, group, ctx.now,
                                offers_to_make(req.count))
    reach = "" if group.verified else " (an unverified group reaches only its own volunteers)"
    outcome = (f"Offered to {offered} volunteers{reach}; offers last 24 hours."
               if offered else f"No volunteer in the pool matches yet{reach}; it stays open "
               f"for {ctx.prefix}volunteer browse.")
    await ctx.reply(
        f"{req.ref}: {req.count} x {req.role}, {when_of(ctx.app, req)}, "
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
            lines.append(f"{req.ref} {req.role}, {when_of(ctx.app, req)}: cancelled")
            continue
        f = await store.fill(ctx.session, req.id)
        lines.append(f"{req.ref} {req.role}, {when_of(ctx.app, req)}: {f.accepted}/{req.count} "
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
                       f"{req.ref} ({req.role}, {when_of(ctx.app, req)}) from "
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
