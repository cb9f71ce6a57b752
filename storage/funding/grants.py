"""Past grants from 360Giving files: who was awarded what, where, to show a group what
funders have given near it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id


class PastGrant(Base):
    """An awarded grant from a 360Giving file, keyed by beneficiary location and recipient."""

    __tablename__ = "past_grants"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    grant_id: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    funder_id: Mapped[str] = mapped_column(String(255))
    funder_name: Mapped[str] = mapped_column(String(300))
    recipient_id: Mapped[str] = mapped_column(String(255), index=True)
    recipient_name: Mapped[str] = mapped_column(String(300))
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    awarded_on: Mapped[str] = mapped_column(String(10))
    area_code: Mapped[str | None] = mapped_column(String(16), index=True)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)


async def upsert_grants(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert new grants and update known ones (by 360Giving id), 500 at a time."""
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        known = {g.grant_id: g for g in await session.scalars(
            select(PastGrant).where(PastGrant.grant_id.in_([r["grant_id"] for r in chunk])))}
        fresh = []
        for row in chunk:
            existing = known.get(row["grant_id"])
            if existing is None:
                fresh.append(row)
                continue
            for key, value in row.items():
                setattr(existing, key, value)
        if fresh:
            await session.execute(insert(PastGrant), fresh)


async def grants_in(session: AsyncSession, area_codes: list[str]) -> list[PastGrant]:
    """Grants whose beneficiary lies in any of these areas (pass an area and all inside it)."""
    found: list[PastGrant] = []
    for start in range(0, len(area_codes), 500):
        found += await session.scalars(
            select(PastGrant).where(PastGrant.area_code.in_(area_codes[start:start + 500])))
    return found
