"""Handing a command's just-committed replies straight to the outbox worker.

The worker would find them on its next pass, but that pass is a transaction of
its own on every reply, and a person waits for it. Instead the replies a command
queued that are due now are leased to the worker inside the command's own
transaction (so no pass picks them twice) and given to it the moment that
transaction commits. Exactly once still holds: a lease that is never sent runs
out, and the worker's next pass sends the row with its stored transaction id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.outbox_worker import lease
from storage import outbox
from storage.models import OutboxMessage

Handoff = Callable[[list[OutboxMessage]], None]


def lease_replies(session: AsyncSession, now: datetime) -> list[OutboxMessage]:
    """The messages queued in ``session`` at ``now`` that are due, leased to the worker;
    call inside the transaction, before it commits."""
    return [row for row in outbox.queued_in(session)
            if row.created_at == now and lease(row, now)]


def hand_over(rows: list[OutboxMessage], handoff: Handoff | None) -> None:
    """Give the committed, leased ``rows`` to the worker (nothing without one)."""
    for row in rows:
        row.attempts = 0  # the count before this try, as the worker expects
    if rows and handoff is not None:
        handoff(rows)
