"""CPU-heavy pure work, off the event loop and out of the bot's interpreter.

A thread keeps the event loop free only while the work waits. A model build or a seed
choice is mostly Python holding the GIL, so in a thread of the bot's process it slowed
every other room's commands (`bench/busy_reach.py`: `!about` p95 1.78x idle while a
`!reach seed` ran). The service therefore runs such work in a small pool of separate
processes at a lower CPU priority, and the answer comes back to the loop. The work is
a module-level function of picklable arguments, so it can cross to another process.

The shell and the test worlds keep :class:`InThread`: the same work, inline in a thread
of the process, deterministic, and a test can hold it where it likes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Below the bot's own priority: a seed choice waits for a core rather than take the
# one the event loop needs to answer people.
NICE = 10


class Offload(Protocol):
    """Where heavy work runs."""

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` somewhere that does not hold up the event loop."""

    def close(self) -> None:
        """End whatever it started (work under way included)."""


class InThread:
    """In a thread of this process: for the shell, tests and tools."""

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(work, *args)

    def close(self) -> None:
        pass


def _lower_priority(nice: int) -> None:
    os.nice(nice)


class InProcesses:
    """In ``workers`` processes, each niced by ``nice``, started on first use (a bot
    that is never asked for a model starts none, and stays small).

    ``close()`` ends them at once, work under way included: the command it was for is
    unfinished, and is heard again after a restart like any other.
    """

    def __init__(self, workers: int = 1, nice: int = NICE) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            # "spawn": a fork would copy the bot's threads and open sockets mid-use.
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority, initargs=(self.nice,))
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work, *args)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next job gets a fresh pool.
            if self._pool is pool:
                self._pool = None
            raise

    def processes(self) -> list[multiprocessing.process.BaseProcess]:
        """The pool's live worker processes (none before the first job)."""
        pool = self._pool
        found = getattr(pool, "_processes", None) or {}
        return [p for p in found.values() if p.is_alive()]

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public way to stop work under way (3.14 adds one).
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        for process in workers:
            process.join(5)
