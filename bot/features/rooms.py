"""!rooms setup and !rooms: the space tree of locality and theme rooms, rolled out by area.

The handlers only record what was asked; :mod:`bot.features.tree_build` does the
network work after the commit. Role changes re-run the power levels of the
rooms the moderator's area covers.
"""

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import AreaValue, ThemeValue
from bot.features import tree_plan as plan
from bot.features.tree_build import builder_for
from bot.host import Host, RoleChange, RoleListener
from bot.scheduler import Job
from storage import tree

MAX_LINES = 11
_KIND_RANK = {plan.SPACE: 0, plan.LOCALITY: 1, plan.THEME: 2}


@commands.command(
    "rooms setup",
    summary="build or refresh the space tree for an area (or all)",
    roles=[Role.ADMIN, Role.COORDINATOR],
    params=[Param("area", AreaValue(allow_all=True),
                  ask="Which area? (a name like Fenland, a GSS code, or all)")],
)
async def rooms_setup(ctx: Context, args: Args) -> None:
    label = ctx.app.areas.label(args.area)
    busy = [r for r in await tree.unfinished_runs(ctx.session)
            if r.area_code == args.area and not r.power_only]
    if busy:
        raise CommandError(
            f"I'm already setting up rooms for {label}; I'll say when it's done where it "
            "was asked."
        )
    run = await tree.start_run(
        ctx.session, area_code=args.area, requested_by=ctx.sender.user_id, at=ctx.now,
        report_room=ctx.room.room_id, report_event=ctx.message.event_id,
    )
    # The builder starts once this transaction has committed (the app wakes it).
    builder_for(ctx.app).expect(run.id)
    recorded = await tree.all_rooms(ctx.session)
    missing = [r for r in plan.plan_for(ctx.app.areas, ctx.app.themes, args.area)
               if r.key not in recorded]
    if missing:
        # Making rooms takes a while; checking existing ones is quick and reported at once.
        await ctx.reply(f"Making {len(missing)} rooms and spaces for {label}; "
                        "I'll say here when they're ready.")


@commands.command(
    "rooms",
    summary="rooms you can join, with their aliases",
    params=[Param("area", AreaValue(allow_all=True), required=False),
            Param("theme", ThemeValue(), required=False)],
)
async def rooms_list(ctx: Context, args: Args) -> None:
    areas = ctx.app.areas
    recorded = list((await tree.all_rooms(ctx.session)).values())
    chosen = [
        r for r in recorded
        if r.area_code in areas  # the area file may have changed since
        and (args.area is None or areas.contains(args.area, r.area_code)
             or (r.kind == plan.THEME and areas.contains(r.area_code, args.area)))
        and (args.theme is None or r.theme == args.theme)
    ]
    if not chosen:
        where = f" for {areas.label(args.area)}" if args.area else ""
        what = f" on {args.theme}" if args.theme else ""
        raise CommandError(
            f"There are no rooms{what}{where} yet; an admin or coordinator can make them "
            f"with {ctx.prefix}rooms setup area={args.area or 'all'}."
        )
    # Spaces first (the way in), then places, then themes.
    chosen.sort(key=lambda r: (_KIND_RANK.get(r.kind, 3),
                               len(areas.ancestors(r.area_code)), r.name.casefold()))
    lines = [f"{r.name}: {r.alias}" for r in chosen[:MAX_LINES]]
    if len(chosen) > MAX_LINES:
        lines.append(f"...and {len(chosen) - MAX_LINES} more; narrow with area= or theme=.")
    await ctx.reply("\n".join(lines))


def _role_listener(app: Host) -> RoleListener:
    async def on_role_change(session: AsyncSession, change: RoleChange) -> None:
        """A moderator's power changes in every tree room of their area (after the commit)."""
        areas = app.areas
        if change.role != "moderator" or not change.area_code or change.area_code not in areas:
            return
        affected = [r for r in (await tree.all_rooms(session)).values()
                    if r.area_code in areas and areas.contains(change.area_code, r.area_code)]
        if not affected:
            return
        run = await tree.start_run(session, area_code=change.area_code, requested_by=change.by,
                                   at=change.at, power_only=True)
        builder_for(app).expect(run.id)

    return on_role_change


def install(app: Host) -> None:
    builder = builder_for(app)
    app.role_listeners.append(_role_listener(app))
    app.on_queued(builder.wake)

    async def sweep() -> None:
        builder.resume()

    # Picks up a setup that a restart interrupted (the first wake after start does too).
    app.add_job(Job("rooms-resume", IntervalTrigger(minutes=5), sweep))
