"""The volunteer pool: profiles, requests (V<n>), offers (O<n>) and hours.

DBS data is metadata only (level as an ordered int, workforce, check and
re-check dates, Update Service consent); certificate contents are never stored.
Matching one request against 10^5 profiles is one indexed query: every profile
is listed in the grid cells its travel circle touches (``volunteer_reach``), so
a request looks up its own cell (``storage.volunteer_index``) and ``match`` runs
the rules over it in one statement. The rules are not stated here: they are
``bot.features.matching``'s, in Python and in the SQL that mirrors it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from storage.groups import Group
from storage.models import Base, Id
from storage.volunteer_index import Candidate, cells_within

OPEN, CANCELLED = "open", "cancelled"
# Stands in for the Matrix id of a host who asked to be forgotten (nobody is told anything).
FORGOTTEN = ""
OFFERED, ACCEPTED, WAITLISTED = "offered", "accepted", "waitlisted"
DECLINED, EXPIRED, WITHDRAWN, CLOSED = "declined", "expired", "withdrawn", "closed"
LIVE = (OFFERED, ACCEPTED, WAITLISTED)


class Volunteer(Base):
    """One person's profile, registered and kept only in a DM with the bot."""

    __tablename__ = "volunteers"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255), unique=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The same skills as bits (bot.features.matching.skill_bits), for ranking in SQL.
    skill_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    area_code: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    # Weekly availability: bit day*3+part (see bot/features/availability.py).
    slots: Mapped[int] = mapped_column(Integer)
    # 0 none, 1 basic, 2 standard, 3 enhanced: ordered, so "at least" is a comparison.
    dbs_level: Mapped[int] = mapped_column(Integer, default=0)
    dbs_workforce: Mapped[str | None] = mapped_column(String(8))
    dbs_checked: Mapped[date | None] = mapped_column(Date)
    dbs_recheck: Mapped[date | None] = mapped_column(Date)
    update_service: Mapped[bool] = mapped_column(Boolean, default=False)
    share: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_until: Mapped[datetime | None]
    adult_confirmed_at: Mapped[datetime]
    availability_confirmed_at: Mapped[datetime]
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_offered_at: Mapped[datetime | None]

    @property
    def ref(self) -> str:
        return f"volunteer {self.id}"


MATCH_COLUMNS = ("slots", "dbs_level", "dbs_recheck", "lat", "lon", "radius_km", "paused",
                 "paused_until", "skill_mask", "last_offered_at", "open_to_all")


class VolunteerReach(Base):
    """A grid cell a volunteer's travel circle touches: the matching index.

    Each row carries a copy of what matching reads (availability, DBS, place,
    radius, pause, skills, when last asked, and whether other groups' requests
    may reach them), so a request is matched and ranked on its cell's rows
    alone; only the best few are then joined to their profiles. The copies are
    rewritten by ``save_profile``, ``mark_offered`` and ``refresh_sharing``.
    On SQLite the rows are stored in key order (WITHOUT ROWID): a cell is one
    contiguous read.
    """

    __tablename__ = "volunteer_reach"
    cell: Mapped[int] = mapped_column(Integer)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    slots: Mapped[int] = mapped_column(Integer)
    dbs_level: Mapped[int] = mapped_column(Integer)
    dbs_recheck: Mapped[date | None] = mapped_column(Date)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    paused: Mapped[bool] = mapped_column(Boolean)
    paused_until: Mapped[datetime | None]
    skill_mask: Mapped[int] = mapped_column(BigInteger)
    last_offered_at: Mapped[datetime | None]
    # share=yes and (came through no group, or through one that shares): any verified
    # group's request may reach them. Their own groups' requests always may.
    open_to_all: Mapped[bool] = mapped_column(Boolean)

    # PostgreSQL keeps the copies in the key's index too, so a cell is an index-only scan.
    __table_args__ = (
        PrimaryKeyConstraint("cell", "volunteer_id", postgresql_include=list(MATCH_COLUMNS)),
        {"sqlite_with_rowid": False},
    )


class VolunteerGroup(Base):
    """A group a volunteer came through."""

    __tablename__ = "volunteer_groups"
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), primary_key=True, index=True)


