"""The volunteer matching index's layout, and the profile shape matching reads from it.

A grid over the map: a volunteer is indexed in every cell their travel circle
touches (``storage.volunteers.VolunteerReach``), so a request reads only its own
cell. Who in that cell may be offered the request is not decided here: the rules,
in Python and in the SQL that mirrors them, are ``bot.features.matching``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

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
