"""The volunteer pool's tables: profiles, the matching index's rows, memberships,
requests (V<n>), offers (O<n>) and confirmed hours, and the statuses they move through.

DBS data is metadata only (level as an ordered int, workforce, check and
re-check dates, Update Service consent); certificate contents are never stored.
"""

from __future__ import annotations

from datetime import date, datetime

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
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id
from storage.refs import Referenced

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


class VolunteerRequest(Referenced, Base):
    """``V<id>``: a group asks for people for a shift."""

    LETTER = "V"
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


class VolunteerOffer(Referenced, Base):
    """``O<id>``: one person asked (or asking, via take) for one request."""

    LETTER = "O"
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
