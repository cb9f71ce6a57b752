"""!rooms setup, !rooms and !rooms join: the space tree of locality and theme rooms.

The handlers only record what was asked; :mod:`bot.features.tree_build` does the
network work after the commit. Role changes re-run the power levels of the
rooms the moderator's area covers.

Tree rooms are restricted to members of their parent space, so someone who has
never joined the space tree (a moderator on another council's server, a group's
admin) cannot join by alias. ``!rooms join`` invites the people entitled to a
room instead: moderators of its area, coordinators, and the admins of registered
groups in its area. An invite rather than a knock-restricted join the bot
accepts: an invite works from every client and through every bridge (knocking
needs client support, and bridged people cannot knock at all), the bot decides
at the moment of asking with the same role checks as every command, and the
rooms' join rules stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import AreaValue, ParseContext, ThemeValue, Value
from bot.features import tree_plan as plan
from bot.features.representatives import Reps
from bot.features.tree_build import builder_for
from bot.host import Host, RoleChange, RoleListener
from bot.scheduler import Job
from bot.transport.base import TransportError
from storage import groups, outbox, tree
from storage.tree import TreeRoom

MAX_LINES = 10  # with "...and N more" and how to get in: one page (12 lines)
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
    lines.append(f"To get in: {ctx.prefix}rooms join <area or alias> invites you if you "
                 "moderate its area, coordinate, or admin a registered group there.")
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


@dataclass(frozen=True)
class AreaOrAlias(Value):
    """A room's alias (#...) or an area (its locality room, else its space)."""

    shape: ClassVar[str] = "area|#alias"

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        text = raw.strip()
        if text.startswith("#"):
            return text
        return str(await AreaValue().parse(text, ctx))


def room_for(recorded: list[TreeRoom], wanted: str) -> TreeRoom | None:
    """The tree room an alias names, or an area's locality room, else its space."""
    if wanted.startswith("#"):
        return next((r for r in recorded if r.alias.casefold() == wanted.casefold()), None)
    here = [r for r in recorded if r.area_code == wanted and r.kind in (plan.LOCALITY, plan.SPACE)]
    here.sort(key=lambda r: r.kind != plan.LOCALITY)
    return here[0] if here else None


async def entitlement(ctx: Context, room: TreeRoom) -> str | None:
    """Why the sender may be let into ``room`` (None: they may not)."""
    areas = ctx.app.areas
    if ctx.sender.is_coordinator:
        return "you are a coordinator"
    if ctx.moderates(room.area_code) or any(
            code in areas and areas.contains(room.area_code, code)
            for code in ctx.sender.moderated):
        return f"you moderate {areas.label(room.area_code)}"
    reps = Reps(ctx.app, ctx.session)
    for group in await groups.active(ctx.session):
        if (group.area_code in areas and areas.contains(room.area_code, group.area_code)
                and ctx.sender.user_id in await reps.of(group.id)):
            return f"you are an admin of {group.name} (G{group.id})"
    return None


@commands.command(
    "rooms join",
    summary="get an invite to a room of the tree you are entitled to",
    params=[Param("room", AreaOrAlias(), positional=True,
                  ask="Which room? (an area like Wisbech, or an alias from !rooms)")],
)
async def rooms_join(ctx: Context, args: Args) -> None:
    recorded = [r for r in (await tree.all_rooms(ctx.session)).values()
                if r.area_code in ctx.app.areas]
    room = room_for(recorded, args.room)
    if room is None:
        raise CommandError(f"There is no room for {args.room} yet; {ctx.prefix}rooms lists "
                           "the rooms there are.")
    why = await entitlement(ctx, room)
    if why is None:
        raise CommandError(
            f"{room.name} is for its area's moderators, coordinators and the admins of "
            f"groups registered there; ask a moderator ({ctx.prefix}moderators "
            f"{ctx.app.areas.label(room.area_code)}) to invite you.")
    app, user, reply_in = ctx.app, ctx.sender.user_id, ctx.room.room_id

    async def invite() -> None:
        try:
            await app.transport.invite(room.room_id, user)
            body = (f"I've invited you to {room.name} ({room.alias}), because {why}: "
                    "accept the invite in your Matrix client.")
        except TransportError as exc:
            body = (f"I couldn't invite you to {room.name} ({exc.errcode}); you may be in it "
                    "already. If not, try again later.")
        async with app.db.transaction() as session:
            await outbox.enqueue(session, now=app.clock.now(), room_id=reply_in, body=body)
        app.queued()

    ctx.app.after_commit(invite)


def install(app: Host) -> None:
    builder = builder_for(app)
    app.role_listeners.append(_role_listener(app))
    app.on_queued(builder.wake)
    app.closers.append(builder.close)  # no pass outlives the app (nor holds SQLite's lock)

    async def sweep() -> None:
        builder.resume()

    # Picks up a setup that a restart interrupted (the first wake after start does too).
    app.add_job(Job("rooms-resume", IntervalTrigger(minutes=5), sweep))
