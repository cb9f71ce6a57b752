"""Funding notices (F<n>), subscriptions, feed sources (S<n>), deliveries, digests, past grants.

A delivery row is both the "sent once" ledger and the notice's seed for the
reach model: which room got it, when, as which event, and how often its link
was opened there (a count only, never who).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import outbox
from storage.models import Base, Id, OutboxMessage, add_row

HELD, PUBLISHED, REJECTED, EXPIRED = "held", "published", "rejected", "expired"
STATUSES = (HELD, PUBLISHED, REJECTED, EXPIRED)


class FundingNotice(Base):
    """One funding opportunity. ``areas`` empty means county-wide."""

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

    @property
    def ref(self) -> str:
        return f"F{self.id}"


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


class FundingSource(Base):
    """An RSS or Atom feed polled for new notices (``S<n>``)."""

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
    def ref(self) -> str:
        return f"S{self.id}"


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


class FundingReminder(Base):
    """A deadline reminder queued to a room (days before: 7 or 1), at most once each."""

    __tablename__ = "funding_reminders"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("funding_notices.id"))
    room_id: Mapped[str] = mapped_column(String(255))
    days: Mapped[int] = mapped_column(Integer)
    queued_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("notice_id", "room_id", "days"),)


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


# -- notices ----------------------------------------------------------------------------


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
    return await session.get(FundingNotice, notice_id)


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


# -- subscriptions ----------------------------------------------------------------------


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


# -- sources ----------------------------------------------------------------------------


async def sources(session: AsyncSession) -> list[FundingSource]:
    return list(
        await session.scalars(
            select(FundingSource)
            .where(FundingSource.removed_at.is_(None))
            .order_by(FundingSource.id)
        )
    )


async def source(session: AsyncSession, source_id: int) -> FundingSource | None:
    row = await session.get(FundingSource, source_id)
    return row if row is not None and row.removed_at is None else None


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


# -- deliveries, reminders, digests -----------------------------------------------------


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


# -- past grants ------------------------------------------------------------------------


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
