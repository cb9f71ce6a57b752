"""The slow half of a command, run after its transaction and outside any other.

A handler reads what it needs from the database in its transaction, then
hands the rest (network reads, a model, charts) to :meth:`Context.defer`.
The job gets an :class:`Outside`: who asked and where, the transport, and a
thread or the bot's offload (:mod:`bot.offload`) to compute in, but no session,
so it cannot hold the database's write lock while it works; only a read-only
snapshot, for reads too big to make while everyone else waits. Its replies are
collected and committed afterwards in a short transaction together with the
record that the command was handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bot import prefetch
from bot.events import Incoming
from storage.outbox import Attachment

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.commands.sender import Sender
    from bot.events import RoomContext
    from bot.host import Host

T = TypeVar("T")


@dataclass
class Outside:
    """What a deferred job may touch; ``private`` sends its answers by DM."""

    app: Host
    message: Incoming
    room: RoomContext
    sender: Sender
    private: bool = False
    replies: list[tuple[str, Attachment | None]] = field(default_factory=list)

    def reply(self, body: str, *, attachment: Attachment | None = None) -> None:
        self.replies.append((body, attachment))

    async def thread(self, work: Callable[[], T]) -> T:
        """CPU-heavy work in a thread, so the event loop keeps hearing other rooms."""
        return await asyncio.to_thread(work)

    async def compute(self, work: Callable[..., T], *args: Any) -> T:
        """CPU-heavy work where it holds up no one (:mod:`bot.offload`: under the service,
        another process): ``work`` a module-level function, its arguments and result
        picklable."""
        return await self.app.offload.run(work, *args)

    def snapshot(self) -> AbstractAsyncContextManager[AsyncSession]:
        """The database as committed, to read only and without the write lock
        (:meth:`storage.engine.Database.snapshot`): for reads too big to make in the
        command's transaction, where every other room's command would wait for them."""
        return self.app.db.snapshot()

    async def room_members(self) -> dict[str, str | None]:
        return await prefetch.members(self.app, self.room.room_id)


Deferred = Callable[[Outside], Awaitable[None]]
