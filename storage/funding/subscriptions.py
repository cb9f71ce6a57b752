"""What a room wants to hear about: one subscription per room, whose empty filters
match every notice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id


class FundingSubscription(Base):
    """What a room wants to hear about; one per room. Empty filters match everything."""

    __tablename__ = "funding_subscriptions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(255), unique=True)
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_award: Mapped[int | None] = mapped_column(Integer)
    max_award: Mapped[int | None] = mapped_column(Integer)
    sizes: Mapped[list[str]] = mapped_column(JSON, default=list)
    digest: Mapped[str] = mapped_column(String(16), default="instant")
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


async def subscription(session: AsyncSession, room_id: str) -> FundingSubscription | None:
    return await session.scalar(
        select(FundingSubscription).where(FundingSubscription.room_id == room_id)
    )


async def subscriptions(session: AsyncSession) -> list[FundingSubscription]:
    return list(await session.scalars(select(FundingSubscription).order_by(FundingSubscription.id)))


async def subscribe(session: AsyncSession, room_id: str, **fields: Any) -> FundingSubscription:
    """Create or replace the room's subscription."""
    row = await subscription(session, room_id)
    if row is None:
        row = FundingSubscription(room_id=room_id, **fields)
        session.add(row)
    else:
        for key, value in fields.items():
            setattr(row, key, value)
    await session.flush()
    return row


async def unsubscribe(session: AsyncSession, room_id: str) -> bool:
    row = await subscription(session, room_id)
    if row is None:
        return False
    await session.delete(row)
    return True
