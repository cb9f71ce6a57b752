"""Who may be offered a volunteer request, and in what order: the rules, in one place.

Hard rules first (each one a reason a person is left out), then a ranking:
skill fit, distance, and spreading offers so the same few are not asked every
time. They are stated twice, side by side here: as pure functions over plain
data (``refusal``, ``rank_key``: the statement of what the rules are), and as
the SQL that mirrors them (``sql_rules``, ``sql_order``), which narrows 10^5
profiles in the database (``storage.volunteers.match`` runs it, deciding
nothing). A property test over random profiles and requests, on SQLite and
PostgreSQL, checks the SQL admits and orders exactly as the functions do.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage import volunteers as store
from storage.volunteer_index import (
    CELL_LAT,
    CELL_LON,
    KM_PER_DEGREE,
    Candidate,
    cell_of,
    cells_within,
)
from storage.volunteers import VolunteerGroup, VolunteerReach

# The index's grid and profile shape live in storage; matching's callers import them here.
__all__ = ["CELL_LAT", "CELL_LON", "KM_PER_DEGREE", "Candidate", "cell_of", "cells_within"]

EARTH_KM = 6371.0088
DBS_LEVELS = ("none", "basic", "standard", "enhanced")
MAX_RADIUS_KM = 50.0
# The ODI/DCMS volunteering data standard's top-level skills, and words people use for them.
TOP_SKILLS: dict[str, str] = {
    "communication": "Communication",
    "digital-technology": "Digital & technology",
    "personal-interpersonal": "Personal & interpersonal",
    "practical-operational": "Practical & operational",
    "safety-emergency": "Safety & emergency awareness",
    "teamwork-leadership": "Teamwork & leadership",
}
_SKILL_ALIASES = {
    "communication": "communication", "communications": "communication",
    "digital": "digital-technology", "technology": "digital-technology",
    "tech": "digital-technology", "it": "digital-technology",
    "digital-and-technology": "digital-technology",
    "personal": "personal-interpersonal", "interpersonal": "personal-interpersonal",
    "personal-and-interpersonal": "personal-interpersonal",
    "practical": "practical-operational", "operational": "practical-operational",
    "practical-and-operational": "practical-operational",
    "safety": "safety-emergency", "emergency": "safety-emergency",
    "safety-and-emergency-awareness": "safety-emergency",
    "safety-and-emergency": "safety-emergency",
    "teamwork": "teamwork-leadership", "leadership": "teamwork-leadership",
    "teamwork-and-leadership": "teamwork-leadership",
}  # fmt: skip


class SkillError(ValueError):
    pass


def normalise_skill(text: str) -> str:
    """A top-level skill's key, or a free tag as lowercase-hyphenated words."""
    key = re.sub(r"[^a-z0-9]+", "-", text.lower().replace("&", " and ")).strip("-")
    if not key:
        raise SkillError(f"{text!r} is not a skill; use words like driving, communication")
    if len(key) > 40:
        raise SkillError(f"{text[:20]!r}... is too long for a skill (40 characters at most)")
    return _SKILL_ALIASES.get(key, key)


def normalise_skills(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        key = normalise_skill(item)
        if key not in out:
            out.append(key)
    return out


_TOP_BITS = {key: i for i, key in enumerate(TOP_SKILLS)}
_TAG_BITS = 63 - len(TOP_SKILLS)


def skill_bits(keys: Iterable[str]) -> int:
    """Skills as a 63-bit mask, so the database can count a fit without reading JSON.

    The six top-level skills have a bit each; free tags share the other 57 by a
    stable hash. Two tags can collide, which may rank someone a little higher; it
    never admits or excludes anyone (skills are not a hard rule).
    """
    mask = 0
    for key in keys:
        index = _TOP_BITS.get(key)
        if index is None:
            index = len(TOP_SKILLS) + zlib.crc32(key.encode()) % _TAG_BITS
        mask |= 1 << index
    return mask


def bits_of(mask: int) -> list[int]:
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]


def skill_label(key: str) -> str:
    return TOP_SKILLS.get(key, key.replace("-", " "))


def dbs_rank(level: str | None) -> int:
    return DBS_LEVELS.index(level) if level in DBS_LEVELS else 0


def distance2_km(lat: float, lon: float, need: Need) -> float:
    """Squared distance in km^2 on the plane tangent at the request (equirectangular).

    Within 0.1% of the great-circle distance at county scale (< 50 km), and made
    of + - * only, so the database computes exactly the same number as Python.
    """
    kx = need.km_per_lon
    return ((lon - need.lon) * kx * (lon - need.lon) * kx
            + (lat - need.lat) * KM_PER_DEGREE * (lat - need.lat) * KM_PER_DEGREE)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Need:
    """A volunteer request, as matching sees it."""

    group_id: int
    group_verified: bool
    starts_at: datetime
    slots: int
    lat: float
    lon: float
    dbs_level: int = 0
    skill_mask: int = 0

    @property
    def km_per_lon(self) -> float:
        """Kilometres per degree of longitude at the request's latitude."""
        return math.cos(math.radians(self.lat)) * KM_PER_DEGREE


