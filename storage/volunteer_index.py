"""The volunteer matching index: its layout, the profile shape matching reads, and its reads.

A grid over the map: a volunteer is indexed in every cell their travel circle
touches (``storage.volunteer_models.VolunteerReach``), so a request reads only its own
cell. Who in that cell may be offered the request is not decided here: the rules,
in Python and in the SQL that mirrors them, are ``bot.features.matching``'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage.groups import Group
from storage.volunteer_models import Volunteer, VolunteerGroup, VolunteerOffer, VolunteerReach

KM_PER_DEGREE = 111.195

# Grid for the reach index: a cell is 0.1 deg of latitude by 0.15 deg of longitude
# (about 11 x 10 km in England); a volunteer is indexed in every cell their circle touches.
CELL_LAT = 0.1
CELL_LON = 0.15


def cell_of(lat: float, lon: float) -> int:
    return math.floor(lat / CELL_LAT) * 10_000 + math.floor(lon / CELL_LON)


def cells_within(lat: float, lon: float, radius_km: float) -> list[int]:
    """Every grid cell holding a point within ``radius_km`` of (lat, lon): where requests
    this volunteer could take may be.

    Cells are kept only when their nearest edge is within reach, measured with
    the narrowest degree of longitude nearby, so no cell a request could lie in
    is ever left out (the exact distance is checked per request).
    """
    dlat = radius_km / KM_PER_DEGREE
    top = min(89.0, abs(lat) + dlat + CELL_LAT)
    kx = max(0.05, math.cos(math.radians(top))) * KM_PER_DEGREE
    dlon = radius_km / kx
    reach = radius_km * radius_km * 1.0001
    out = []
    for row in range(math.floor((lat - dlat) / CELL_LAT), math.floor((lat + dlat) / CELL_LAT) + 1):
        dy = max(row * CELL_LAT - lat, 0.0, lat - (row + 1) * CELL_LAT) * KM_PER_DEGREE
        for col in range(math.floor((lon - dlon) / CELL_LON),
                         math.floor((lon + dlon) / CELL_LON) + 1):
            dx = max(col * CELL_LON - lon, 0.0, lon - (col + 1) * CELL_LON) * kx
            if dx * dx + dy * dy <= reach:
                out.append(row * 10_000 + col)
    return out


@dataclass(frozen=True)
class Candidate:
    """What matching needs of a volunteer profile (no names, no certificate anything)."""

    volunteer_id: int
    user_id: str
    lat: float
    lon: float
    radius_km: float
    slots: int
    dbs_level: int = 0
    dbs_recheck: date | None = None
    paused: bool = False
    paused_until: datetime | None = None
    share: bool = True
    # The groups they came through, and whether each lets other groups' requests reach them.
    groups: dict[int, bool] = field(default_factory=dict)
    skill_mask: int = 0
    last_offered_at: datetime | None = None


# -- reads (and the one write a match makes) ------------------------------------------


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
