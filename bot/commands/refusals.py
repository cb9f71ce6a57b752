"""What the router says when it will not run a command: not your role, not a word
of ours (or nearly one), or a bug on our side. One line each, saying what to do."""

from __future__ import annotations

import logging
import uuid

from bot.commands.context import Context, Sender
from bot.commands.registry import Command, Registry
from bot.events import Incoming

log = logging.getLogger("grapevine")


def not_allowed(command: Command, sender: Sender, prefix: str) -> str:
    needed = " or ".join(sorted(r.value for r in command.roles))
    if sender.relayed:
        return (
            f"{prefix}{command.name} needs the {needed} role. Messages relayed through "
            "another account count as a member's: send it from your own account."
        )
    return (
        f"{prefix}{command.name} needs the {needed} role, which you don't have here. "
        f"{prefix}roles lists who does."
    )


async def unknown(ctx: Context, registry: Registry, words: tuple[str, ...]) -> None:
    """A top word without its subcommand, or a near miss of one of ours, gets help."""
    if not words:
        return
    prefix = ctx.prefix
    first = words[0].lower()
    if first in registry.top_words():
        subs = ", ".join(" ".join(c.words[1:]) for c in registry.subcommands(first))
        await ctx.reply(f"{prefix}{first} needs one of: {subs}. See {prefix}help {first}.")
        return
    near = registry.near_miss(first)
    if near is not None:
        await ctx.reply(f"Did you mean {prefix}{near}? ({prefix}help lists what I can do.)")
    # Any other !word belongs to someone else (other bots share rooms): stay quiet.


def sorry(what: str, message: Incoming) -> str:
    """The answer to a bug: a reference to find the log line by, and no details."""
    reference = uuid.uuid4().hex[:8]
    log.exception("%s failed (reference %s, event %s)", what, reference, message.event_id)
    return (f"Sorry, something went wrong on my side (reference {reference}). "
            "Nothing was changed; please try again later.")
