"""Whether a direct message reaches a person on the far side of a bridge, and honesty about it.

A DM is a room the bot makes and invites the person to. For someone on a bridged
network the bridge decides whether that invite goes anywhere: heisenbridge ignores
invites from Matrix users it does not know (and kicks its own puppets for the ones
it does); mautrix bridges carry a DM only for Matrix users logged in to them
(notes/matrix.md 1.3). So the bot says only what is true:

- to someone whose bridge never takes the bot's DMs (``never``), it says so at once,
  sends nothing, and says what works instead;
- to other bridged people it says it has *invited* them, watches the invite, and if
  it is not accepted within ``WAIT`` (on the injected clock) says in the room that
  it couldn't reach them, and answers them that way for a day.

It never falls back to posting personal data in the group room. Memory only: a
restart forgets the watches and what was learned, and learns again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

WAIT = timedelta(minutes=2)
REMEMBER = timedelta(days=1)


def cannot_reach_text(bot_id: str) -> str:
    """Said in the group room, to the person, instead of a DM that cannot arrive."""
    return (
        "I couldn't reach you privately through this bridge, so I show nothing personal here.\n"
        f"What works: message me from a Matrix account ({bot_id}), log in to the bridge, "
        "or ask a group admin to pass me an email address for you."
    )


INVITED_TEXT = (
    "I've invited you to a direct message; if it doesn't reach you through this bridge "
    "I'll say so here."
)
SENT_TEXT = "I've sent you a direct message."


@dataclass
class _Watch:
    room_id: str
    since: datetime


class DmReach:
    """What the bot knows about reaching each person by DM; features fill in the checks."""

    def __init__(self) -> None:
        # Set by the bridges feature: is this user a bridge's ghost, and does that
        # bridge never carry the bot's DMs?
        self.bridged: Callable[[str], bool] = lambda user_id: False
        self.never: Callable[[str], bool] = lambda user_id: False
        self._unreachable: dict[str, datetime] = {}
        self._watches: dict[str, _Watch] = {}

    def cannot_reach(self, user_id: str, now: datetime) -> bool:
        if self.never(user_id):
            return True
        until = self._unreachable.get(user_id)
        return until is not None and until > now

    def told_text(self, user_id: str) -> str:
        """What the room hears when the answer goes by DM: only what is known to be true."""
        return INVITED_TEXT if self.bridged(user_id) else SENT_TEXT

    def watch(self, user_id: str, room_id: str, now: datetime) -> None:
        """A DM to a bridged person was queued from ``room_id``: see whether it is taken."""
        if self.bridged(user_id) and user_id not in self._watches:
            self._watches[user_id] = _Watch(room_id, now)

    def due(self, now: datetime) -> list[tuple[str, str]]:
        """(user, room) pairs whose invite has had ``WAIT`` to be accepted."""
        return [(user, w.room_id) for user, w in self._watches.items() if now - w.since >= WAIT]

    def settle(self, user_id: str, accepted: bool, now: datetime) -> None:
        self._watches.pop(user_id, None)
        if accepted:
            self._unreachable.pop(user_id, None)
        else:
            log.info("a direct message to %s was not accepted in %s", user_id, WAIT)
            self._unreachable[user_id] = now + REMEMBER
