"""Unclaimed listings read from Open Referral UK files, and room admins' claims on them.

A council's directory already lists most groups; rather than typing them in one by
one, its export is imported as listings (``L<n>``) that a group's room claims. A
listing is keyed by its ORUK id, so importing the same directory again updates it.
A claim names who asked and who answered (people, so it is covered by privacy
export and forget); the listing itself holds only what its source published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import FORGOTTEN, Base, Id, replace_person
from storage.refs import Referenced, by_number

PENDING, CONFIRMED, REFUSED = "pending", "confirmed", "refused"


class Listing(Referenced, Base):
    """``L<id>`` in chat: one service (or organisation) from an imported ORUK directory."""

    LETTER = "L"
    __tablename__ = "listings"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # The ORUK service id (the organisation's when it listed no service): re-imports match it.
    oruk_id: Mapped[str] = mapped_column(String(255), unique=True)
    oruk_organization_id: Mapped[str | None] = mapped_column(String(255))
    organization: Mapped[str | None] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    # Contact the source published (never a person's: ORUK contacts are not imported).
    email: Mapped[str | None] = mapped_column(String(320))
    url: Mapped[str | None] = mapped_column(String(500))
    area_code: Mapped[str | None] = mapped_column(String(16), index=True)
    # Where the source says it works, as text, when no area of ours matched (or as well).
    area_text: Mapped[str | None] = mapped_column(String(500))
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Taxonomy terms that matched no theme, kept as text.
    terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    org_type: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(255))
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The group the listing became when a claim was confirmed.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)


class ListingClaim(Base):
    """A room's admin saying "that listing is us", until a moderator or coordinator answers."""

    __tablename__ = "listing_claims"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    room_id: Mapped[str] = mapped_column(String(255))
    # What the listing could not say and the admin did (used only when the room has no group).
    area_code: Mapped[str | None] = mapped_column(String(16))
    type: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[str | None] = mapped_column(String(16))
    asked_by: Mapped[str] = mapped_column(String(255))
    asked_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    answered_by: Mapped[str | None] = mapped_column(String(255))
    answered_at: Mapped[datetime | None]


async def by_id(session: AsyncSession, listing_id: int) -> Listing | None:
    return await by_number(session, Listing, listing_id)


async def by_oruk_ids(session: AsyncSession, ids: list[str]) -> dict[str, Listing]:
    """The listings already imported under these ORUK ids."""
    found: dict[str, Listing] = {}
    for start in range(0, len(ids), 500):  # a bounded IN list on both engines
        chunk = ids[start:start + 500]
        for listing in await session.scalars(select(Listing).where(Listing.oruk_id.in_(chunk))):
            found[listing.oruk_id] = listing
    return found


async def unclaimed(session: AsyncSession) -> list[Listing]:
    """Listings no group has claimed yet: the directory shows them, marked unclaimed."""
    return list(await session.scalars(
        select(Listing).where(Listing.group_id.is_(None)).order_by(Listing.name, Listing.id)))


async def of_groups(session: AsyncSession, group_ids: list[int]) -> dict[int, Listing]:
    """The listing each of these groups was claimed from (the export reuses its ids)."""
    if not group_ids:
        return {}
    rows = await session.scalars(select(Listing).where(Listing.group_id.in_(group_ids)))
    return {listing.group_id: listing for listing in rows if listing.group_id is not None}


async def pending_claim(session: AsyncSession, listing_id: int) -> ListingClaim | None:
    return await session.scalar(select(ListingClaim).where(
        ListingClaim.listing_id == listing_id, ListingClaim.status == PENDING))


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """Claims this person asked for or answered."""
    asked = await session.scalars(select(ListingClaim).where(ListingClaim.asked_by == user_id))
    answered = await session.scalars(
        select(ListingClaim).where(ListingClaim.answered_by == user_id))
    return {
        "listing_claims_you_asked": [
            {"listing": Listing.ref_of(c.listing_id), "room": c.room_id,
             "asked_at": c.asked_at.isoformat(), "status": c.status} for c in asked],
        "listing_claims_you_answered": [
            {"listing": Listing.ref_of(c.listing_id), "status": c.status} for c in answered],
    }


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """The claim (a room and a listing) stays; who asked and who answered go."""
    return await replace_person(
        session, (ListingClaim.asked_by, ListingClaim.answered_by), user_id, FORGOTTEN)
