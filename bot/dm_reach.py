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

It never falls back to posting personal data in the group room. The watches and
what was learned are kept in the database (storage.dm_reach), written with the
command that queued the DM and with the room's notice: a restart re-arms each
watch where it was and still knows who is out of reach. This object is their
copy in memory, loaded at start (:meth:`DmReach.load`), so the check made with
every command reads no table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage import dm_reach as rows
from storage.engine import Database
from storage.outbox import person_key

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


class DmReach:
    """What the bot knows about reaching each person by DM; features fill in the checks."""

    def __init__(self) -> None:
        # Set by the bridges feature: is this user a bridge's ghost, and does that
        # bridge never carry the bot's DMs?
        self.bridged: Callable[[str], bool] = lambda user_id: False
        self.never: Callable[[str], bool] = lambda user_id: False
        # person_key(user) -> until when the bot's DMs are known not to reach them.
        self._unreachable: dict[str, datetime] = {}
        self._watches: dict[str, rows.Watch] = {}

    async def load(self, db: Database) -> None:
        """The watches and facts the database holds (at start, before any command)."""
        async with db.transaction() as session:
            watches, self._unreachable = await rows.load(session)
        self._watches = {w.user_id: w for w in watches}
        if watches:
            log.info("watching %d direct-message invites again", len(watches))

    def cannot_reach(self, user_id: str, now: datetime) -> bool:
        if self.never(user_id):
            return True
        until = self._unreachable.get(person_key(user_id))
        return until is not None and until > now

    def told_text(self, user_id: str) -> str:
        """What the room hears when the answer goes by DM: only what is known to be true."""
        return INVITED_TEXT if self.bridged(user_id) else SENT_TEXT

    async def watch(self, session: AsyncSession, user_id: str, room_id: str,
                    now: datetime) -> Callable[[], None] | None:
        """A DM to a bridged person is being queued from ``room_id`` in ``session``: keep a
        watch on whether it is taken. Returns what to run once that commits (None: no
        watch, the person is not bridged or is already watched)."""
        if not self.bridged(user_id) or user_id in self._watches:
            return None
        await rows.watch(session, user_id, room_id, now)

        def committed() -> None:
            self._watches.setdefault(user_id, rows.Watch(user_id, room_id, now))

        return committed

    def due(self, now: datetime) -> list[tuple[str, str]]:
        """(user, room) pairs whose invite has had ``WAIT`` to be accepted."""
        return [(user, w.room_id) for user, w in self._watches.items() if now - w.since >= WAIT]

    async def settle(self, session: AsyncSession, user_id: str, accepted: bool,
                     now: datetime) -> bool:
        """End the watch in ``session``; False if the person was forgotten meanwhile (then
        nothing is kept, nor said)."""
        self._watches.pop(user_id, None)
        key = person_key(user_id)
        until = None if accepted else now + REMEMBER
        kept = await rows.settle(session, user_id, until)
        if until is None or not kept:
            self._unreachable.pop(key, None)
        else:
            log.info("a direct message to %s was not accepted in %s", user_id, WAIT)
            self._unreachable[key] = until
        return kept

    async def expire(self, db: Database, now: datetime) -> None:
        """Facts past their day, and watches never settled in that time (no DM was sent),
        go from memory and the database."""
        stale_facts = [k for k, until in self._unreachable.items() if until <= now]
        stale_watches = [u for u, w in self._watches.items() if now - w.since > REMEMBER]
        if not stale_facts and not stale_watches:
            return
        for key in stale_facts:
            del self._unreachable[key]
        for user_id in stale_watches:
            del self._watches[user_id]
        async with db.transaction() as session:
            await rows.expire(session, now, now - REMEMBER)
