"""Who may be offered a volunteer request, and in what order: pure functions over plain data.

Hard rules first (each one a reason a person is left out), then a ranking:
skill fit, distance, and spreading offers so the same few are not asked every
time. The database query in storage/volunteers.py applies the same rules to
narrow 10^5 profiles down before these functions see them; ``eligible`` stays
the single statement of what the rules are.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

EARTH_KM = 6371.0088
DBS_LEVELS = ("none", "basic", "standard", "enhanced")
MAX_RADIUS_KM = 50.0
# Grid for the reach index: a cell is 0.1 deg of latitude by 0.15 deg of longitude
# (about 11 x 10 km in England); a volunteer is indexed in every cell their circle touches.
CELL_LAT = 0.1
CELL_LON = 0.15

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


KM_PER_DEGREE = 111.195


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

    storage.volunteers.candidates orders by the same key in SQL, so it can
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
