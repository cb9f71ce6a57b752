"""Deadline reminders (7 and 1 days before), at most once per notice, room and day count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.funding.deliveries import FundingDelivery
from storage.funding.notices import PUBLISHED, FundingNotice
from storage.models import Base, Id


class FundingReminder(Base):
    """A deadline reminder queued to a room (days before: 7 or 1), at most once each."""

    __tablename__ = "funding_reminders"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("funding_notices.id"))
    room_id: Mapped[str] = mapped_column(String(255))
    days: Mapped[int] = mapped_column(Integer)
    queued_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("notice_id", "room_id", "days"),)


async def reminder_candidates(
    session: AsyncSession, now: datetime
) -> list[tuple[FundingNotice, FundingDelivery]]:
    """Deliveries of open published notices to rooms that keep reminders on."""
    rows = await session.execute(
        select(FundingNotice, FundingDelivery)
        .join(FundingDelivery, FundingDelivery.notice_id == FundingNotice.id)
        .where(
            FundingNotice.status == PUBLISHED,
            FundingNotice.closes_at > now,
            FundingDelivery.reminders.is_(True),
        )
    )
    return [(n, d) for n, d in rows.tuples()]


async def reminders_sent(session: AsyncSession, notice_id: int, room_id: str) -> set[int]:
    return set(
        await session.scalars(
            select(FundingReminder.days).where(
                FundingReminder.notice_id == notice_id, FundingReminder.room_id == room_id
            )
        )
    )


async def record_reminder(
    session: AsyncSession, notice_id: int, room_id: str, days: int, at: datetime
) -> None:
    session.add(FundingReminder(notice_id=notice_id, room_id=room_id, days=days, queued_at=at))
