"""!help, !about, !status, !cancel: generated help and what the bot is."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from bot.commands.context import Context
from bot.commands.dispatch import help_lines, help_words
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, Param, Role
from bot.commands.values import Text
from bridges.capabilities import limits_for
from storage import outbox, rooms, state

ABOUT = (
    "Grapevine links up community groups in the chats they already use: locality and "
    "theme rooms moderated by parish councils, funding notices for the groups that can use "
    "them, a shared pool of volunteers, and mediation between groups.\n"
    "It records message-flow metadata (who replied to or reacted to what, and when, under a "
    "pseudonym), never what anyone writes, and nothing from direct messages.\n"
    "Opt out with {p}privacy optout; {p}privacy says more; {p}help lists commands."
)


@commands.command(
    "help",
    summary="the commands you can use here",
    params=[Param("command", Text(max_length=40), required=False, positional=True)],
)
async def help_command(ctx: Context, args: Args) -> None:
    if not args.command and ctx.limits.max_lines <= 3:  # IRC: the whole list, in few lines
        await ctx.reply(help_words(ctx.registry, ctx.sender, ctx.room.is_direct, ctx.prefix))
        return
    lines = help_lines(
        ctx.registry, ctx.sender, ctx.room.is_direct, ctx.prefix, topic=args.command
    )
    if not lines:
        await ctx.reply(f"No command {args.command!r} that you can use here. Try {ctx.prefix}help.")
        return
    await ctx.reply("\n".join(lines))


@commands.command("about", summary="what this bot does and what it records")
async def about(ctx: Context, args: Args) -> None:
    await ctx.reply(ABOUT.format(p=ctx.prefix))


@commands.command("cancel", summary="stop answering a question I asked")
async def cancel(ctx: Context, args: Args) -> None:
    if await ctx.app.cancel_prompt(ctx.session, ctx.room.room_id, ctx.sender.user_id):
        await ctx.reply("Cancelled; nothing was changed.")
    else:
        await ctx.reply("There was nothing to cancel.")


@commands.command("more", summary="the rest of my last long answer")
async def more(ctx: Context, args: Args) -> None:
    private = ctx.sender.user_id if not ctx.room.is_direct else None
    for where in filter(None, [ctx.room.room_id, private]):
        limits = ctx.limits if where == ctx.room.room_id else limits_for(None)
        page = ctx.app.pager.more(where, ctx.sender.user_id, limits, ctx.prefix)
        if page is not None:
            await ctx.reply(page, private=where == private)
            return
    await ctx.reply("There is nothing more to show.")


@commands.command("status", summary="uptime, rooms, queues, last sync, database",
                  roles=[Role.ADMIN])
async def status(ctx: Context, args: Args) -> None:
    app = ctx.app
    uptime = ctx.now - app.started_at
    active = await rooms.active(ctx.session)
    lanes = await outbox.pending_by_lane(ctx.session)
    await ctx.session.execute(text("SELECT 1"))
    synced = app.sync_status()
    last_sync = f"{(ctx.now - synced).total_seconds():.0f}s ago" if synced else "never"
    took = app.sync_took()
    if synced and took is not None:
        last_sync += f", handled in {took:.1f}s"
    signing = await state.get_value(ctx.session, state.CROSS_SIGNING_KEY)
    await ctx.reply(
        f"Up {_duration(uptime)}; in {len(active)} rooms.\n"
        f"Outbox: {_waiting(lanes[outbox.ANSWERS], 'answer')} and "
        f"{_waiting(lanes[outbox.POSTS], 'post')} waiting. "
        f"Last sync: {last_sync}.\n"
        f"Database: {app.db.dialect}, reachable."
        + (f"\n{signing}" if signing else "")
    )


def _waiting(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes = seconds // 60
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"