class VolunteerRequest(Base):
    """``V<id>``: a group asks for people for a shift."""

    __tablename__ = "volunteer_requests"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)
    room_id: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    slots: Mapped[int] = mapped_column(Integer)
    area_code: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    dbs_level: Mapped[int] = mapped_column(Integer, default=0)
    # Places taken; only ever changed by a conditional UPDATE under the row lock.
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]

    @property
    def ref(self) -> str:
        return f"V{self.id}"


class VolunteerOffer(Base):
    """``O<id>``: one person asked (or asking, via take) for one request."""

    __tablename__ = "volunteer_offers"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("volunteer_requests.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OFFERED)
    via: Mapped[str] = mapped_column(String(8), default="offer")
    offered_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    # Moved from the waitlist to a place; the person is told once (outbox dedupe key).
    promoted_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("request_id", "user_id"),
        Index("ix_volunteer_offers_due", "status", "expires_at"),
    )

    @property
    def ref(self) -> str:
        return f"O{self.id}"


class VolunteerHours(Base):
    """Hours a host confirmed for one person on one request."""

    __tablename__ = "volunteer_hours"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("volunteer_requests.id"))
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    hours: Mapped[float] = mapped_column(Float)
    worked_on: Mapped[date] = mapped_column(Date)
    confirmed_by: Mapped[str] = mapped_column(String(255))
    confirmed_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("request_id", "user_id"),)


# -- profiles ---------------------------------------------------------------------------


async def profile(session: AsyncSession, user_id: str) -> Volunteer | None:
    return await session.scalar(select(Volunteer).where(Volunteer.user_id == user_id))


async def save_profile(session: AsyncSession, volunteer: Volunteer) -> None:
    """Insert or update, and rewrite the volunteer's rows in the reach index."""
    session.add(volunteer)
    await session.flush()
    await session.execute(delete(VolunteerReach).where(VolunteerReach.volunteer_id == volunteer.id))
    open_to_all = await _open_to_all(session, volunteer)
    v = volunteer
    session.add_all(
        VolunteerReach(cell=cell, volunteer_id=v.id, slots=v.slots, dbs_level=v.dbs_level,
                       dbs_recheck=v.dbs_recheck, lat=v.lat, lon=v.lon, radius_km=v.radius_km,
                       paused=v.paused, paused_until=v.paused_until, skill_mask=v.skill_mask,
                       last_offered_at=v.last_offered_at, open_to_all=open_to_all)
        for cell in cells_within(v.lat, v.lon, v.radius_km)
    )
    await session.flush()


async def _open_to_all(session: AsyncSession, volunteer: Volunteer) -> bool:
    if not volunteer.share:
        return False
    rows = (await session.execute(
        select(Group.share_volunteers)
        .join(VolunteerGroup, VolunteerGroup.group_id == Group.id)
        .where(VolunteerGroup.volunteer_id == volunteer.id, Group.unregistered_at.is_(None))
    )).scalars().all()
    return not rows or any(rows)


async def refresh_sharing(session: AsyncSession, group_id: int) -> None:
    """After a group's ``share_volunteers`` changed: recompute its volunteers' index rows."""
    members = await session.scalars(
        select(Volunteer).join(VolunteerGroup, VolunteerGroup.volunteer_id == Volunteer.id)
        .where(VolunteerGroup.group_id == group_id))
    for v in list(members):
        await session.execute(update(VolunteerReach)
                              .where(VolunteerReach.volunteer_id == v.id)
                              .values(open_to_all=await _open_to_all(session, v)))


async def group_ids(session: AsyncSession, volunteer_id: int) -> list[int]:
    return list(await session.scalars(
        select(VolunteerGroup.group_id).where(VolunteerGroup.volunteer_id == volunteer_id)
        .order_by(VolunteerGroup.group_id)
    ))


async def add_group(session: AsyncSession, volunteer: Volunteer, group_id: int) -> None:
    if group_id not in await group_ids(session, volunteer.id):
        session.add(VolunteerGroup(volunteer_id=volunteer.id, group_id=group_id))
        await session.flush()
        await save_profile(session, volunteer)


async def delete_profile(session: AsyncSession, volunteer: Volunteer) -> None:
    await session.execute(delete(VolunteerReach).where(VolunteerReach.volunteer_id == volunteer.id))
    await session.execute(delete(VolunteerGroup).where(VolunteerGroup.volunteer_id == volunteer.id))
    await session.delete(volunteer)
    await session.flush()


