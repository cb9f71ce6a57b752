"""What a command's transaction leaves to do once it has committed.

A handler may ask for work that must not happen unless its transaction commits
(redacting a message, inviting someone) or that must not happen inside it at all
(a deferred job: network reads, a model, charts). Both are collected here, per
task, and the router runs them after the commit. Per task (a context variable),
so commands running side by side in different rooms' lanes never run, or lose,
each other's actions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from bot.commands.context import Context
from bot.commands.deferred import Deferred
from bot.transport.base import TransportError
from storage.engine import in_transaction

log = logging.getLogger("grapevine")

Action = Callable[[], Awaitable[None]]


class Runs(Protocol):
    async def run(self) -> None: ...


R = TypeVar("R", bound=Runs)


@dataclass
class Pending:
    """What one command's transaction leaves to do once it has committed."""

    after_commit: list[Action] = field(default_factory=list)
    deferred: list[tuple[Context, Deferred]] = field(default_factory=list)
    # Actions registered by key (see after_commit_once).
    keyed: dict[str, Runs] = field(default_factory=dict)
    # A wake asked for inside the transaction (see wake_after_commit).
    wake: bool = False


_PENDING: ContextVar[Pending | None] = ContextVar("grapevine_pending", default=None)


@contextmanager
def collecting() -> Iterator[Pending]:
    """Collect what the command run inside this block leaves for after its commit."""
    pending = Pending()
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def after_commit(action: Action) -> None:
    """Run ``action`` once the command's transaction has committed (never on rollback);
    outside a command it is dropped, as there is no commit to wait for."""
    pending = _PENDING.get()
    if pending is not None:
        pending.after_commit.append(action)


def after_commit_once(key: str, make: Callable[[], R]) -> R:
    """The action registered under ``key`` for this commit, made and registered if it is
    new: a message that runs a command twice (the answer to a question re-running it)
    still leaves one action, and both runs see the same one. Outside a command the
    action is made and dropped, as ``after_commit`` does."""
    pending = _PENDING.get()
    if pending is None:
        return make()
    found = pending.keyed.get(key)
    if found is None:
        found = pending.keyed[key] = make()
        pending.after_commit.append(found.run)
    return cast(R, found)


def wake_after_commit() -> bool:
    """Inside a command's transaction, note that the workers are to be woken once it
    commits, and say so (True); elsewhere False, and the caller wakes them now.

    A wake before the commit is wasted: a pass would not see the rows yet (or, on
    SQLite, would wait for the write lock the command holds)."""
    pending = _PENDING.get()
    if pending is None or not in_transaction():
        return False
    pending.wake = True
    return True


def defer(ctx: Context, job: Deferred) -> None:
    """Finish the running command with ``job`` after its commit (see bot.deferral)."""
    pending = _PENDING.get()
    if pending is None:
        raise RuntimeError("defer() outside a command")
    pending.deferred.append((ctx, job))


async def run_after_commit() -> None:
    """Run (once) the actions the current command left; a failed one is logged, the
    rest still run: the command has committed and its answer stands."""
    pending = _PENDING.get()
    if pending is None:
        return
    actions, pending.after_commit = pending.after_commit, []
    for action in actions:
        try:
            await action()
        except TransportError as exc:
            log.warning("after-commit action failed: %s", exc.errcode)
