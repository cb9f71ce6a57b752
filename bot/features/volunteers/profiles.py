"""!volunteer register|set|pause|resume|delete and !volunteer: a person's profile,
only ever in a DM (the commands are ``personal``: redacted once stored).
"""

from __future__ import annotations

from datetime import datetime, time

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, AskFor, CommandError, Param
from bot.commands.values import AreaValue, DateValue, Decimal, Ref, YesNo
from bot.commands.when import describe_date
from bot.features import availability
from bot.features.matching import (
    DBS_LEVELS,
    MAX_RADIUS_KM,
    SkillError,
    dbs_rank,
    normalise_skills,
    skill_bits,
)
from bot.features.volunteers.common import (
    AVAILABILITY,
    DBS,
    DEFAULT_RADIUS_KM,
    RECHECK_YEARS,
    SKILLS,
    WORKFORCE,
    add_years,
    profile_or_refuse,
    skills_text,
)
from bot.features.volunteers.places import leave
from storage import groups
from storage import volunteers as store
from storage.groups import Group
from storage.volunteers import Volunteer


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
    v.dbs_recheck = add_years(v.dbs_checked, RECHECK_YEARS)
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


async def _describe_profile(ctx: Context, v: Volunteer) -> str:
    areas = ctx.app.areas
    lines = [
        "Your volunteer profile (only you can see it):",
        f"Skills: {skills_text(v.skills)}",
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
        + f"\n{ctx.prefix}volunteer pause takes a break."
    )


@commands.command("volunteer", summary="your volunteer profile (by DM)", personal=True,
                  rest="subcommand")
async def show(ctx: Context, args: Args) -> None:
    if args.rest:
        subs = ", ".join(" ".join(c.words[1:]) for c in ctx.registry.subcommands("volunteer"))
        raise CommandError(f"{ctx.prefix}volunteer needs one of: {subs}. "
                           f"See {ctx.prefix}help volunteer.")
    v = await profile_or_refuse(ctx)
    await ctx.reply(await _describe_profile(ctx, v))


@commands.command("volunteer set", summary="change your volunteer profile (by DM)",
                  personal=True, params=_profile_params(required=False))
async def set_profile(ctx: Context, args: Args) -> None:
    v = await profile_or_refuse(ctx)
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
    v = await profile_or_refuse(ctx)
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
    v = await profile_or_refuse(ctx)
    if not v.paused:
        raise CommandError("You're not paused; offers already reach you.")
    v.paused, v.paused_until, v.updated_at = False, None, ctx.now
    await store.save_profile(ctx.session, v)
    await ctx.reply("Welcome back: offers will reach you again.")


@commands.command("volunteer delete", summary="leave the pool (by DM)", personal=True)
async def delete(ctx: Context, args: Args) -> None:
    v = await profile_or_refuse(ctx)
    left = 0
    for o in await store.offers_for_user(ctx.session, ctx.sender.user_id):
        await leave(ctx.app, ctx.session, o, store.WITHDRAWN, ctx.now)
        left += 1
    await store.delete_profile(ctx.session, v)
    places = f" and left {left} open offers or places" if left else ""
    await ctx.reply(
        f"Your profile is deleted{places}. Hours already confirmed stay for your certificate; "
        f"{ctx.prefix}privacy forget erases those too."
    )
