"""Messages the bot cannot decrypt yet: ask for the key, answer when it comes, else say so once.

Room keys often arrive a little after the message they open (a to-device
message on another path), so an unreadable message waits here and is tried
again after every sync; once it opens, it is handled like any other. If it is
still unreadable after ``grace``, its sender is told once in that room (not
once per message), in plain words, what to do; the notice names no event,
device or key. The waiting list lives in memory: a restart forgets it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import nio

from bot.clock import Clock
from bot.transport.base import TransportError
from bot.transport.matrix import MatrixTransport

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
    event: nio.MegolmEvent
    since: datetime


class Undecryptable:
    """The waiting list; :meth:`retry` and :meth:`tell_overdue` run after each sync."""

    def __init__(self, client: nio.AsyncClient, transport: MatrixTransport, clock: Clock,
                 *, grace: timedelta = GRACE) -> None:
        self.client = client
        self.transport = transport
        self.clock = clock
        self.grace = grace
        self._waiting: dict[str, _Waiting] = {}
        self._told: set[tuple[str, str]] = set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def add(self, room_id: str, event: nio.MegolmEvent) -> None:
        """Remember ``event`` and ask the sender's devices for its room key."""
        if event.event_id in self._waiting:
            return
        log.warning("cannot decrypt %s in %s (session %s): asking for its key",
                    event.event_id, room_id, event.session_id)
        self._waiting[event.event_id] = _Waiting(room_id, event, self.clock.now())
        if self.client.olm is not None:
            with contextlib.suppress(Exception):  # already asked, or no device to ask
                await self.client.request_room_key(event)

    def retry(self) -> list[tuple[str, Any]]:
        """The waiting messages that open now, oldest first, as (room id, decrypted event)."""
        opened = []
        for event_id, waiting in list(self._waiting.items()):
            try:
                decrypted = self.client.decrypt_event(waiting.event)
            except (nio.EncryptionError, AttributeError):
                continue
            del self._waiting[event_id]
            log.info("decrypted %s in %s after its key arrived", event_id, waiting.room_id)
            opened.append((waiting.room_id, decrypted))
        return opened

    async def tell_overdue(self) -> None:
        """Give up on messages older than ``grace``; tell each sender once per room."""
        now = self.clock.now()
        for event_id, waiting in list(self._waiting.items()):
            if now - waiting.since < self.grace:
                continue
            del self._waiting[event_id]
            who = (waiting.room_id, waiting.event.sender)
            if who in self._told:
                continue
            self._told.add(who)
            try:
                await self.transport.send(
                    waiting.room_id, {"msgtype": "m.text", "body": NOTICE},
                    txn_id=f"undecryptable-{event_id}")
            except TransportError as err:
                log.warning("could not say %s was unreadable: %s", event_id, err.errcode)
