"""Notices waiting for a room's daily or weekly digest, or a group's email digest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.funding.notices import FundingNotice
from storage.models import Base, Id


class FundingDigestEntry(Base):
    """A notice waiting for a room's daily or weekly digest, or a group's email digest."""

    __tablename__ = "funding_digest_entries"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("funding_notices.id"))
    # "room:<room id>" or "group:G<n>"; one entry per notice and target.
    target: Mapped[str] = mapped_column(String(300))
    room_id: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[int | None] = mapped_column(Integer)
    email: Mapped[str | None] = mapped_column(String(320))
    cadence: Mapped[str] = mapped_column(String(16))  # daily, weekly, email
    queued_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("notice_id", "target"),)


async def add_digest_entry(session: AsyncSession, **fields: Any) -> bool:
    """False when this notice is already waiting for (or was sent in) that digest."""
    exists = await session.scalar(
        select(FundingDigestEntry.id).where(
            FundingDigestEntry.notice_id == fields["notice_id"],
            FundingDigestEntry.target == fields["target"],
        )
    )
    if exists is not None:
        return False
    session.add(FundingDigestEntry(**fields))
    return True


async def pending_digest(
    session: AsyncSession, cadences: tuple[str, ...]
) -> list[tuple[FundingDigestEntry, FundingNotice]]:
    rows = await session.execute(
        select(FundingDigestEntry, FundingNotice)
        .join(FundingNotice, FundingNotice.id == FundingDigestEntry.notice_id)
        .where(FundingDigestEntry.sent_at.is_(None), FundingDigestEntry.cadence.in_(cadences))
        .order_by(FundingDigestEntry.id)
    )
    return [(e, n) for e, n in rows.tuples()]


async def email_digest(session: AsyncSession) -> list[tuple[FundingDigestEntry, FundingNotice]]:
    """Entries for groups not on chat, for the email digest sender to pick up and mark sent."""
    return await pending_digest(session, ("email",))
