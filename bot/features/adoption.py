"""The adoption figures: who uses Grapevine, where, through which network, and what it changed.

Pure functions over the plain rows ``storage.adoption.load`` reads, so every
rule is tested without Matrix or a database. Everything is a count of groups,
rooms, notices or records, never of people; every count shown (text, CSV,
chart) goes through :func:`shown`, so anything under 5 reads "<5", zero included,
and an empty cell cannot be told from a small one.

A thing is counted in the month (deployment time zone) it happened and in the
district and IMD band of its group's area: registration, verification, a
notice sent to the group's room, a notice there engaged with (a reply,
reaction or forward of it), an introduction asked of the group, a volunteer
request of the group's with every place taken (by the shift's month), a
collaboration record (once for each district and band among its groups, once
in the total). A room is active in a month when it ran a command or engaged
with a notice in it.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from config.areas import AreaIndex
from reach.suppress import count
from storage.adoption import GroupRow, Rows

ACTIVE_DAYS = 30
MAX_MONTHS = 36
ALL = "all"
UNKNOWN = "unknown"

REGISTERED, VERIFIED, ACTIVE = "groups registered", "groups verified", "active rooms"
DELIVERED, ENGAGED = "notices delivered", "notices engaged with"
INTRODUCTIONS, FILLED, COLLABS = "introductions", "volunteer requests filled", "collaborations"
MEASURES = (REGISTERED, VERIFIED, ACTIVE, DELIVERED, ENGAGED, INTRODUCTIONS, FILLED, COLLABS)
BANDS = ("1-2", "3-4", "5-6", "7-8", "9-10")
NETWORKS = {None: "Matrix", "whatsapp": "WhatsApp", "telegram": "Telegram", "signal": "Signal",
            "facebook": "Facebook", "discord": "Discord", "slack": "Slack", "irc": "IRC"}

Month = tuple[int, int]
Place = tuple[str, str]  # district code (or "unknown"), IMD band (or "unknown")


def shown(n: int) -> str:
    """A count as people see it: "<5" under 5 (zero too), else the number."""
    return count(n)


def band(decile: int | None) -> str:
    """IMD 2019 decile as a quintile band: 1-2 is the most deprived fifth."""
    return UNKNOWN if decile is None else BANDS[(decile - 1) // 2]


def months_between(first: date, last: date) -> list[Month]:
    """Every calendar month from ``first``'s to ``last``'s, both included."""
    out: list[Month] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def default_period(today: date) -> tuple[date, date]:
    """The twelve months up to and including this one."""
    year, month = today.year, today.month - 11
    if month < 1:
        year, month = year - 1, month + 12
    return date(year, month, 1), today


def label(month: Month) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


@dataclass
class Report:
    """The counts, before rendering. ``cells`` by (month, place, measure); ``totals`` by
    (month, measure), each thing once however many places it touches."""

    area: str
    months: list[Month]
    places: list[Place]
    now: datetime
    cells: Counter[tuple[Month, Place, str]] = field(default_factory=Counter)
    totals: Counter[tuple[Month, str]] = field(default_factory=Counter)
    period: Counter[tuple[Place, str]] = field(default_factory=Counter)
    period_totals: Counter[str] = field(default_factory=Counter)
    networks: Counter[tuple[Place, str]] = field(default_factory=Counter)
    active_recent: Counter[Place] = field(default_factory=Counter)

    def network_totals(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, net), n in self.networks.items():
            out[net] += n
        return out


class _Counting:
    """Adds things to a report. Every call is a distinct thing in its month (callers
    make it so), so totals are plain sums; ``things`` keeps what was counted per
    measure, so a thing seen in several months (an active room) counts once in the
    period's figures."""

    def __init__(self, report: Report, tz: ZoneInfo) -> None:
        self.report = report
        # Month boundaries as instants: a bisection, not a time-zone conversion, per row.
        # In UTC, as stored: comparing instants in one tzinfo skips a utcoffset() call each.
        self.starts = [datetime(y, m, 1, tzinfo=tz).astimezone(UTC) for y, m in report.months]
        last_y, last_m = report.months[-1]
        self.end = datetime(last_y + last_m // 12, last_m % 12 + 1, 1, tzinfo=tz).astimezone(UTC)
        self.things: dict[str, set[object]] = {m: set() for m in MEASURES}
        self.placed: dict[tuple[Place, str], set[object]] = {}

    def month(self, at: datetime | None) -> Month | None:
        if at is None or at < self.starts[0] or at >= self.end:
            return None
        return self.report.months[bisect_right(self.starts, at) - 1]

    def add(self, measure: str, month: Month, places: Iterable[Place], thing: object) -> None:
        r = self.report
        r.totals[(month, measure)] += 1
        self.things[measure].add(thing)
        for place in set(places):
            r.cells[(month, place, measure)] += 1
            self.placed.setdefault((place, measure), set()).add(thing)

    def close(self) -> None:
        for measure, things in self.things.items():
            self.report.period_totals[measure] = len(things)
        for key, things in self.placed.items():
            self.report.period[key] = len(things)


def place_of(areas: AreaIndex, code: str) -> Place:
    if code not in areas:
        return (UNKNOWN, UNKNOWN)
    district = areas.district_of(code)
    return (district.code if district else UNKNOWN, band(areas.get(code).imd_decile))


def _inside(areas: AreaIndex, area: str, code: str) -> bool:
    return code == area or (code in areas and areas.contains(area, code))


def build(rows: Rows, areas: AreaIndex, area: str, first: date, last: date, now: datetime,
          tz: ZoneInfo) -> Report:
    """Count everything about groups inside ``area`` from ``first``'s month to ``last``'s.

    Cost: one pass over each list of rows with a bisection into the months per row,
    O(R log M) for R rows and M months; active rooms are made distinct per month first.
    """
    inside = {g.id: g for g in rows.groups if _inside(areas, area, g.area_code)}
    place = {g.id: place_of(areas, g.area_code) for g in inside.values()}
    # A room's group: the latest registered there (re-registering brings back the same one).
    room_group: dict[str, GroupRow] = {}
    for g in sorted(inside.values(), key=lambda g: g.registered_at):
        if g.room_id is not None:
            room_group[g.room_id] = g
    report = Report(area, months_between(first, last), sorted(set(place.values())), now)
    count = _Counting(report, tz)
    month = count.month
    for g in inside.values():
        if (m := month(g.registered_at)) is not None:
            count.add(REGISTERED, m, [place[g.id]], g.id)
        if (m := month(g.verified_at)) is not None:
            count.add(VERIFIED, m, [place[g.id]], g.id)
    engaged: set[tuple[str, int]] = set()
    active: set[tuple[Month, str]] = set()  # a room once a month, however busy
    for room, notice, at in rows.engagements:
        if room in room_group:
            engaged.add((room, notice))
            if (m := month(at)) is not None:
                active.add((m, room))
    for room, _, at in rows.command_days:
        if room in room_group and (m := month(at)) is not None:
            active.add((m, room))
    for m, room in sorted(active):
        count.add(ACTIVE, m, [place[room_group[room].id]], room)
    for room, notice, at in rows.deliveries:
        owner = room_group.get(room)
        if owner is not None and (m := month(at)) is not None:
            count.add(DELIVERED, m, [place[owner.id]], (room, notice))
            if (room, notice) in engaged:
                count.add(ENGAGED, m, [place[owner.id]], (room, notice))
    for n, (group_id, at) in enumerate(rows.introductions):
        if group_id in inside and (m := month(at)) is not None:
            count.add(INTRODUCTIONS, m, [place[group_id]], n)
    for n, (group_id, at) in enumerate(rows.filled):
        if group_id in inside and (m := month(at)) is not None:
            count.add(FILLED, m, [place[group_id]], n)
    for n, (group_ids, at) in enumerate(rows.collabs):
        ours = [place[g] for g in group_ids if g in inside]
        if ours and (m := month(at)) is not None:
            count.add(COLLABS, m, ours, n)
    count.close()
    _snapshot(report, rows, inside, room_group, place, last, tz)
    return report


def _snapshot(report: Report, rows: Rows, inside: dict[int, GroupRow],
              room_group: dict[str, GroupRow], place: dict[int, Place], last: date,
              tz: ZoneInfo) -> None:
    """Group rooms by network at the end of the period; rooms active in the last 30 days."""
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    for g in inside.values():
        if g.room_id is None or room_group.get(g.room_id) is not g or g.registered_at >= end:
            continue
        if g.unregistered_at is not None and g.unregistered_at < end:
            continue
        report.networks[(place[g.id], NETWORKS.get(g.network, g.network or "Matrix"))] += 1
    since = report.now - timedelta(days=ACTIVE_DAYS)
    recent = {room for room, _, at in rows.engagements if since < at <= report.now}
    recent |= {room for room, _, at in rows.command_days if since < at <= report.now}
    for room in recent:
        owner = room_group.get(room)
        if owner is not None and owner.unregistered_at is None:
            report.active_recent[place[owner.id]] += 1


# -- rendering -----------------------------------------------------------------------------


def _district_name(areas: AreaIndex, code: str) -> str:
    return "area unknown" if code == UNKNOWN else areas.label(code)


def render_text(report: Report, areas: AreaIndex, prefix: str = "!") -> str:
    """At most ~12 lines: totals, networks, recent activity, per district, per IMD band."""
    t = report.period_totals
    first, last = report.months[0], report.months[-1]
    nets = report.network_totals()
    lines = [
        f"Adoption in {areas.label(report.area)}, {label(first)} to {label(last)} "
        "(counts under 5 show as <5):",
        f"Groups registered {shown(t[REGISTERED])}, verified {shown(t[VERIFIED])}; rooms "
        f"active {shown(t[ACTIVE])}.",
        "Group rooms by network: " + (", ".join(
            f"{net} {shown(n)}" for net, n in sorted(nets.items(), key=lambda kv: (-kv[1], kv[0])))
            or "none") + ".",
        f"Rooms active in the last {ACTIVE_DAYS} days: "
        f"{shown(sum(report.active_recent.values()))}.",
        f"Notices delivered {shown(t[DELIVERED])}, engaged with {shown(t[ENGAGED])}; "
        f"introductions {shown(t[INTRODUCTIONS])}; volunteer requests filled "
        f"{shown(t[FILLED])}; collaborations {shown(t[COLLABS])}.",
    ]
    by_district: Counter[tuple[str, str]] = Counter()
    by_band: Counter[tuple[str, str]] = Counter()
    for ((district, imd), measure), n in report.period.items():
        by_district[(district, measure)] += n
        by_band[(imd, measure)] += n
    districts = sorted({d for d, _ in by_district}, key=lambda d: _district_name(areas, d))
    for district in districts[:5]:
        lines.append(f"{_district_name(areas, district)}: " + _row(by_district, district))
    if len(districts) > 5:
        lines.append(f"... {len(districts) - 5} more districts in the CSV.")
    bands = [b for b in (*BANDS, UNKNOWN) if any(k == b for k, _ in by_band)]
    if bands:
        lines.append("By IMD band (1-2 most deprived): " + "; ".join(
            f"{b}: registered {shown(by_band[(b, REGISTERED)])}, active "
            f"{shown(by_band[(b, ACTIVE)])}" for b in bands) + ".")
    lines.append("Month by month in the CSV and the chart.")
    return "\n".join(lines)


def _row(counts: Counter[tuple[str, str]], key: str) -> str:
    return (f"registered {shown(counts[(key, REGISTERED)])}, active rooms "
            f"{shown(counts[(key, ACTIVE)])}, notices {shown(counts[(key, DELIVERED)])}, "
            f"introductions {shown(counts[(key, INTRODUCTIONS)])}, collaborations "
            f"{shown(counts[(key, COLLABS)])}")


CSV_HEADER = ("period", "district_code", "district", "imd_band", "measure", "count")


def csv_rows(report: Report, areas: AreaIndex) -> Iterator[tuple[str, ...]]:
    """Every month x (all, then every place with a group) x measure, suppressed; then the
    rooms by network at the end and the rooms active in the last 30 days. Every cell of
    the grid is written, so a missing row never gives away a zero."""
    yield CSV_HEADER
    for month in report.months:
        for measure in MEASURES:
            yield (label(month), ALL, ALL, ALL, measure, shown(report.totals[(month, measure)]))
            for p in report.places:
                yield (label(month), p[0], _district_name(areas, p[0]), p[1], measure,
                       shown(report.cells[(month, p, measure)]))
    end = f"at {label(report.months[-1])} end"
    nets = sorted({net for (_, net) in report.networks} | {"Matrix"})
    for net in nets:
        yield (end, ALL, ALL, ALL, f"group rooms on {net}", shown(report.network_totals()[net]))
        for p in report.places:
            yield (end, p[0], _district_name(areas, p[0]), p[1], f"group rooms on {net}",
                   shown(report.networks[(p, net)]))
    recent = f"last {ACTIVE_DAYS} days to {report.now.date().isoformat()}"
    yield (recent, ALL, ALL, ALL, ACTIVE, shown(sum(report.active_recent.values())))
    for p in report.places:
        yield (recent, p[0], _district_name(areas, p[0]), p[1], ACTIVE,
               shown(report.active_recent[p]))


def render_csv(report: Report, areas: AreaIndex) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(csv_rows(report, areas))
    return out.getvalue().encode()


def monthly_series(report: Report) -> dict[str, list[int]]:
    """Each measure's total per month, for the chart (which masks the small ones itself)."""
    return {m: [report.totals[(month, m)] for month in report.months] for m in MEASURES}
