"""Messages the bot cannot decrypt yet: ask for the key, answer when it comes, else say so once.

Room keys often arrive a little after the message they open (a to-device
message on another path), so an unreadable message waits here and is tried
again after every sync; once it opens, it is handled like any other. If it is
still unreadable after ``grace``, its sender is told once in that room (not
once per message), in plain words, what to do; the notice names no event,
device or key.

The sync position has already moved past a waiting message, so the list is
kept in the database (storage.undecryptable), written before that position is
stored: a restart or crash in between neither loses the command nor forgets
who was told. The rows hold ids, the sender and times, never the message, not
even its ciphertext: after a restart each waiting event is fetched again from
the homeserver by id and tried like the rest. A row goes once its message has
been handled (the handed-over work has finished, :class:`bot.runtime.inflight.
Inflight`), so a crash while it is being answered hears it again, and the
handled-event ids keep it from being answered twice. A told mark stays until
retention takes it (within a day).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import nio

from bot.clock import Clock
from bot.transport.base import TransportError, is_transient
from bot.transport.matrix import MatrixTransport
from storage import undecryptable as rows
from storage.engine import Database

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=20)
NOTICE = (
    "I couldn't read a message you just sent here: it reached me encrypted, without the key "
    "to open it. Please send it again.\n"
    "If that keeps happening, sign out of your Matrix app and back in, or ask whoever runs me "
    "to check my !status."
)


@dataclass
class _Waiting:
    room_id: str
    sender: str
    since: datetime
    # None after a restart until it is fetched again from the homeserver.
    event: nio.MegolmEvent | None


class Undecryptable:
    """The waiting list. After each sync: :meth:`retry`, hand over what opened and say so
    with :meth:`handed`, then :meth:`settle` and :meth:`tell_overdue`. :meth:`load` once
    at start, before the first sync."""

    def __init__(self, client: nio.AsyncClient, transport: MatrixTransport, db: Database,
                 clock: Clock, *, grace: timedelta = GRACE) -> None:
        self.client = client
        self.transport = transport
        self.db = db
        self.clock = clock
        self.grace = grace
        self._waiting: dict[str, _Waiting] = {}
        # Who was told in which room, and when (a mark counts for rows.KEEP).
        self._told: dict[tuple[str, str], datetime] = {}
        # Opened and handed over: (the work position to wait for, event ids); the rows go
        # once that work has finished.
        self._handed: list[tuple[int, list[str]]] = []

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def is_waiting(self, event_id: str) -> bool:
        return event_id in self._waiting

    async def load(self) -> None:
        """What was waiting (or told) when the bot last stopped, from the database."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            kept = await rows.load(session, now - rows.KEEP)
        for row in kept:
            if row.told_at is not None:
                self._told[(row.room_id, row.sender)] = row.told_at
            elif row.event_id not in self._waiting:
                self._waiting[row.event_id] = _Waiting(row.room_id, row.sender, row.since, None)
        if self._waiting:
            log.info("%d unreadable messages still waiting for their keys", len(self._waiting))

    async def add(self, room_id: str, event: nio.MegolmEvent) -> None:
        """Remember ``event`` (in the database before the sync position passes it) and ask
        the sender's devices for its room key."""
        if event.event_id in self._waiting:
            return
        log.warning("cannot decrypt %s in %s (session %s): asking for its key",
                    event.event_id, room_id, event.session_id)
        now = self.clock.now()
        async with self.db.transaction() as session:
            await rows.add(session, event.event_id, room_id, event.sender, now)
        self._waiting[event.event_id] = _Waiting(room_id, event.sender, now, event)
        await self._ask_for_key(event)

    async def _ask_for_key(self, event: nio.MegolmEvent) -> None:
        if self.client.olm is not None:
            with contextlib.suppress(Exception):  # already asked, or no device to ask
                await self.client.request_room_key(event)

    async def retry(self) -> list[tuple[str, Any]]:
        """The waiting messages that open now, oldest first, as (room id, decrypted event).

        Each must then be handed over and reported with :meth:`handed`: its row stays
        until that work is done."""
        await self._fetch_missing()
        opened = []
        for event_id, waiting in list(self._waiting.items()):
            if waiting.event is None:
                continue
            try:
                decrypted = self.client.decrypt_event(waiting.event)
            except (nio.EncryptionError, AttributeError):
                continue
            del self._waiting[event_id]
            log.info("decrypted %s in %s after its key arrived", event_id, waiting.room_id)
            opened.append((waiting.room_id, decrypted))
        return opened

    async def _fetch_missing(self) -> None:
        """Fetch again the events a restart left as ids; a refusal that will not change
        (gone, redacted, no longer visible) drops the row, a transient one waits a round."""
        gone: list[str] = []
        for event_id, waiting in self._waiting.items():
            if waiting.event is not None:
                continue
            path = (f"/_matrix/client/v3/rooms/{quote(waiting.room_id)}"
                    f"/event/{quote(event_id)}")
            try:
                source = await self.transport.request("GET", path)
            except TransportError as err:
                if not is_transient(err):
                    log.warning("cannot fetch waiting %s in %s again (%s): dropping it",
                                event_id, waiting.room_id, err.errcode)
                    gone.append(event_id)
                continue
            event = nio.MegolmEvent.from_dict({**source, "room_id": waiting.room_id})
            if not isinstance(event, nio.MegolmEvent):
                log.warning("waiting %s in %s is no longer an encrypted message: dropping it",
                            event_id, waiting.room_id)
                gone.append(event_id)
                continue
            waiting.event = event
            await self._ask_for_key(event)
        for event_id in gone:
            del self._waiting[event_id]
        if gone:
            async with self.db.transaction() as session:
                await rows.drop(session, gone)

    def handed(self, event_ids: list[str], position: int) -> None:
        """``event_ids`` went to the sink; the work it started is numbered below
        ``position`` (:meth:`bot.runtime.inflight.Inflight.position`)."""
        if event_ids:
            self._handed.append((position, event_ids))

    def discard(self, event_id: str, position: int) -> None:
        """``event_id`` opened on its own (delivered again, key in hand) and was handed over."""
        if self._waiting.pop(event_id, None) is not None:
            self.handed([event_id], position)

    async def settle(self, settled: Callable[[int], bool]) -> None:
        """Drop the rows of handed-over messages whose work has finished."""
        done = [event_id for position, ids in self._handed if settled(position)
                for event_id in ids]
        if not done:
            return
        async with self.db.transaction() as session:
            await rows.drop(session, done)
        self._handed = [(position, ids) for position, ids in self._handed
                        if not settled(position)]

    async def tell_overdue(self) -> None:
        """Give up on messages older than ``grace``; tell each sender once per room."""
        now = self.clock.now()
        told_from = now - rows.KEEP
        dropped: list[str] = []
        marked: list[str] = []
        for event_id, waiting in list(self._waiting.items()):
            if now - waiting.since < self.grace:
                continue
            who = (waiting.room_id, waiting.sender)
            if self._told.get(who, told_from) > told_from:
                del self._waiting[event_id]
                dropped.append(event_id)
                continue
            try:
                await self.transport.send(
                    waiting.room_id, {"msgtype": "m.text", "body": NOTICE},
                    txn_id=f"undecryptable-{event_id}")
            except TransportError as err:
                log.warning("could not say %s was unreadable: %s", event_id, err.errcode)
                if is_transient(err):
                    continue  # said after the next sync (the same transaction id)
            del self._waiting[event_id]
            self._told[who] = now
            marked.append(event_id)
        if not dropped and not marked:
            return
        async with self.db.transaction() as session:
            await rows.drop(session, dropped)
            for event_id in marked:
                await rows.told(session, event_id, now)