async def candidate_for(session: AsyncSession, volunteer: Volunteer) -> Candidate:
    groups = await session.execute(
        select(Group.id, Group.share_volunteers)
        .join(VolunteerGroup, VolunteerGroup.group_id == Group.id)
        .where(VolunteerGroup.volunteer_id == volunteer.id, Group.unregistered_at.is_(None))
    )
    return to_candidate(volunteer, {gid: share for gid, share in groups})


def to_candidate(v: Volunteer, groups: dict[int, bool]) -> Candidate:
    return Candidate(
        volunteer_id=v.id, user_id=v.user_id, lat=v.lat, lon=v.lon, radius_km=v.radius_km,
        slots=v.slots, dbs_level=v.dbs_level, dbs_recheck=v.dbs_recheck, paused=v.paused,
        paused_until=v.paused_until, share=v.share, groups=groups,
        skill_mask=v.skill_mask, last_offered_at=v.last_offered_at,
    )


# -- matching ---------------------------------------------------------------------------


async def match(session: AsyncSession, *, cell: int, group_id: int,
                rules: Sequence[ColumnElement[bool]], order: Sequence[ColumnElement[Any]],
                limit: int | None = None, exclude_request: int | None = None,
                exclude_user: str | None = None) -> list[Candidate]:
    """The first ``limit`` rows of one cell of the index that pass ``rules``, in ``order``.

    Storage only runs the statement: the rules and the order are
    ``bot.features.matching``'s (its ``sql_rules`` and ``sql_order`` mirror its
    ``refusal`` and ``rank_key``). The chosen few are then joined to their
    profiles; ``groups`` on each candidate holds only the requesting group when it
    is theirs (the sharing rule is already applied).
    """
    r = VolunteerReach
    query = (
        select(r.volunteer_id, r.lat, r.lon, r.radius_km, r.slots, r.dbs_level, r.dbs_recheck,
               r.paused, r.paused_until, r.open_to_all, r.skill_mask, r.last_offered_at)
        .where(r.cell == cell, *rules)
    )
    skip = await _excluded_ids(session, exclude_request, exclude_user)
    if skip:
        query = query.where(r.volunteer_id.not_in(skip))
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # JIT-compiling this short query costs more (about 10 ms) than running it.
        await session.execute(text("SET LOCAL jit = off"))
    rows = (await session.execute(query)).all()
    ids = [row.volunteer_id for row in rows]
    people = {vid: (user, is_own) for vid, user, is_own in await session.execute(
        select(Volunteer.id, Volunteer.user_id,
               exists().where(VolunteerGroup.volunteer_id == Volunteer.id,
                              VolunteerGroup.group_id == group_id))
        .where(Volunteer.id.in_(ids)))} if ids else {}
    return [
        Candidate(
            volunteer_id=row.volunteer_id, user_id=people[row.volunteer_id][0], lat=row.lat,
            lon=row.lon, radius_km=row.radius_km, slots=row.slots, dbs_level=row.dbs_level,
            dbs_recheck=row.dbs_recheck, paused=row.paused, paused_until=row.paused_until,
            share=row.open_to_all, groups={group_id: True} if people[row.volunteer_id][1]
            else {}, skill_mask=row.skill_mask, last_offered_at=row.last_offered_at,
        )
        for row in rows
    ]


async def _excluded_ids(session: AsyncSession, request_id: int | None,
                        user_id: str | None) -> list[int]:
    """Profiles already asked for a request (and its host): a short constant list."""
    users = select(VolunteerOffer.user_id).where(VolunteerOffer.request_id == request_id)
    wanted = or_(Volunteer.user_id.in_(users), Volunteer.user_id == user_id)
    if request_id is None and user_id is None:
        return []
    return list(await session.scalars(select(Volunteer.id).where(wanted)))


async def all_candidates(session: AsyncSession) -> list[Candidate]:
    """Every profile, read in full: the plain scan the index is measured against."""
    memberships: dict[int, dict[int, bool]] = {}
    rows = await session.execute(
        select(VolunteerGroup.volunteer_id, Group.id, Group.share_volunteers)
        .join(Group, Group.id == VolunteerGroup.group_id)
        .where(Group.unregistered_at.is_(None))
    )
    for vid, gid, share in rows:
        memberships.setdefault(vid, {})[gid] = share
    v = Volunteer
    profiles = await session.execute(select(
        v.id, v.user_id, v.lat, v.lon, v.radius_km, v.slots, v.dbs_level, v.dbs_recheck,
        v.paused, v.paused_until, v.share, v.skill_mask, v.last_offered_at))
    return [
        Candidate(volunteer_id=p.id, user_id=p.user_id, lat=p.lat, lon=p.lon,
                  radius_km=p.radius_km, slots=p.slots, dbs_level=p.dbs_level,
                  dbs_recheck=p.dbs_recheck, paused=p.paused, paused_until=p.paused_until,
                  share=p.share, groups=memberships.get(p.id, {}), skill_mask=p.skill_mask,
                  last_offered_at=p.last_offered_at)
        for p in profiles
    ]