def pool_allows(c: Candidate, need: Need) -> bool:
    """Sharing: a group's own volunteers always; others only with both consents (verified only).

    Someone who came through no group joined the shared pool directly: their own
    ``share`` is the only consent needed.
    """
    if need.group_id in c.groups:
        return True
    if not need.group_verified or not c.share:
        return False
    return not c.groups or any(c.groups.values())


def refusal(c: Candidate, need: Need) -> str | None:
    """Why this person may not be offered this request (a hard rule), or None if they may."""
    if c.slots & need.slots != need.slots:
        return "not free then"
    if c.dbs_level < need.dbs_level:
        return "DBS level too low"
    if need.dbs_level and (c.dbs_recheck is None or c.dbs_recheck <= need.starts_at.date()):
        return "DBS re-check due"
    if distance2_km(c.lat, c.lon, need) > c.radius_km * c.radius_km:
        return "too far"
    if c.paused and (c.paused_until is None or c.paused_until > need.starts_at):
        return "paused"
    if not pool_allows(c, need):
        return "not shared with this group"
    return None


def eligible(c: Candidate, need: Need) -> bool:
    return refusal(c, need) is None


REST_DAYS = (7, 30)


def rest_tier(last_offered_at: datetime | None, now: datetime) -> int:
    """2: not asked for 30 days (or ever), 1: not for 7 days, 0: asked this week."""
    if last_offered_at is None or last_offered_at < now - timedelta(days=REST_DAYS[1]):
        return 2
    return 1 if last_offered_at < now - timedelta(days=REST_DAYS[0]) else 0


def rank_key(c: Candidate, need: Need, now: datetime) -> tuple[int, int, float, int]:
    """Smaller is better: most of the wanted skills, then the least asked lately, then nearest.

    ``sql_order`` (below) is the same key in SQL, so the database can
    return just the best few of 10^5 profiles; ties fall to the lower id.
    """
    fit = (c.skill_mask & need.skill_mask).bit_count()
    return (-fit, -rest_tier(c.last_offered_at, now), distance2_km(c.lat, c.lon, need),
            c.volunteer_id)


def rank(candidates: Sequence[Candidate], need: Need, now: datetime) -> list[Candidate]:
    """The eligible candidates, best first."""
    ok = [c for c in candidates if eligible(c, need)]
    return sorted(ok, key=lambda c: rank_key(c, need, now))


def offers_to_make(count: int) -> int:
    """Ask more people than there are places (some decline or miss it), but not everyone."""
    return min(max(count * 3, count + 2), 30)


# -- the same rules in SQL ----------------------------------------------------------------


def sql_distance2(need: Need) -> ColumnElement[float]:
    """``distance2_km`` over the index's columns, written with the same operations in the
    same order, so the database computes bit-identical floats and never disagrees."""
    r = VolunteerReach
    kx = need.km_per_lon
    return ((r.lon - need.lon) * kx * (r.lon - need.lon) * kx
            + (r.lat - need.lat) * KM_PER_DEGREE * (r.lat - need.lat) * KM_PER_DEGREE)


def sql_rules(need: Need) -> list[ColumnElement[bool]]:
    """``refusal``'s hard rules, one clause each, over the index's copy of each profile."""
    r = VolunteerReach
    own = exists().where(VolunteerGroup.volunteer_id == r.volunteer_id,
                         VolunteerGroup.group_id == need.group_id)
    rules = [
        r.slots.op("&")(need.slots) == need.slots,  # not free then
        r.dbs_level >= need.dbs_level,  # DBS level too low
        sql_distance2(need) <= r.radius_km * r.radius_km,  # too far
        or_(r.paused.is_(False),  # paused
            and_(r.paused_until.is_not(None), r.paused_until <= need.starts_at)),
        # not shared with this group (open_to_all is pool_allows for other groups)
        or_(r.open_to_all.is_(True), own) if need.group_verified else own,
    ]
    if need.dbs_level:
        rules.append(r.dbs_recheck > need.starts_at.date())  # DBS re-check due
    return rules


def sql_order(need: Need, now: datetime) -> list[ColumnElement[Any]]:
    """``rank_key`` in SQL: skill fit, then rest, then distance, ties to the lower id."""
    r = VolunteerReach
    rest = case(
        (or_(r.last_offered_at.is_(None),
             r.last_offered_at < now - timedelta(days=REST_DAYS[1])), 2),
        (r.last_offered_at < now - timedelta(days=REST_DAYS[0]), 1),
        else_=0,
    )
    order: list[ColumnElement[Any]] = []
    fits = [case((r.skill_mask.op("&")(b) != 0, 1), else_=0) for b in bits_of(need.skill_mask)]
    if fits:
        fit: ColumnElement[int] = sum(fits[1:], start=fits[0])
        order.append(fit.desc())
    return [*order, rest.desc(), sql_distance2(need), r.volunteer_id.asc()]


async def candidates(session: AsyncSession, need: Need, now: datetime, *,
                     limit: int | None = None, exclude_request: int | None = None,
                     exclude_user: str | None = None) -> list[Candidate]:
    """The best ``limit`` people the hard rules allow, ranked as ``rank_key`` ranks them,
    read from the request's cell of the index in one statement."""
    return await store.match(
        session, cell=cell_of(need.lat, need.lon), group_id=need.group_id,
        rules=sql_rules(need), order=sql_order(need, now), limit=limit,
        exclude_request=exclude_request, exclude_user=exclude_user,
    )
