"""Invites are joined beside the sync loop, one at a time, never inside it.

Joined one by one inside the loop, a first start with a thousand pending invites
read no command until the last room was joined (78 s at 1,000 rooms, 264 s at
3,000: issue 20). Here the loop only hands each allowed invite over; this
joiner works through them ``limit`` at a time (one), and the loop goes on reading
commands meanwhile. A joined room comes down the next sync with its state,
where the app hears of the join as before.

A remote server can refuse a join for a moment (its invite reaches us before it
has stored the invite itself), so a failed join is tried again after
``retry_after`` on the bot's clock, up to ``tries`` times; only a refusal from
the bot's own server is final at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.clock import Clock
from bot.runtime.backoff import sleep_unless
from bot.transport.base import TransportError

log = logging.getLogger(__name__)

TRIES = 5
RETRY_AFTER = timedelta(seconds=2)
# One join at a time: with 1,000 invites waiting, joining two at once made the joins 15 %
# faster (93 s against 106 s) and a person's answer meanwhile twice as slow (slowest
# 1.12 s against 0.61 s, median 0.59 s against 0.35 s), Synapse being the one busy with
# both (bench/README.md, "Rooms at county scale"). Answers come first.
LIMIT = 1
# A line per this many rooms while a large batch of invites is being joined.
PROGRESS_EVERY = 100


class Joins(Protocol):
    async def join(self, room: str, via: Sequence[str] = ()) -> str: ...


@dataclass
class _Invite:
    server: str
    tries: int = 0
    due: datetime | None = None


class InviteJoiner:
    """``add()`` invites; ``run()`` joins them until ``stop()``."""

    def __init__(self, transport: Joins, clock: Clock, own_server: str, *, limit: int = LIMIT,
                 tries: int = TRIES, retry_after: timedelta = RETRY_AFTER) -> None:
        self.transport = transport
        self.clock = clock
        self.own_server = own_server
        self.limit = limit
        self.tries = tries
        self.retry_after = retry_after
        self._pending: dict[str, _Invite] = {}
        self._working: set[str] = set()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.done = 0

    def add(self, room_id: str, server: str) -> None:
        """Join ``room_id`` (asking ``server``) when a slot is free; twice is once."""
        if room_id not in self._pending:
            self._pending[room_id] = _Invite(server)
            self._wake.set()

    def __contains__(self, room_id: str) -> bool:
        return room_id in self._pending

    def __len__(self) -> int:
        """Invites accepted and not yet joined (for !status)."""
        return len(self._pending)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.limit)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                for room_id in self._due():
                    await slots.acquire()
                    if self._stop.is_set():
                        slots.release()
                        break
                    self._working.add(room_id)
                    task = asyncio.create_task(self._join(room_id, slots), name=f"join {room_id}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await sleep_unless(self._wake, self._seconds_to_next())
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    def _due(self) -> list[str]:
        now = self.clock.now()
        return [room_id for room_id, invite in self._pending.items()
                if room_id not in self._working and (invite.due is None or invite.due <= now)]

    def _seconds_to_next(self) -> float:
        waiting = [i.due for r, i in self._pending.items() if r not in self._working and i.due]
        if not waiting:
            return 60.0
        return max(0.05, (min(waiting) - self.clock.now()).total_seconds())

    async def _join(self, room_id: str, slots: asyncio.Semaphore) -> None:
        invite = self._pending[room_id]
        try:
            await self.transport.join(room_id, via=[invite.server])
        except TransportError as err:
            invite.tries += 1
            log.warning("joining %s failed (%s), try %d", room_id, err.errcode, invite.tries)
            final = err.errcode == "M_FORBIDDEN" and invite.server == self.own_server
            if invite.tries >= self.tries or final:
                del self._pending[room_id]
            else:
                invite.due = self.clock.now() + self.retry_after
        else:
            del self._pending[room_id]
            self.done += 1
            log.info("joined %s on invite", room_id)
            if self.done % PROGRESS_EVERY == 0:
                log.info("joined %d rooms on invite; %d still to join", self.done,
                         len(self._pending))
        finally:
            self._working.discard(room_id)
            slots.release()
            self._wake.set()
