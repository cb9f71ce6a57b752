"""!directory contact / accept / decline: groups put in touch through the bot.

Nobody's room id or address is handed out unasked: the asker's message goes to
the group's own room (or its admins by DM, if the group chose that) and only
when the group accepts does each side get a route to the other that works from
its own network. The message text is delivered, never stored.
"""

from __future__ import annotations

from datetime import timedelta

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import Ref, Text
from bot.features.group_routes import matrix_route
from bot.features.representatives import Reps
from storage import groups, rooms
from storage import introductions as intros
from storage.groups import Group
from storage.introductions import Introduction
from storage.models import add_row
from storage.outbox import person_key

PER_DAY = 3
MESSAGE_MAX = 300


async def contact_route(ctx: Context, group: Group, *, for_room: str) -> str:
    """How people in ``for_room`` can reach ``group``: a Matrix route only where the
    receiving room is on Matrix; else the group's email; else an admin to write to."""
    # Read in this command's own session: room_context() would open a second transaction.
    known = await rooms.get(ctx.session, for_room)
    on_matrix = known is None or known.network is None
    if group.room_id is None:
        return f"email {group.email}"
    if on_matrix:
        route = matrix_route(ctx.app, group.room_id)
        if route is not None:
            return route
    if group.email:
        return f"email {group.email}"
    admins = sorted(await Reps(ctx.app, ctx.session).of(group.id))
    if on_matrix and admins:
        return f"write to its admin https://matrix.to/#/{admins[0]}"
    return f"no route your network opens yet; ask {group.ref} to add an email (group set email=)"


def _name(group: Group | None, user_id: str) -> str:
    return f"{group.ref} {group.name}" if group is not None else f"coordinator {user_id}"


@commands.command(
    "directory contact",
    summary="ask to be put in touch with a listed group (it answers accept or decline)",
    roles=[Role.GROUP_ADMIN, Role.COORDINATOR],
    params=[Param("group", Ref("G"), positional=True, ask="Which group? (G<n>)"),
            Param("message", Text(max_length=MESSAGE_MAX),
                  ask="What would you like to say to them? (one or two lines)")],
)
async def directory_contact(ctx: Context, args: Args) -> None:
    target = await groups.by_id(ctx.session, args.group)
    if target is None or not target.listed:
        raise CommandError(f"There is no listed group G{args.group}; {ctx.prefix}directory "
                           "lists them.")
    if not target.contact:
        raise CommandError(f"{target.ref} {target.name} has not opted in to introductions.")
    mine = None if ctx.room.is_direct else await groups.by_room(ctx.session, ctx.room.room_id)
    if mine is None and not ctx.sender.is_coordinator:
        raise CommandError(f"Run it in your group's room (register it first with "
                           f"{ctx.prefix}group register).")
    if mine is not None and mine.id == target.id:
        raise CommandError("That is this room's own group.")
    if await intros.open_between(ctx.session, ctx.room.room_id, target.id):
        raise CommandError(f"You already asked {target.ref}; it has not answered yet.")
    if await intros.asked_since(ctx.session, ctx.room.room_id,
                                ctx.now - timedelta(days=1)) >= PER_DAY:
        raise CommandError(f"At most {PER_DAY} introductions a day from one room; try tomorrow.")
    intro = Introduction(from_group_id=mine.id if mine else None, from_room_id=ctx.room.room_id,
                         to_group_id=target.id, asked_by=ctx.sender.user_id, asked_at=ctx.now)
    await add_row(ctx.session, intro)
    text = (f"Introduction {intro.ref}: {_name(mine, ctx.sender.user_id)} would like to be in "
            f"touch: \"{args.message}\"\nAnswer {ctx.prefix}directory accept {intro.ref} (you "
            f"both get each other's contact) or {ctx.prefix}directory decline {intro.ref}.")
    await _deliver(ctx, target, text, f"intro:{intro.id}")
    await ctx.reply(f"Asked {target.ref} {target.name} ({intro.ref}); you hear here when it "
                    "answers.")


async def _deliver(ctx: Context, target: Group, text: str, key: str) -> None:
    """Into the group's room, or to its admins by DM (its choice, or no room)."""
    if target.introductions == "room" and target.room_id is not None:
        await ctx.post(target.room_id, text, kind="introduction", dedupe_key=key,
                       own_post=False)
        return
    for admin in sorted(await Reps(ctx.app, ctx.session).of(target.id)):
        await ctx.dm(admin, text, kind="introduction", dedupe_key=f"{key}:{person_key(admin)}")


async def _answering(ctx: Context, number: int | None) -> tuple[Introduction, Group]:
    """The pending introduction this sender may answer for its group."""
    reps = Reps(ctx.app, ctx.session)
    here = None if ctx.room.is_direct else await groups.by_room(ctx.session, ctx.room.room_id)
    candidates: list[tuple[Introduction, Group]] = []
    for group in await groups.active(ctx.session):
        own = here is not None and here.id == group.id and ctx.sender.is_group_admin
        if own or (ctx.room.is_direct and ctx.sender.user_id in await reps.of(group.id)):
            candidates += [(i, group) for i in await intros.pending_for(ctx.session, group.id)]
    if number is not None:
        candidates = [(i, g) for i, g in candidates if i.id == number]
    if not candidates:
        raise CommandError("No introduction is waiting for your group's answer"
                           + (f" as {Introduction.ref_of(number)}." if number is not None else "."))
    if len(candidates) > 1:
        refs = ", ".join(i.ref for i, _ in candidates)
        raise CommandError(f"Several are waiting ({refs}); say which, e.g. "
                           f"{ctx.prefix}directory accept {candidates[0][0].ref}.")
    return candidates[0]


INTRO_REF = Param("intro", Ref(Introduction.LETTER), required=False, positional=True,
                  help="which introduction, when several wait")


@commands.command("directory accept", summary="accept an introduction: both sides get contact",
                  params=[INTRO_REF])
async def directory_accept(ctx: Context, args: Args) -> None:
    intro, target = await _answering(ctx, args.intro)
    intro.status, intro.answered_by, intro.answered_at = (intros.ACCEPTED, ctx.sender.user_id,
                                                          ctx.now)
    asker = (await groups.by_id(ctx.session, intro.from_group_id)
             if intro.from_group_id is not None else None)
    if asker is not None:
        their_route = await contact_route(ctx, asker, for_room=ctx.room.room_id)
    else:
        their_route = f"https://matrix.to/#/{intro.asked_by}"
    await ctx.post(intro.from_room_id,
                   f"{target.ref} {target.name} accepted {intro.ref}: reach them at "
                   f"{await contact_route(ctx, target, for_room=intro.from_room_id)}",
                   kind="introduction", dedupe_key=f"intro-accepted:{intro.id}", own_post=False)
    await ctx.reply(f"Accepted {intro.ref}: reach {_name(asker, intro.asked_by)} at "
                    f"{their_route}")


@commands.command("directory decline", summary="decline an introduction", params=[INTRO_REF])
async def directory_decline(ctx: Context, args: Args) -> None:
    intro, target = await _answering(ctx, args.intro)
    intro.status, intro.answered_by, intro.answered_at = (intros.DECLINED, ctx.sender.user_id,
                                                          ctx.now)
    await ctx.post(intro.from_room_id, f"{target.ref} {target.name} declined {intro.ref}.",
                   kind="introduction", dedupe_key=f"intro-declined:{intro.id}", own_post=False)
    await ctx.reply(f"Declined {intro.ref}; they are told, and nothing of yours is shared.")