async def mark_offered(session: AsyncSession, volunteer_ids: list[int], now: datetime) -> None:
    if volunteer_ids:
        reach_id = VolunteerReach.volunteer_id
        for table, key in ((Volunteer, Volunteer.id), (VolunteerReach, reach_id)):
            await session.execute(
                update(table).where(key.in_(volunteer_ids)).values(last_offered_at=now)
                .execution_options(synchronize_session=False)
            )


# -- requests and offers ----------------------------------------------------------------


async def request(session: AsyncSession, request_id: int, *, lock: bool = False
                  ) -> VolunteerRequest | None:
    """With ``lock``, the row is held (SELECT ... FOR UPDATE) until the transaction ends.

    SQLite ignores FOR UPDATE, but every transaction there starts with BEGIN
    IMMEDIATE, so writers are already one at a time.
    """
    query = select(VolunteerRequest).where(VolunteerRequest.id == request_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def requests_of(session: AsyncSession, group_id: int, since: datetime
                      ) -> list[VolunteerRequest]:
    return list(await session.scalars(
        select(VolunteerRequest)
        .where(VolunteerRequest.group_id == group_id, VolunteerRequest.ends_at >= since)
        .order_by(VolunteerRequest.starts_at, VolunteerRequest.id)
    ))


async def open_requests(session: AsyncSession, now: datetime) -> list[VolunteerRequest]:
    return list(await session.scalars(
        select(VolunteerRequest)
        .where(VolunteerRequest.status == OPEN, VolunteerRequest.starts_at > now)
        .order_by(VolunteerRequest.starts_at, VolunteerRequest.id)
    ))


async def requests_made_since(session: AsyncSession, user_id: str, since: datetime) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(VolunteerRequest)
        .where(VolunteerRequest.created_by == user_id, VolunteerRequest.created_at >= since)
    ) or 0)


async def offer(session: AsyncSession, offer_id: int) -> VolunteerOffer | None:
    return await session.get(VolunteerOffer, offer_id)


async def offer_for(session: AsyncSession, request_id: int, user_id: str
                    ) -> VolunteerOffer | None:
    return await session.scalar(select(VolunteerOffer).where(
        VolunteerOffer.request_id == request_id, VolunteerOffer.user_id == user_id))


async def offers_of(session: AsyncSession, request_id: int,
                    statuses: tuple[str, ...] = LIVE) -> list[VolunteerOffer]:
    return list(await session.scalars(
        select(VolunteerOffer)
        .where(VolunteerOffer.request_id == request_id, VolunteerOffer.status.in_(statuses))
        .order_by(VolunteerOffer.answered_at, VolunteerOffer.id)
    ))


async def offers_for_user(session: AsyncSession, user_id: str) -> list[VolunteerOffer]:
    """The person's live offers and places."""
    return list(await session.scalars(
        select(VolunteerOffer)
        .where(VolunteerOffer.user_id == user_id, VolunteerOffer.status.in_(LIVE))
        .order_by(VolunteerOffer.id)
    ))


async def offered_users(session: AsyncSession, request_id: int) -> set[str]:
    return set(await session.scalars(
        select(VolunteerOffer.user_id).where(VolunteerOffer.request_id == request_id)))


@dataclass(frozen=True)
class Fill:
    accepted: int
    waitlisted: int
    waiting: int


async def fill(session: AsyncSession, request_id: int) -> Fill:
    counts = dict((await session.execute(
        select(VolunteerOffer.status, func.count())
        .where(VolunteerOffer.request_id == request_id)
        .group_by(VolunteerOffer.status)
    )).tuples().all())
    return Fill(counts.get(ACCEPTED, 0), counts.get(WAITLISTED, 0), counts.get(OFFERED, 0))


