"""Collaboration evidence summed per area and per quarter: the case that collaborating pays.

Pure functions over plain data. A record belongs to an area when any of its
groups is in it (an area includes everything inside it); a record between
groups in two districts counts once in each district's row and once in the total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from config.areas import AreaIndex

LABELS = {
    "joint-funding": "joint funding bids",
    "shared-event": "shared events",
    "shared-volunteers": "shared volunteers",
    "referral": "referrals",
    "introduction": "introductions accepted",
    "other": "other",
}


@dataclass(frozen=True)
class Evidence:
    type: str
    group_ids: tuple[int, ...]
    amount: int | None
    at: datetime


@dataclass(frozen=True)
class Tally:
    records: int = 0
    funding: int = 0

    def add(self, evidence: Evidence) -> Tally:
        money = (evidence.amount or 0) if evidence.type == "joint-funding" else 0
        return Tally(self.records + 1, self.funding + money)

    def text(self) -> str:
        return f"{self.records}" + (f" (£{self.funding:,})" if self.funding else "")


def quarter(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.year} Q{(local.month - 1) // 3 + 1}"


def breakdown_units(areas: AreaIndex, code: str) -> list[str]:
    """The rows under an area: districts when it is above them, else its children."""
    if areas.district_of(code) is None:
        return [a.code for a in areas.districts() if areas.contains(code, a.code)]
    return [a.code for a in areas.children(code)]


def _areas_of(evidence: Evidence, group_areas: Mapping[int, str]) -> list[str]:
    return [group_areas[g] for g in evidence.group_ids if g in group_areas]


def summarise(records: Iterable[Evidence], group_areas: Mapping[int, str], areas: AreaIndex,
              code: str, tz: ZoneInfo, quarters: int = 6) -> str:
    """A short text: totals, per type, per quarter (latest ``quarters``), per sub-area."""
    inside = [e for e in records
              if any(a in areas and areas.contains(code, a) for a in _areas_of(e, group_areas))]
    name = areas.label(code)
    if not inside:
        return (f"No collaboration recorded in {name} yet. Groups record it with "
                "!collab record type=... groups=G1,G2.")
    total = Tally()
    types: Counter[str] = Counter()
    by_quarter: dict[str, Tally] = {}
    by_unit: dict[str, Tally] = {}
    units = breakdown_units(areas, code)
    groups = {g for e in inside for g in e.group_ids}
    for e in inside:
        total = total.add(e)
        types[e.type] += 1
        key = quarter(e.at, tz)
        by_quarter[key] = by_quarter.get(key, Tally()).add(e)
        for unit in units:
            if any(a in areas and areas.contains(unit, a) for a in _areas_of(e, group_areas)):
                by_unit[unit] = by_unit.get(unit, Tally()).add(e)
    lines = [
        f"Collaboration in {name}: {total.records} records between {len(groups)} groups"
        + (f"; joint bids won £{total.funding:,}." if total.funding else "."),
        "; ".join(f"{LABELS[t].capitalize() if i == 0 else LABELS[t]} {n}"
                  for i, (t, n) in enumerate(_ordered(types))) + ".",
    ]
    recent = sorted(by_quarter)[-quarters:]
    lines.append("By quarter: " + ", ".join(f"{q} {by_quarter[q].text()}" for q in recent) + ".")
    rows = sorted(by_unit.items(), key=lambda kv: (-kv[1].records, areas.label(kv[0])))
    for unit, tally in rows[:8]:
        lines.append(f"{areas.label(unit)}: {tally.text()}")
    if len(rows) > 8:
        lines.append(f"... and {len(rows) - 8} more areas (ask with area=).")
    return "\n".join(lines)


def _ordered(types: Counter[str]) -> Sequence[tuple[str, int]]:
    return [(t, types[t]) for t in LABELS if types[t]]
