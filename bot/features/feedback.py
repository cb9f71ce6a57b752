"""!feedback: anyone tells the coordinators what works and what does not.

Stored without the sender unless they say ``named=yes``: the point is that people
say what they think. The command is personal (bot.app redacts it once stored and
never logs it), so an anonymous word given in a group room does not stay there
with a name beside it. Coordinators read the latest with ``!feedback list``, by DM.
"""

from __future__ import annotations

import logging

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import Text, YesNo
from storage import consult

log = logging.getLogger(__name__)

MAX_CHARS = 1000
LISTED = 10


@commands.command(
    "feedback", personal=True,
    summary="tell the coordinators what you think (anonymous unless named=yes)",
    params=[Param("text", Text(max_length=MAX_CHARS), positional=True,
                  ask="What would you like to tell the coordinators? (in quotes)"),
            Param("named", YesNo(), required=False, help="yes: your name goes with it")],
    rest="more words",
)
async def give(ctx: Context, args: Args) -> None:
    text = " ".join(part for part in (args.text, args.rest) if part)
    if len(text) > MAX_CHARS:
        raise CommandError(f"That's {len(text)} characters; keep it under {MAX_CHARS}. "
                           "Nothing was stored.")
    named = ctx.sender.user_id if args.named else None
    await consult.add_feedback(ctx.session, text, named, ctx.now)
    log.info("feedback received (%s)", "named" if named else "anonymous")
    who = "with your name" if named else "without your name"
    await ctx.reply(f"Thank you: the coordinators will read it, {who}.",
                    private=ctx.confirm_privately)


@commands.command("feedback list", summary="the latest feedback (coordinator, by DM)",
                  roles=[Role.COORDINATOR], where=Where.DM)
async def list_feedback(ctx: Context, args: Args) -> None:
    rows = await consult.latest_feedback(ctx.session, LISTED)
    if not rows:
        await ctx.reply("No feedback yet.")
        return
    total = await consult.feedback_count(ctx.session)
    lines = [f"Feedback, latest {len(rows)} of {total}:"]
    for row in rows:
        day = row.given_at.astimezone(ctx.tz).strftime("%d %b")
        lines.append(f"{day} ({row.named_by or 'anonymous'}): {row.body}")
    await ctx.reply("\n".join(lines))
