"""Message-flow records for the reach model: who-talks-where metadata, never message text.

A row says that a pseudonymous sender (an HMAC of their Matrix id, keyed by a
deployment secret) did something in a room at a time: a message, a reply, a
reaction, or a forward/mention of a funding notice; and what it pointed at.
Read receipts are kept only as a count per room per notice, never per person.
Link opens are counted per room by the funding feature (``funding_deliveries.opens``),
so no flow row of that kind exists. Opt-outs are kept by pseudonym key only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import funding
from storage.engine import upsert_insert
from storage.funding import FundingDelivery, FundingNotice
from storage.models import Base, Id, OutboxMessage

KINDS = ("message", "reply", "reaction", "forward")


class FlowEvent(Base):
    """One event's metadata. ``event_id`` is unique, so a replayed event is written once."""

    __tablename__ = "flow_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    room_id: Mapped[str] = mapped_column(String(255), index=True)
    sender_key: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The funding notice it points to (reply to or reaction on its post, or naming it).
    notice_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # The event it replies or reacts to, if any.
    target_event: Mapped[str | None] = mapped_column(String(255))


class FlowReceipts(Base):
    """Read receipts on a notice's post in one room: a count, never who."""

    __tablename__ = "flow_receipts"
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    notice_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(index=True)


class FlowOptOut(Base):
    """A sender who asked not to be recorded, by pseudonym key only."""

    __tablename__ = "flow_optouts"
    sender_key: Mapped[str] = mapped_column(String(64), primary_key=True, info={
        "kept_on_forget": "the opt-out is what keeps a forgotten person unrecorded"})
    at: Mapped[datetime]


@dataclass(frozen=True)
class FlowRow:
    """A flow record ready to store (the intake's buffer holds these)."""

    event_id: str
    room_id: str
    sender_key: str
    at: datetime
    kind: str
    notice_id: int | None = None
    target_event: str | None = None


def pseudonym(secret: bytes, user_id: str) -> str:
    """The sender key: HMAC-SHA256 of the Matrix id; without the secret it cannot be reversed
    by trying every known user id."""
    return hmac.new(secret, user_id.encode(), hashlib.sha256).hexdigest()


async def add_events(session: AsyncSession, rows: Sequence[FlowRow]) -> None:
    """Insert many rows at once; an event id already stored is skipped."""
    if not rows:
        return
    values = [asdict(row) for row in rows]
    await session.execute(
        upsert_insert(session, FlowEvent).on_conflict_do_nothing(index_elements=["event_id"]),
        values)


async def add_receipts(
    session: AsyncSession, counts: dict[tuple[str, int], int], at: datetime
) -> None:
    """Add receipt counts per (room, notice)."""
    for (room_id, notice_id), n in counts.items():
        stmt = upsert_insert(session, FlowReceipts).values(
            room_id=room_id, notice_id=notice_id, count=n, last_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["room_id", "notice_id"],
            set_={"count": FlowReceipts.count + n, "last_at": at},
        )
        await session.execute(stmt)


async def opted_out(session: AsyncSession, keys: Iterable[str]) -> set[str]:
    wanted = list(set(keys))
    if not wanted:
        return set()
    return set(await session.scalars(
        select(FlowOptOut.sender_key).where(FlowOptOut.sender_key.in_(wanted))))


async def opt_out(session: AsyncSession, key: str, at: datetime) -> bool:
    """False if already opted out."""
    if await session.get(FlowOptOut, key) is not None:
        return False
    session.add(FlowOptOut(sender_key=key, at=at))
    return True


async def opt_in(session: AsyncSession, key: str) -> bool:
    """False if not opted out."""
    result = await session.execute(delete(FlowOptOut).where(FlowOptOut.sender_key == key))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def is_opted_out(session: AsyncSession, key: str) -> bool:
    return await session.get(FlowOptOut, key) is not None


# -- what events point at --------------------------------------------------------------------


async def notice_posts(session: AsyncSession, event_ids: Iterable[str]) -> dict[str, int]:
    """Which of these events are a funding notice's post in a room: {event id: notice id}.

    Deliveries copy their event id from the outbox only on the funding sweep, so a
    post sent since is found through the outbox row it was sent from.
    """
    wanted = list(set(event_ids))
    if not wanted:
        return {}
    found: dict[str, int] = {}
    rows = await session.execute(
        select(FundingDelivery.event_id, FundingDelivery.notice_id)
        .where(FundingDelivery.event_id.in_(wanted)))
    for event_id, notice_id in rows.tuples():
        if event_id is not None:
            found[event_id] = notice_id
    rows = await session.execute(
        select(OutboxMessage.event_id, FundingDelivery.notice_id)
        .join(FundingDelivery, FundingDelivery.dedupe_key == OutboxMessage.dedupe_key)
        .where(OutboxMessage.event_id.in_(wanted)))
    for event_id, notice_id in rows.tuples():
        if event_id is not None:
            found.setdefault(event_id, notice_id)
    return found


async def known_notices(session: AsyncSession, ids: Iterable[int]) -> set[int]:
    """The ids among these that name a notice people have been sent (published or expired)."""
    wanted = list(set(ids))
    if not wanted:
        return set()
    return set(await session.scalars(
        select(FundingNotice.id).where(FundingNotice.id.in_(wanted),
                                       FundingNotice.status.in_([funding.PUBLISHED,
                                                                 funding.EXPIRED]))))