async def take_place(session: AsyncSession, offer: VolunteerOffer, now: datetime) -> str:
    """Accept: a place if one is free, else the waitlist. Safe under concurrent accepts.

    The place is taken by a conditional UPDATE (``accepted < count``) on the
    request row: on PostgreSQL the row lock makes a concurrent one wait and
    re-check; on SQLite writers are serialised. So exactly ``count`` succeed.
    """
    taken = await session.execute(
        update(VolunteerRequest)
        .where(VolunteerRequest.id == offer.request_id,
               VolunteerRequest.accepted < VolunteerRequest.count)
        .values(accepted=VolunteerRequest.accepted + 1)
        .execution_options(synchronize_session=False)
    )
    offer.status = ACCEPTED if taken.rowcount == 1 else WAITLISTED  # type: ignore[attr-defined]
    offer.answered_at = now
    await session.flush()
    return offer.status


async def give_up_place(session: AsyncSession, offer: VolunteerOffer, status: str,
                        now: datetime) -> VolunteerOffer | None:
    """Leave a request; a freed place goes to the first on the waitlist (returned)."""
    held = offer.status == ACCEPTED
    await request(session, offer.request_id, lock=True)
    offer.status = status
    offer.answered_at = now
    await session.flush()
    if not held:
        return None
    nxt = await session.scalar(
        select(VolunteerOffer)
        .where(VolunteerOffer.request_id == offer.request_id,
               VolunteerOffer.status == WAITLISTED)
        .order_by(VolunteerOffer.answered_at, VolunteerOffer.id)
        .limit(1)
        .with_for_update()
    )
    if nxt is None:
        await session.execute(
            update(VolunteerRequest).where(VolunteerRequest.id == offer.request_id)
            .values(accepted=VolunteerRequest.accepted - 1)
            .execution_options(synchronize_session=False)
        )
        return None
    nxt.status = ACCEPTED
    nxt.promoted_at = now
    await session.flush()
    return nxt


async def expire_offers(session: AsyncSession, now: datetime) -> list[VolunteerOffer]:
    due = list(await session.scalars(
        select(VolunteerOffer)
        .where(VolunteerOffer.status == OFFERED, VolunteerOffer.expires_at <= now)
        .order_by(VolunteerOffer.id)
    ))
    for row in due:
        row.status = EXPIRED
    await session.flush()
    return due


# -- hours ------------------------------------------------------------------------------


async def record_hours(session: AsyncSession, req: VolunteerRequest, user_id: str,
                       hours: float, by: str, now: datetime, worked_on: date) -> None:
    row = await session.scalar(select(VolunteerHours).where(
        VolunteerHours.request_id == req.id, VolunteerHours.user_id == user_id))
    if row is None:
        row = VolunteerHours(request_id=req.id, user_id=user_id, group_id=req.group_id,
                             worked_on=worked_on, hours=hours, confirmed_by=by,
                             confirmed_at=now)
        session.add(row)
    else:
        row.hours, row.confirmed_by, row.confirmed_at = hours, by, now
    await session.flush()


async def hours_in_year(session: AsyncSession, user_id: str, year: int
                        ) -> list[tuple[str, float, int]]:
    """(group name, hours, shifts) for the year, most hours first."""
    rows = await session.execute(
        select(Group.name, func.sum(VolunteerHours.hours), func.count())
        .join(Group, Group.id == VolunteerHours.group_id)
        .where(VolunteerHours.user_id == user_id,
               VolunteerHours.worked_on >= date(year, 1, 1),
               VolunteerHours.worked_on <= date(year, 12, 31))
        .group_by(Group.name)
        .order_by(func.sum(VolunteerHours.hours).desc(), Group.name)
    )
    return [(name, float(total), int(n)) for name, total, n in rows]


# -- reminders --------------------------------------------------------------------------


async def accepted_starting(session: AsyncSession, after: datetime, before: datetime
                            ) -> list[tuple[VolunteerOffer, VolunteerRequest]]:
    rows = await session.execute(
        select(VolunteerOffer, VolunteerRequest)
        .join(VolunteerRequest, VolunteerRequest.id == VolunteerOffer.request_id)
        .where(VolunteerOffer.status == ACCEPTED, VolunteerRequest.status == OPEN,
               VolunteerRequest.starts_at > after, VolunteerRequest.starts_at <= before)
    )
    return [(o, r) for o, r in rows.tuples()]


