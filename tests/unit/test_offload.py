"""Heavy work in the service's process pool: done in another, lower-priority process,
and ended when the bot stops."""

from __future__ import annotations

import asyncio
import multiprocessing
import os

import pytest

from bot.offload import InProcesses, InThread


def where_and_how_nice(x: int) -> tuple[int, int, int]:
    """Runs in the worker: its process id, its niceness, and a result."""
    return os.getpid(), os.nice(0), x * 2


def forever() -> None:
    while True:
        pass


async def test_work_runs_in_another_process_at_a_lower_priority() -> None:
    pool = InProcesses(workers=1, nice=5)
    try:
        pid, nice, result = await pool.run(where_and_how_nice, 21)
    finally:
        pool.close()
    assert result == 42
    assert pid != os.getpid()
    assert nice >= os.nice(0) + 5


async def test_close_ends_the_worker_even_in_the_middle_of_a_job() -> None:
    pool = InProcesses(workers=1)
    await pool.run(where_and_how_nice, 1)  # started on first use
    [worker] = pool.processes()
    job = asyncio.ensure_future(pool.run(forever))
    await asyncio.sleep(0.2)
    job.cancel()
    pool.close()
    assert not worker.is_alive()
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_close_ends_a_worker_still_starting_with_a_job_sent_to_it() -> None:
    # The bot stops a moment after a command sent the pool its first job: the worker has
    # not yet said who it is, but it would run the job to the end (and the bot's exit
    # would wait for it) if close() let it be.
    before = set(multiprocessing.active_children())
    pool = InProcesses(workers=1)
    job = asyncio.ensure_future(pool.run(forever))
    await asyncio.sleep(0.02)  # sent to the worker, which is still starting
    job.cancel()
    pool.close()
    assert [p for p in multiprocessing.active_children() if p not in before] == []
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_no_process_is_started_until_work_comes() -> None:
    pool = InProcesses()
    assert pool.processes() == []
    pool.close()


async def test_the_in_process_world_runs_the_same_work_in_a_thread() -> None:
    pid, _, result = await InThread().run(where_and_how_nice, 4)
    assert (pid, result) == (os.getpid(), 8)
