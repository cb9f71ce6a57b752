"""Which room got which notice: the "sent once" ledger and the notice's seed for the
reach model (the room, when, as which event, and how often its link was opened
there: a count only, never who). Broadcasts queue their outbox rows in batches here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import outbox
from storage.models import Base, Id, OutboxMessage


class FundingDelivery(Base):
    """A notice queued to a room: sent once, a seed for the reach model, opens counted."""

    __tablename__ = "funding_deliveries"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("funding_notices.id"), index=True)
    room_id: Mapped[str] = mapped_column(String(255))
    # Why the room got it: subscription, group, locality, function or digest.
    via: Mapped[str] = mapped_column(String(16))
    # The outbox row's dedupe key; the event id is copied in once the row is sent.
    dedupe_key: Mapped[str] = mapped_column(String(255))
    room_key: Mapped[str] = mapped_column(String(32), index=True)
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    queued_at: Mapped[datetime]
    event_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None]
    opens: Mapped[int] = mapped_column(Integer, default=0)
    last_opened_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("notice_id", "room_id"),)


async def delivered_rooms(session: AsyncSession, notice_id: int) -> set[str]:
    return set(
        await session.scalars(
            select(FundingDelivery.room_id).where(FundingDelivery.notice_id == notice_id)
        )
    )


async def queue_posts(
    session: AsyncSession, now: datetime, posts: list[dict[str, Any]]
) -> set[str]:
    """Queue many outbox rows (each with a ``dedupe_key``) in one round trip; keys queued.

    What ``outbox.enqueue`` does row by row, batched: a 500-room broadcast is
    one SELECT and one multi-row INSERT instead of a thousand round trips.
    The unique dedupe key still guards against a concurrent duplicate.
    """
    keys = [post["dedupe_key"] for post in posts]
    for key in keys:
        outbox.check_key(key)
    taken: set[str] = set()
    for start in range(0, len(keys), 500):
        taken |= set(await session.scalars(
            select(OutboxMessage.dedupe_key).where(
                OutboxMessage.dedupe_key.in_(keys[start:start + 500]))
        ))
    fresh = [post for post in posts if post["dedupe_key"] not in taken]
    if fresh:
        await session.execute(insert(OutboxMessage), [
            {"to_user": None, "kind": "notice", "html": None, "extra": None, "own_post": True,
             "created_at": now, "not_before": now, "attempts": 0, **post}
            for post in fresh
        ])
    return {post["dedupe_key"] for post in fresh}


async def record_delivery(session: AsyncSession, **fields: Any) -> FundingDelivery:
    row = FundingDelivery(**fields)
    session.add(row)
    return row


async def record_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Many deliveries in one multi-row INSERT (the ORM would insert them one by one)."""
    if rows:
        await session.execute(insert(FundingDelivery), [
            {"event_id": None, "sent_at": None, "last_opened_at": None, "opens": 0, **row}
            for row in rows
        ])


async def deliveries(session: AsyncSession, notice_id: int) -> list[FundingDelivery]:
    return list(
        await session.scalars(
            select(FundingDelivery)
            .where(FundingDelivery.notice_id == notice_id)
            .order_by(FundingDelivery.id)
        )
    )


async def fill_sent(session: AsyncSession) -> int:
    """Copy event ids and send times from the outbox into deliveries not yet marked sent."""
    rows = (
        await session.execute(
            select(FundingDelivery, OutboxMessage.event_id, OutboxMessage.sent_at)
            .join(OutboxMessage, OutboxMessage.dedupe_key == FundingDelivery.dedupe_key)
            .where(FundingDelivery.sent_at.is_(None), OutboxMessage.sent_at.is_not(None))
        )
    ).all()
    for delivery, event_id, sent_at in rows:
        delivery.event_id = event_id
        delivery.sent_at = sent_at
    return len(rows)
