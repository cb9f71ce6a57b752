"""Running the slow half of commands: deferred jobs, after their command has committed.

A handler that needs network reads or heavy work (``!reach``) hands it to
``ctx.defer`` (collected by :mod:`bot.aftercommit`). The router gives each such
job to :class:`Deferrals` once the command's transaction has committed: jobs run
one at a time, outside any transaction, so one model build never holds the
database's write lock nor crowds out the other rooms; a slow one says "working
on it" first; transient server failures are tried again with the router's backoff;
its replies are committed afterwards with the record that the command was handled,
so it is answered exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Context, Sender
from bot.commands.deferred import Deferred, Outside
from bot.commands.refusals import sorry
from bot.commands.registry import Command, CommandError
from bot.events import Incoming, RoomContext
from bot.host import Host
from bot.runtime.backoff import Backoff
from bot.runtime.inflight import Lanes
from bot.transport.base import TransportError, is_transient
from storage import outbox, state


class Router(Host, Protocol):
    """What the runner needs of the router beyond what every feature sees."""

    @property
    def lanes(self) -> Lanes | None:
        """None where commands are handled before ``on_message`` returns (no lanes)."""

    @property
    def working_after(self) -> float:
        """Seconds before a job still running says "working on it" (lanes only)."""

    @property
    def retry_tries(self) -> int: ...

    @property
    def retry_backoff(self) -> Callable[[], Backoff]: ...

    def context_for(self, session: AsyncSession, message: Incoming, room: RoomContext,
                    sender: Sender, now: datetime, command: Command | None = None) -> Context:
        """A command context for an answer, as the router builds it."""

    def committed(self) -> Awaitable[None]:
        """Wake the outbox worker and run the after-commit actions."""


class Deferrals:
    """Runs deferred jobs for one router, one at a time."""

    def __init__(self, router: Router) -> None:
        self._router = router
        # Deferred work (!reach ...) runs this many at once.
        self._heavy = asyncio.Semaphore(1)

    async def run(self, ctx: Context, job: Deferred, *, name: str) -> None:
        """Run ``job`` for its committed command: to its end here without lanes (the
        shell, the in-process world), else as a task the sync position waits for."""
        lanes = self._router.lanes
        if lanes is None:
            await self.finish(ctx, job)
        else:
            lanes.inflight.track(self.finish(ctx, job), name=name)

    async def finish(self, ctx: Context, job: Deferred) -> None:
        """Run a deferred job (one at a time), say "working on it" if it is slow, then
        commit its replies with the handled-event record."""
        router = self._router
        outside = Outside(router, ctx.message, ctx.room, ctx.sender, ctx.private_replies)
        work = asyncio.ensure_future(self._run_job(outside, job))
        try:
            if router.lanes is not None:
                done, _ = await asyncio.wait({work}, timeout=router.working_after)
                if not done:
                    await self._working(ctx)
            await work
        finally:
            # Cancelled (a stop) while waiting on the job: asyncio.wait leaves it running,
            # and it would go on using a database the service is closing. End it first.
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
        message = ctx.message
        async with router.db.transaction() as session:
            if await state.is_handled(session, message.event_id):
                return
            now = router.clock.now()
            await state.mark_handled(session, message.event_id, message.room_id, now)
            answer = router.context_for(session, message, ctx.room, ctx.sender, now,
                                        ctx.command)
            answer.private_replies = outside.private
            for body, attachment in outside.replies:
                await answer.reply(body, attachment=attachment)
        await router.committed()

    async def _run_job(self, outside: Outside, job: Deferred) -> None:
        router = self._router
        backoff = router.retry_backoff()
        tries = 0
        async with self._heavy:
            while True:
                tries += 1
                outside.replies.clear()
                try:
                    await job(outside)
                    return
                except CommandError as exc:
                    outside.reply(str(exc))
                    return
                except TransportError as err:
                    if is_transient(err) and tries < router.retry_tries:
                        await asyncio.sleep(backoff.next_delay())
                        continue
                    outside.replies[:] = [(sorry("deferred work", outside.message), None)]
                    return
                except Exception:
                    outside.replies[:] = [(sorry("deferred work", outside.message), None)]
                    return

    async def _working(self, ctx: Context) -> None:
        router = self._router
        async with router.db.transaction() as session:
            await outbox.enqueue(
                session, now=router.clock.now(), room_id=ctx.room.room_id, kind="reply",
                body="Working on it; I'll answer when it's done.",
                extra={"m.relates_to": {"m.in_reply_to": {"event_id": ctx.message.event_id}}},
                dedupe_key=f"working:{ctx.message.event_id}",
            )
        router.queued()