# -- reading, for the reach model ----------------------------------------------------------


async def events(session: AsyncSession, since: datetime | None = None) -> list[FlowEvent]:
    query = select(FlowEvent).order_by(FlowEvent.at, FlowEvent.id)
    if since is not None:
        query = query.where(FlowEvent.at >= since)
    return list(await session.scalars(query))


async def notice_events(session: AsyncSession, notice_id: int) -> list[FlowEvent]:
    return list(await session.scalars(
        select(FlowEvent).where(FlowEvent.notice_id == notice_id).order_by(FlowEvent.at)))


async def receipts(session: AsyncSession, notice_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(FlowReceipts.room_id, FlowReceipts.count).where(FlowReceipts.notice_id == notice_id))
    return {room: int(n) for room, n in rows.tuples()}


async def memberships(session: AsyncSession) -> list[tuple[str, str]]:
    """Distinct (room, sender key) pairs: who is active where (pseudonymously)."""
    rows = await session.execute(
        select(FlowEvent.room_id, FlowEvent.sender_key).distinct())
    return [(room, key) for room, key in rows.tuples()]


async def shared_members(session: AsyncSession) -> list[tuple[str, str, int]]:
    """Each pair of rooms (``a < b``) with the number of pseudonymous senders active in
    both. The reach graph needs no more of who is where than this, so the database does
    the counting: one row per pair of rooms, not one per person and room (about 2,400
    rows against 15,000 on busy_reach's county), read faster and pickled smaller."""
    where = select(FlowEvent.room_id, FlowEvent.sender_key).distinct().cte("active")
    a, b = where.alias("a"), where.alias("b")
    rows = await session.execute(
        select(a.c.room_id, b.c.room_id, func.count())
        .join_from(a, b, (a.c.sender_key == b.c.sender_key) & (a.c.room_id < b.c.room_id))
        .group_by(a.c.room_id, b.c.room_id)
        .order_by(a.c.room_id, b.c.room_id))
    return [(x, y, int(n)) for x, y, n in rows.tuples()]


async def forwarders(session: AsyncSession) -> list[tuple[str, str]]:
    """Distinct (room, sender key) of the senders who forwarded a notice: where each of
    them is active, the rooms a forward may have come from. Everyone else's rooms are
    not needed for that (``shared_members`` has them, counted)."""
    senders = select(FlowEvent.sender_key).where(FlowEvent.kind == "forward",
                                                 FlowEvent.notice_id.is_not(None))
    rows = await session.execute(
        select(FlowEvent.room_id, FlowEvent.sender_key)
        .where(FlowEvent.sender_key.in_(senders)).distinct()
        .order_by(FlowEvent.room_id, FlowEvent.sender_key))
    return [(room, key) for room, key in rows.tuples()]


async def people_in(session: AsyncSession, rooms: Iterable[str]) -> int:
    """How many distinct pseudonymous senders are active in any of ``rooms`` (one person
    in two of them counts once)."""
    wanted = sorted(set(rooms))
    if not wanted:
        return 0
    n = await session.scalar(select(func.count(FlowEvent.sender_key.distinct()))
                             .where(FlowEvent.room_id.in_(wanted)))
    return int(n or 0)


async def room_activity(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Per room: (messages, replies and forwards; distinct active senders, reactors included)."""
    said = func.sum(case((FlowEvent.kind == "reaction", 0), else_=1))
    rows = await session.execute(
        select(FlowEvent.room_id, said, func.count(FlowEvent.sender_key.distinct()))
        .group_by(FlowEvent.room_id))
    return {room: (int(n), int(people)) for room, n, people in rows.tuples()}


# -- data protection -----------------------------------------------------------------------


async def purge(session: AsyncSession, before: datetime) -> int:
    """Delete flow records older than ``before`` (the retention period); returns rows deleted."""
    gone = await session.execute(delete(FlowEvent).where(FlowEvent.at < before))
    counts = await session.execute(delete(FlowReceipts).where(FlowReceipts.last_at < before))
    return int(gone.rowcount or 0) + int(counts.rowcount or 0)  # type: ignore[attr-defined]


async def export_person(session: AsyncSession, user_id: str, *, pseudonym: str) -> dict[str, Any]:
    """The flow records under the person's pseudonym (and whether they opted out)."""
    rows = await session.scalars(
        select(FlowEvent).where(FlowEvent.sender_key == pseudonym).order_by(FlowEvent.at))
    return {
        "message_flow": {
            "pseudonym": pseudonym,
            "opted_out": await is_opted_out(session, pseudonym),
            "records": [
                {"event_id": r.event_id, "room_id": r.room_id, "at": r.at.isoformat(),
                 "kind": r.kind, "notice": f"F{r.notice_id}" if r.notice_id else None,
                 "target_event": r.target_event}
                for r in rows
            ],
        }
    }


async def forget_person(session: AsyncSession, user_id: str, *, pseudonym: str) -> int:
    """Delete the person's flow records. An opt-out stays: it is what keeps them unrecorded."""
    result = await session.execute(delete(FlowEvent).where(FlowEvent.sender_key == pseudonym))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
