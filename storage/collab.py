"""Evidence that collaborating paid off: joint bids, shared events, volunteers, referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.groups import Group
from storage.models import FORGOTTEN, Base, Id, add_row
from storage.refs import Referenced, by_number

TYPES = ("joint-funding", "shared-event", "shared-volunteers", "referral", "other")


class CollabRecord(Referenced, Base):
    """One piece of evidence, ``C<id>`` in chat. Removed records are kept out of every sum."""

    LETTER = "C"
    __tablename__ = "collab_records"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    group_ids: Mapped[list[int]] = mapped_column(JSON)
    # Whole pounds; only joint-funding amounts are summed as money.
    amount: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255), index=True)
    recorded_at: Mapped[datetime] = mapped_column(index=True)
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(255))

    @property
    def findable(self) -> bool:
        return self.removed_at is None


async def record(session: AsyncSession, *, type: str, group_ids: list[int], amount: int | None,
                 note: str | None, author: str, at: datetime) -> CollabRecord:
    row = CollabRecord(type=type, group_ids=sorted(group_ids), amount=amount, note=note,
                       author=author, recorded_at=at)
    return await add_row(session, row)


async def get(session: AsyncSession, record_id: int) -> CollabRecord | None:
    return await by_number(session, CollabRecord, record_id)


async def remove(session: AsyncSession, row: CollabRecord, by: str, at: datetime) -> None:
    row.removed_at = at
    row.removed_by = by
    await session.flush()


async def current(session: AsyncSession) -> list[CollabRecord]:
    return list(await session.scalars(
        select(CollabRecord).where(CollabRecord.removed_at.is_(None)).order_by(CollabRecord.id)
    ))


async def group_areas(session: AsyncSession) -> dict[int, str]:
    """Every group's area, unregistered ones too: their past collaboration still happened."""
    rows = await session.execute(select(Group.id, Group.area_code))
    return {group_id: code for group_id, code in rows.tuples()}


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    rows = await session.scalars(select(CollabRecord).where(CollabRecord.author == user_id))
    removed = await session.scalars(
        select(CollabRecord).where(CollabRecord.removed_by == user_id))
    return {"collab_records": [
        {"record": r.ref, "type": r.type, "groups": [f"G{g}" for g in r.group_ids],
         "amount": r.amount, "note": r.note, "recorded_at": r.recorded_at.isoformat(),
         "removed": r.removed_at is not None} for r in rows],
        "collab_records_you_removed": [r.ref for r in removed]}


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """The evidence is about groups, not people: it stays, without who recorded it.

    The free-text note is cleared too, since it may name the person.
    """
    changed = 0
    for column in (CollabRecord.author, CollabRecord.removed_by):
        values: dict[str, Any] = {column.key: FORGOTTEN}
        if column is CollabRecord.author:
            values["note"] = None
        result = await session.execute(
            update(CollabRecord).where(column == user_id).values(values))
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return changed