async def rechecks_between(session: AsyncSession, first: date, last: date) -> list[Volunteer]:
    return list(await session.scalars(
        select(Volunteer).where(Volunteer.dbs_level > 0, Volunteer.dbs_recheck >= first,
                                Volunteer.dbs_recheck <= last)
    ))


async def unconfirmed_since(session: AsyncSession, before: datetime) -> list[Volunteer]:
    return list(await session.scalars(
        select(Volunteer).where(Volunteer.availability_confirmed_at <= before)
    ))


async def promoted_untold(session: AsyncSession, since: datetime
                          ) -> list[tuple[VolunteerOffer, VolunteerRequest]]:
    rows = await session.execute(
        select(VolunteerOffer, VolunteerRequest)
        .join(VolunteerRequest, VolunteerRequest.id == VolunteerOffer.request_id)
        .where(VolunteerOffer.status == ACCEPTED, VolunteerOffer.promoted_at >= since,
               VolunteerRequest.status == OPEN)
    )
    return [(o, r) for o, r in rows.tuples()]


# -- privacy ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """Everything the pool holds about one person, as JSON-ready data."""
    out: dict[str, Any] = {"volunteer_profile": None, "volunteer_offers": [],
                           "volunteer_hours": [], "volunteer_requests_made": [],
                           "volunteer_hours_you_confirmed": []}
    v = await profile(session, user_id)
    if v is not None:
        fields = ("skills", "area_code", "radius_km", "slots", "dbs_level", "dbs_workforce",
                  "dbs_checked", "dbs_recheck", "update_service", "share", "paused",
                  "paused_until", "adult_confirmed_at", "availability_confirmed_at",
                  "registered_at", "updated_at", "last_offered_at")
        out["volunteer_profile"] = {f: _plain(getattr(v, f)) for f in fields}
        out["volunteer_profile"]["groups"] = [f"G{g}" for g in await group_ids(session, v.id)]
    for o in await session.scalars(
            select(VolunteerOffer).where(VolunteerOffer.user_id == user_id)
            .order_by(VolunteerOffer.id)):
        out["volunteer_offers"].append({
            "offer": o.ref, "request": f"V{o.request_id}", "status": o.status, "via": o.via,
            "offered_at": _plain(o.offered_at), "answered_at": _plain(o.answered_at)})
    for h in await session.scalars(
            select(VolunteerHours).where(VolunteerHours.user_id == user_id)
            .order_by(VolunteerHours.id)):
        out["volunteer_hours"].append({
            "request": f"V{h.request_id}", "group": f"G{h.group_id}", "hours": h.hours,
            "worked_on": _plain(h.worked_on), "confirmed_by": h.confirmed_by})
    for h in await session.scalars(
            select(VolunteerHours).where(VolunteerHours.confirmed_by == user_id)
            .order_by(VolunteerHours.id)):
        out["volunteer_hours_you_confirmed"].append({
            "request": f"V{h.request_id}", "group": f"G{h.group_id}", "hours": h.hours,
            "confirmed_at": _plain(h.confirmed_at)})
    for r in await session.scalars(
            select(VolunteerRequest).where(VolunteerRequest.created_by == user_id)
            .order_by(VolunteerRequest.id)):
        out["volunteer_requests_made"].append({
            "request": r.ref, "group": f"G{r.group_id}", "role": r.role,
            "starts_at": _plain(r.starts_at), "status": r.status})
    return out


async def forget_person(session: AsyncSession, user_id: str, *,
                        now: datetime | None = None) -> int:
    """Erase the person's profile, offers and hours; returns the rows removed.

    A place they held goes to the next on the waitlist (told by the next sweep).
    Requests they made for a group stay: they belong to the group.
    """
    now = now or datetime.now(UTC)
    removed = 0
    held = await session.scalars(select(VolunteerOffer).where(
        VolunteerOffer.user_id == user_id, VolunteerOffer.status == ACCEPTED))
    for o in list(held):
        await give_up_place(session, o, WITHDRAWN, now)
    for table in (VolunteerOffer, VolunteerHours):
        result = await session.execute(delete(table).where(table.user_id == user_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    # As a host: the requests and confirmations stay with the group, without the name.
    for column in (VolunteerRequest.created_by, VolunteerHours.confirmed_by):
        result = await session.execute(
            update(column.class_).where(column == user_id).values({column.key: FORGOTTEN}))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    v = await profile(session, user_id)
    if v is not None:
        await delete_profile(session, v)
        removed += 1
    return removed
