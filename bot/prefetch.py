"""Network reads a command needs, made before its transaction, never inside it.

A transaction holds SQLite's write lock (and a connection) until it ends, so a
read from the chat server inside one stalls every other room behind the server.
But what a handler reads (who is in a group's room, who holds power there)
often depends on what it has just read from the database. So reads go through
:func:`read`: outside a transaction it simply reads; inside a command's
transaction it raises :class:`ReadFirst`, the router rolls the transaction back,
makes the read outside any transaction, and runs the command again with the
answer at hand (kept for that event only, so a retry never reads twice).
Work the command did before the read is undone with the rollback: decided once,
on what was read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from bot.power import PowerLevels
from storage.engine import in_transaction

if TYPE_CHECKING:
    from bot.host import Host

T = TypeVar("T")


@dataclass
class Reads:
    """What one event's handling has read from the server so far."""

    # The task handling the event: a task it starts (a background worker woken by its
    # commit) inherits the variable but is no part of the command.
    task: object = field(default_factory=asyncio.current_task)
    values: dict[Hashable, Any] = field(default_factory=dict)


_READS: ContextVar[Reads | None] = ContextVar("grapevine_reads", default=None)


def _scope() -> Reads | None:
    reads = _READS.get()
    return reads if reads is not None and reads.task is asyncio.current_task() else None


class ReadFirst(Exception):
    """Raised inside a command's transaction for a read it has not made yet."""

    def __init__(self, reads: Reads, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(repr(key))
        self.reads, self.key, self.fetch = reads, key, fetch

    async def read(self) -> None:
        """Make the read (call outside any transaction) and keep its answer."""
        self.reads.values[self.key] = await self.fetch()


@contextmanager
def reading() -> Iterator[Reads]:
    """The scope of one event's handling: reads made in it are kept until it ends."""
    reads = Reads()
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


async def read(key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
    """``fetch()``'s answer, read outside any transaction (see the module docstring)."""
    reads = _scope()
    if reads is not None and key in reads.values:
        return cast(T, reads.values[key])
    if reads is not None and in_transaction():
        raise ReadFirst(reads, key, fetch)
    value = await fetch()
    if reads is not None:
        reads.values[key] = value
    return value


async def members(host: Host, room_id: str) -> dict[str, str | None]:
    """Who is joined to the room (user id -> display name), read from the server."""
    return await read(("members", room_id), lambda: host.transport.members(room_id))


async def power_levels(host: Host, room_id: str) -> PowerLevels:
    """The room's power levels: from the kept state when there, else read once."""
    kept = host.room_states.power_levels(room_id)
    if kept is not None:
        return kept
    return await read(("power", room_id), lambda: host.power_levels(room_id))


def kept(key: Hashable) -> Any:
    """What this event's handling kept under ``key`` (by :func:`once`), or None."""
    reads = _scope()
    return None if reads is None else reads.values.get(key)


def once(key: Hashable, decide: Callable[[], T]) -> T:
    """``decide()`` the first time this event's handling asks, the same answer after
    (a command run again after a read must not, say, count twice against a rate limit)."""
    reads = _scope()
    if reads is None:
        return decide()
    if key not in reads.values:
        reads.values[key] = decide()
    return cast(T, reads.values[key])
