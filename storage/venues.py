"""Venues and community hubs: affordable premises groups can use, found by area and size.

A hub is a venue that is also an offline node of the network (the seeds'
recommendation 4): it is tied to its locality's groups in the reach graph and
gets the printed notice sheet for its locality. ``P<id>`` in chat (premises:
V is taken by volunteer requests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import FORGOTTEN, Base, Id
from storage.refs import Referenced, by_number

PRICES: tuple[str, ...] = ("free", "low", "standard")


class Venue(Referenced, Base):
    """One venue. Removed venues keep their row (and number) with ``removed_at`` set."""

    LETTER = "P"
    __tablename__ = "venues"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    area_code: Mapped[str] = mapped_column(String(16), index=True)
    capacity: Mapped[int] = mapped_column(Integer)
    price: Mapped[str] = mapped_column(String(16))
    accessible: Mapped[bool] = mapped_column(Boolean, default=False)
    # How to book it: a Matrix id, a room alias, an email address or a phone number.
    # A Matrix id or an email names a person, so export and forget cover it.
    contact: Mapped[str | None] = mapped_column(String(320), info={"person": "{user}"})
    hub: Mapped[bool] = mapped_column(Boolean, default=False)
    # Weekly opening as availability slots (bot/features/availability.py); None: not given.
    open_slots: Mapped[int | None] = mapped_column(Integer)
    # The group whose own premises these are (added from its room), if any.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    added_by: Mapped[str] = mapped_column(String(255))
    added_at: Mapped[datetime]
    removed_by: Mapped[str | None] = mapped_column(String(255))
    removed_at: Mapped[datetime | None]

    @property
    def findable(self) -> bool:
        return self.removed_at is None


async def by_id(session: AsyncSession, venue_id: int) -> Venue | None:
    return await by_number(session, Venue, venue_id)


async def current(session: AsyncSession) -> list[Venue]:
    """Every venue not removed, oldest first."""
    return list(await session.scalars(
        select(Venue).where(Venue.removed_at.is_(None)).order_by(Venue.id)))


async def hubs(session: AsyncSession) -> list[Venue]:
    return list(await session.scalars(
        select(Venue).where(Venue.removed_at.is_(None), Venue.hub.is_(True)).order_by(Venue.id)))


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """Venues this person added, removed, or is the booking contact of."""
    rows = await session.scalars(select(Venue).where(
        (Venue.added_by == user_id) | (Venue.removed_by == user_id) | (Venue.contact == user_id)
    ).order_by(Venue.id))
    return {"venues": [
        {"venue": v.ref, "name": v.name, "added_by_you": v.added_by == user_id,
         "removed_by_you": v.removed_by == user_id, "you_are_its_contact": v.contact == user_id}
        for v in rows]}


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """The venue stays (it is a place, not a person); who added or removed it goes, and a
    venue whose contact was this person has no contact any more."""
    changed = 0
    for column in (Venue.added_by, Venue.removed_by):
        result = await session.execute(
            update(Venue).where(column == user_id).values({column.key: FORGOTTEN}))
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    result = await session.execute(
        update(Venue).where(Venue.contact == user_id).values(contact=None))
    changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return changed
