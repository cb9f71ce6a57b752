"""Where a newly joined room's history ends and what the bot should answer begins.

Element creates a DM, invites the bot and sends the first message at once,
before the bot has joined; that message must be answered. So the cut is at
the bot's invite, not its join: nothing sent after the invite is skipped,
nothing from before it is answered. A room the bot joined uninvited (by
alias, or one it made) is cut at the join as before.

A newly joined room's timeline may not reach back to the invite (a long room,
or an invite seen in an earlier sync); then the join event's
``unsigned.replaces_state`` names the invite and its server timestamp
decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

# The server timestamp (ms) of an event by id, or None if it cannot be read.
EventTime = Callable[[str], Awaitable[int | None]]


def own_membership(source: dict[str, Any], user_id: str) -> str | None:
    """The bot's membership this event sets, or None if it is not about the bot."""
    if source.get("type") != "m.room.member" or source.get("state_key") != user_id:
        return None
    membership = (source.get("content") or {}).get("membership")
    return membership if isinstance(membership, str) else None


def _previous(source: dict[str, Any]) -> str | None:
    prev = (source.get("unsigned") or {}).get("prev_content") or {}
    membership = prev.get("membership")
    return membership if isinstance(membership, str) else None


def is_own_join(source: dict[str, Any], user_id: str) -> bool:
    """The bot (re)joining, not a profile change of an existing member."""
    return own_membership(source, user_id) == "join" and _previous(source) != "join"


async def live_from(sources: Sequence[dict[str, Any]], user_id: str, event_time: EventTime) -> int:
    """Index of the first event to answer; those before it only give state."""
    joins = [i for i, s in enumerate(sources) if is_own_join(s, user_id)]
    if not joins:
        return 0
    join = joins[-1]
    invites = [i for i in range(join) if own_membership(sources[i], user_id) == "invite"]
    if invites:
        return invites[-1]
    joined = sources[join]
    invite_id = (joined.get("unsigned") or {}).get("replaces_state")
    if _previous(joined) != "invite" or not isinstance(invite_id, str):
        return join
    invited_at = await event_time(invite_id)
    if invited_at is None:
        return join
    for index in range(join):
        stamp = sources[index].get("origin_server_ts")
        if isinstance(stamp, int | float) and stamp >= invited_at:
            return index
    return join
