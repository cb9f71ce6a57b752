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

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.outbox_worker import leasable, lease
from storage import outbox
from storage.models import OutboxMessage

Handoff = Callable[[list[OutboxMessage]], None]


def lease_as_queued(session: AsyncSession, now: datetime) -> None:
    """Decide each reply's lease as it is queued in ``session``'s transaction, before it
    is inserted, so it goes in leased: one statement fewer per reply than leasing it
    after (bench/latency.py). Call at the start of a command's transaction."""

    async def leaser(row: OutboxMessage) -> None:
        if row.created_at == now and leasable(row, now) and not await outbox.would_wait(
                session, to_user=row.to_user, room_id=row.room_id):
            lease(row, now)

    outbox.lease_as_queued(session, leaser)


async def lease_replies(session: AsyncSession, now: datetime) -> list[OutboxMessage]:
    """The messages queued in ``session`` at ``now`` that are due, leased to the worker;
    call inside the transaction, before it commits.

    One that must go after an earlier message (:func:`storage.outbox.waits_behind`) is
    left to the worker's pass. Checked here, the answer holds until the row is sent:
    everything queued before it is already in the table, and what is queued after it
    waits behind it. So the worker sends a room's reply with no transaction of its own
    first (a DM it still checks, for whether it opens the person's DM room). Rows
    :func:`lease_as_queued` leased as they were queued are taken as they are.
    """
    leased = []
    for row in outbox.queued_in(session):
        state = inspect(row)
        if not state.persistent:
            continue  # undone with a savepoint the handler rolled back
        if row.attempts == 1 and row.attempted_at == now and row.sent_at is None:
            leased.append(row)  # leased as it was queued
        elif row.created_at == now and leasable(row, now) \
                and not await outbox.waits_behind(session, row):
            lease(row, now)
            leased.append(row)
    return leased


def hand_over(rows: list[OutboxMessage], handoff: Handoff | None) -> None:
    """Give the committed, leased ``rows`` to the worker (nothing without one)."""
    for row in rows:
        row.attempts = 0  # the count before this try, as the worker expects
    if rows and handoff is not None:
        handoff(rows)
