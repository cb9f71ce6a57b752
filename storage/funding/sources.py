"""RSS and Atom feeds (``S<n>``) polled for new notices, with what the poller needs to
ask politely (etag, last modified) and to back off (failures, next poll).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id, add_row
from storage.refs import Referenced, by_number


class FundingSource(Referenced, Base):
    """An RSS or Atom feed polled for new notices (``S<n>``); a removed one keeps its row."""

    LETTER = "S"
    __tablename__ = "funding_sources"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    added_by: Mapped[str] = mapped_column(String(255))
    added_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_polled_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime]
    items_seen: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def findable(self) -> bool:
        return self.removed_at is None


async def sources(session: AsyncSession) -> list[FundingSource]:
    return list(
        await session.scalars(
            select(FundingSource)
            .where(FundingSource.removed_at.is_(None))
            .order_by(FundingSource.id)
        )
    )


async def source(session: AsyncSession, source_id: int) -> FundingSource | None:
    return await by_number(session, FundingSource, source_id)


async def source_by_url(session: AsyncSession, url: str) -> FundingSource | None:
    return await session.scalar(
        select(FundingSource).where(FundingSource.url == url, FundingSource.removed_at.is_(None))
    )


async def add_source(session: AsyncSession, **fields: Any) -> FundingSource:
    row = FundingSource(**fields)
    return await add_row(session, row)


async def due_sources(session: AsyncSession, now: datetime) -> list[FundingSource]:
    return list(
        await session.scalars(
            select(FundingSource).where(
                FundingSource.removed_at.is_(None), FundingSource.next_poll_at <= now
            )
        )
    )
