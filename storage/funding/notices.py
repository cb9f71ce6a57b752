"""Funding notices (``F<n>``): posted in chat or read from a feed, held for a moderator,
published, rejected, or expired at their deadline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id, add_row
from storage.refs import Referenced, by_number

HELD, PUBLISHED, REJECTED, EXPIRED = "held", "published", "rejected", "expired"
STATUSES = (HELD, PUBLISHED, REJECTED, EXPIRED)


class FundingNotice(Referenced, Base):
    """One funding opportunity. ``areas`` empty means county-wide."""

    LETTER = "F"
    __tablename__ = "funding_notices"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    funder: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    award_min: Mapped[int | None] = mapped_column(Integer)
    award_max: Mapped[int | None] = mapped_column(Integer)
    opens_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None] = mapped_column(index=True)
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    applicant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    sizes: Mapped[list[str]] = mapped_column(JSON, default=list)
    url: Mapped[str] = mapped_column(String(2000))
    # "chat", or "S<n>" for a feed item.
    source: Mapped[str] = mapped_column(String(40), default="chat")
    source_id: Mapped[int | None] = mapped_column(ForeignKey("funding_sources.id"))
    # A feed item's stable key (guid, else link, else a hash); unique per source.
    item_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    posted_by: Mapped[str | None] = mapped_column(String(255))
    posted_in: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("source_id", "item_key"),)


async def add_notice(session: AsyncSession, **fields: Any) -> FundingNotice:
    notice = FundingNotice(**fields)
    return await add_row(session, notice)


async def posted_since(session: AsyncSession, user_id: str, since: datetime) -> list[datetime]:
    """When ``user_id`` posted each notice since ``since`` (for the daily limit)."""
    return list(await session.scalars(
        select(FundingNotice.created_at)
        .where(FundingNotice.posted_by == user_id, FundingNotice.created_at >= since)
    ))


async def notice(session: AsyncSession, notice_id: int) -> FundingNotice | None:
    return await by_number(session, FundingNotice, notice_id)


async def notices(session: AsyncSession, status: str) -> list[FundingNotice]:
    return list(
        await session.scalars(
            select(FundingNotice).where(FundingNotice.status == status).order_by(FundingNotice.id)
        )
    )


async def expire(session: AsyncSession, now: datetime) -> list[int]:
    """Mark published notices whose deadline has passed as expired; their ids."""
    ids = list(
        await session.scalars(
            select(FundingNotice.id).where(
                FundingNotice.status == PUBLISHED, FundingNotice.closes_at <= now
            )
        )
    )
    if ids:
        await session.execute(
            update(FundingNotice).where(FundingNotice.id.in_(ids)).values(status=EXPIRED)
        )
    return ids


async def item_known(session: AsyncSession, source_id: int, item_key: str) -> bool:
    found = await session.scalar(
        select(FundingNotice.id).where(
            FundingNotice.source_id == source_id, FundingNotice.item_key == item_key
        )
    )
    return found is not None
