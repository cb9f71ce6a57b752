"""Deferred jobs end with the command that waits on them (a stop cancels that command)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from bot.deferral import Deferrals


async def test_a_stop_while_a_deferred_job_runs_ends_the_job_too() -> None:
    """Under lanes the runner waits on its job with a timeout (to say "working on it");
    cancelling the runner, as the service's stop does, must end the job with it: a job
    left running would go on using the database the service then closes."""
    started, ended = asyncio.Event(), asyncio.Event()

    async def job(_outside: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # slow work, until cancelled
        finally:
            ended.set()

    router: Any = SimpleNamespace(lanes=object(), working_after=60.0)
    ctx: Any = SimpleNamespace(message=None, room=None, sender=None, private_replies=False)
    router.retry_backoff = lambda: None
    runner = asyncio.create_task(Deferrals(router).finish(ctx, job))
    await asyncio.wait_for(started.wait(), 5)

    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert ended.is_set()
