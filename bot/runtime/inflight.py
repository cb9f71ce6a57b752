"""Work still running for events the sync loop has already handed over.

The sync loop hands commands to background lanes so that one slow command
never holds up every room. That makes "delivered" and "done" two different
moments, and the stored sync position must follow "done": if the process
dies while a command is still running, the next start must sync from before
that command, so it is heard again (the handled-event ids keep finished ones
from running twice). :class:`Inflight` is that bookkeeping, in memory only:
each piece of work gets a rising number; each sync batch is marked with the
number reached when its delivery ended; a batch's token is safe to store once
no work numbered before its mark is still open.

Why not a durable inbox table (events written with the token, then worked
off)? It would keep every command's text at rest, personal details included,
until processed, and need its own retention and forget coverage; holding the
token back gives the same guarantee with nothing new stored, at the price of
re-reading a little history from the homeserver after a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


class Inflight:
    """Counts open work and says which sync token is safe to store."""

    def __init__(self) -> None:
        self._next = 0
        self._open: set[int] = set()
        self._marks: deque[tuple[int, str, datetime]] = deque()
        self._safe: tuple[str, datetime] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def hold(self) -> int:
        """A new piece of open work; give the number back to :meth:`release`."""
        number = self._next
        self._next += 1
        self._open.add(number)
        return number

    def release(self, number: int) -> None:
        self._open.discard(number)

    def track(self, work: Coroutine[Any, Any, None], name: str = "work") -> asyncio.Task[None]:
        """Run ``work`` as a task that holds the sync position until it ends."""
        number = self.hold()
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if finished.cancelled():
                return  # stopped, not done: it stays open, so the token stays before it
            self.release(number)
            if finished.exception() is not None:
                log.error("%s failed", name, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    def mark(self, token: str, at: datetime) -> None:
        """Every event of the batch that ends at ``token`` was handed over by ``at``."""
        self._marks.append((self._next, token, at))

    def safe(self) -> tuple[str, datetime] | None:
        """The newest token with no open work from before it, and when its batch was
        handed over (None: none yet). Every event handled before that moment came in a
        batch at or before the token, which is what pruning handled ids relies on."""
        oldest = min(self._open, default=self._next)
        while self._marks and self._marks[0][0] <= oldest:
            _, token, at = self._marks.popleft()
            self._safe = (token, at)
        return self._safe

    def position(self) -> int:
        """Every piece of work started so far is numbered below this."""
        return self._next

    def settled(self, position: int) -> bool:
        """No work numbered below ``position`` is still open."""
        return min(self._open, default=self._next) >= position

    @property
    def open(self) -> int:
        return len(self._open)

    async def idle(self) -> None:
        """Until every tracked task is done (tests, a clean stop)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def cancel(self) -> None:
        """Stop every tracked task; what they did not finish is heard again after restart."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


class Lanes:
    """One queue per key (a room), run in order, off the caller; ``limit`` jobs at once.

    Jobs of one room keep their order (an answer to a question comes after the
    question); rooms do not wait for each other beyond the shared limit.
    """

    def __init__(self, inflight: Inflight, limit: int = 4) -> None:
        self.inflight = inflight
        self._slots = asyncio.Semaphore(limit)
        self._queues: dict[str, deque[tuple[int, Callable[[], Awaitable[None]]]]] = {}

    def busy(self, key: str) -> bool:
        return key in self._queues

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        queue = self._queues.get(key)
        fresh = queue is None
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append((self.inflight.hold(), job))
        if fresh:
            self.inflight.track(self._drain(key), name=f"lane {key}")

    async def _drain(self, key: str) -> None:
        # Cancelled (a stop), the jobs left stay open in ``inflight``: the sync token
        # stays before them and they are heard again after the restart.
        queue = self._queues[key]
        try:
            while queue:
                number, job = queue[0]
                try:
                    async with self._slots:
                        await job()
                except Exception:
                    log.exception("a job in lane %s failed", key)
                queue.popleft()
                self.inflight.release(number)
        finally:
            del self._queues[key]
