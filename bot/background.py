"""A background job woken after commits: cheap to wake, never two copies running."""

from __future__ import annotations

import asyncio
import contextlib


class Woken:
    """Runs ``work_once`` in a task whenever woken, again if woken while it ran.

    Subclasses say whether a wake is worth a pass (``wanted``, called on every commit,
    so keep it cheap) and do one pass (``work_once``; False stops until the next wake).
    """

    name = "background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._closed = False

    def wanted(self) -> bool:
        return True

    async def work_once(self) -> bool:
        raise NotImplementedError

    def wake(self) -> None:
        if self._closed or not self.wanted():
            return
        self._again = True
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._task = loop.create_task(self._work(), name=self.name)

    async def idle(self) -> None:
        """Wait until every pass that can be seen now is done (tests, the demo)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    def cancel(self) -> None:
        """Stop mid-pass, as a shutdown does; the work is resumable from the database."""
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        """Stop for good, as the app closes: cancel a pass under way and wait until it has
        unwound (rolled back its transaction), and start none after. A pass left running
        would go on using the database after the service closed it; on SQLite its open
        transaction would keep the write lock from the next start in the same process."""
        self._closed = True
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _work(self) -> None:
        while self._again:
            self._again = False
            if not await self.work_once():
                return
