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
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import SimpleQueue
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Below the bot's own priority: a seed choice waits for a core rather than take the
# one the event loop needs to answer people.
NICE = 10
# How long close() waits for a worker to report starting, and then to end.
CLOSE_WAIT = 5.0


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


def _start_worker(nice: int, started: SimpleQueue[int]) -> None:
    """In each new worker: lower its priority, and say which process it is. The executor
    has no public way to name its workers, and ``close()`` must end them. (A simple
    queue's put is written before it returns, so the id is there before any job's
    answer.)"""
    os.nice(nice)
    started.put(os.getpid())


class _Pool:
    """One executor, and the ids of its workers as they report starting."""

    def __init__(self, workers: int, nice: int) -> None:
        # "spawn": a fork would copy the bot's threads and open sockets mid-use.
        context = multiprocessing.get_context("spawn")
        self.started: SimpleQueue[int] = context.SimpleQueue()
        self.executor = ProcessPoolExecutor(workers, mp_context=context,
                                            initializer=_start_worker,
                                            initargs=(nice, self.started))
        self.workers = workers
        self.jobs: set[Future[Any]] = set()  # sent and not finished (cancelled ones too)
        self.pids: set[int] = set()

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        self.jobs = {job for job in self.jobs if not job.done()}
        job = self.executor.submit(work, *args)
        self.jobs.add(job)
        return job

    def processes(self, wait: float = 0.0) -> list[multiprocessing.process.BaseProcess]:
        """Its live workers: this process's live children whose ids the workers reported.
        With ``wait``, up to that long for those started but not reported yet (a job is
        unfinished, so a worker must be running it)."""
        deadline = time.monotonic() + wait
        while True:
            unfinished = sum(not job.done() for job in self.jobs)
            if not self.started.empty():
                self.pids.add(self.started.get())
            elif len(self.pids) < min(self.workers, unfinished) and time.monotonic() < deadline:
                time.sleep(0.02)
            else:
                break
        return [p for p in multiprocessing.active_children() if p.pid in self.pids]

    def close(self) -> None:
        # The executor has no public way to stop work under way (3.14 adds one), so its
        # workers are ended here, as processes. One still starting (a job just sent) is
        # waited for, briefly: left alone, it would run that job to the end, and the
        # bot's exit would wait for it.
        workers = self.processes(wait=CLOSE_WAIT)
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        deadline = time.monotonic() + CLOSE_WAIT
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            # The executor's own thread may reap the worker first (it joins it too, once
            # it sees it die); until it records the exit code, this process object still
            # says "alive" (CI saw it once). It comes a moment later.
            while process.exitcode is None and time.monotonic() < deadline:
                time.sleep(0.01)
        self.started.close()


class InProcesses:
    """In ``workers`` processes, each niced by ``nice``, started on first use (a bot
    that is never asked for a model starts none, and stays small).

    ``close()`` ends them at once, work under way included: the command it was for is
    unfinished, and is heard again after a restart like any other.
    """

    def __init__(self, workers: int = 1, nice: int = NICE) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: _Pool | None = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            self._pool = _Pool(self.workers, self.nice)
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(work, *args))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next job gets a fresh pool.
            if self._pool is pool:
                self._pool = None
                pool.close()
            raise

    def processes(self) -> list[multiprocessing.process.BaseProcess]:
        """The pool's live worker processes (none before the first job)."""
        return [] if self._pool is None else self._pool.processes()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
