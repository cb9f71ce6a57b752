"""Short plain-text renderings for the `!reach` commands (at most ~12 lines each).

Every count a person sees goes through ``count``: anything under 5 is shown
as "<5" (including 0), so small groups cannot be singled out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reach.evaluate import AreaScore, Evaluation
from reach.graph import NODE_KINDS, ReachGraph
from reach.overlay import GapRank, LocalityOverlay, ReachBand
from reach.predict import AreaReach
from reach.seeding import SeedChoice
from reach.structure import Structure
from reach.suppress import SMALL as SMALL  # the "<5" rule, kept where it is cheap to import
from reach.suppress import count as count
from reach.suppress import share as share

MAX_LINES = 12
CHANCE_SAID = 0.05  # an interval's own chance is said when it is this far from its level


def chance_said(chance: float | None, level: float, point: bool = False) -> str:
    """", 97% chance" when an interval's chance is far from its nominal level (a count
    that is mostly 0 or 1 has no interval holding exactly 90%), ", certain" for a point
    every run agreed on, else nothing."""
    if chance is None or abs(chance - level) < CHANCE_SAID:
        return ""
    if point and chance >= 1.0:
        return ", certain"
    if chance >= 0.995:  # every run, or nearly, inside: runs cannot show a range is certain
        return ", over 99% chance"
    return f", {chance:.0%} chance"


def span(lo: float, hi: float, chance: float | None, level: float) -> str:
    """An interval as shown: "3-9" (one value when it is a point), with its chance when
    that is far from the level."""
    shown = count(lo) if lo == hi else f"{count(lo)}-{count(hi)}"
    return shown + chance_said(chance, level, lo == hi)


def _name(code: str | None, names: Mapping[str, str] | None) -> str:
    if code is None:
        return "unknown area"
    return (names or {}).get(code, code)


def _fit(lines: list[str], more: int) -> str:
    if more > 0:
        lines.append(f"...and {more} more")
    return "\n".join(lines[:MAX_LINES])


def render_seeds(choice: SeedChoice, names: Mapping[str, str] | None = None,
                 equity: float = 0.0) -> str:
    """`!reach seed`: the rooms to post in, with what each adds."""
    lines = [f"Post in these {len(choice.keys)} room(s) (equity {equity:g}):"]
    picks = list(zip(choice.keys, choice.gains, strict=True))
    for i, (key, gain) in enumerate(picks[: MAX_LINES - 3], start=1):
        lines.append(f"{i}. {_name(key, names)}: adds ~{count(gain)}")
    if len(picks) > MAX_LINES - 3:
        lines.append(f"...and {len(picks) - (MAX_LINES - 3)} more")
    lines.append(f"Expected weighted reach ~{count(choice.weighted_reach)}; "
                 f"at least 1-1/e-{choice.eps:g} of the best possible (IMM).")
    return "\n".join(lines)


def render_evaluation(ev: Evaluation, names: Mapping[str, str] | None = None) -> str:
    """`!reach report`: predicted against observed per district, and how good the model is."""
    pct = round(ev.level * 100)
    lines = [f"Predicted vs observed {ev.measure} reached ({pct}% intervals):"]
    shown = ev.rows[: MAX_LINES - 3]
    lines += [_scored(r, names, ev.level) for r in shown]
    cover = _coverage(ev)
    rho = "n/a" if np.isnan(ev.spearman) else f"{ev.spearman:.2f}"
    lines.append(f"Coverage {cover}; mean |log error| {ev.mean_abs_log_error:.2f}; Spearman {rho}")
    lines.append("Observed reach is a lower bound (silent readers leave no trace).")
    more = len(ev.rows) - len(shown)
    if more:
        lines.insert(-2, f"...and {more} more districts")
    return "\n".join(lines[:MAX_LINES])


TRACE = ("Reached = a room that got the notice (posted or passed on) and left a trace: "
         "a reply, reaction, forward, read receipt or link opened by a person "
         "(link previews and repeat opens are not counted).")
SILENT = ("A room that gets it but where no one leaves a trace (people reading in silence, "
          "bridges that pass no receipts) is not counted, so this can be fewer than the rooms "
          "it is posted in.")
REPORT_LINES = 18  # the report has three parts: all rooms, districts, IMD bands


@dataclass(frozen=True)
class RecentCheck:
    """One past notice: its all-rooms interval and what was observed."""

    notice: int
    lo: float
    hi: float
    observed: float
    chance: float | None = None  # the interval's own chance (see simulate.interval)

    @property
    def held(self) -> bool:
        return self.lo <= self.observed <= self.hi


def render_recent(checks: Sequence[RecentCheck], level: float) -> str:
    """"The model's 90% interval held in k of the last n notices" (most recent first)."""
    pct = round(level * 100)
    if not checks:
        return f"No earlier notices yet to check the model's {pct}% interval against."
    held = sum(c.held for c in checks)
    missed = [f"F{c.notice}" for c in checks if not c.held]
    tail = f" (missed: {', '.join(missed[:5])})" if missed else ""
    chances = [c.chance for c in checks if c.chance is not None]
    expect = ""
    if len(chances) == len(checks) and abs(sum(chances) / len(checks) - level) >= CHANCE_SAID:
        expect = f"; a right model would hold in about {sum(chances):.0f}"
    return (f"The model's {pct}% interval held in {held} of the last {len(checks)} "
            f"notice(s){tail}{expect}.")


def _scored(r: AreaScore, names: Mapping[str, str] | None, level: float) -> str:
    mark = "in" if r.inside else "OUT"
    return (f"{_name(r.area, names)}: predicted {count(r.predicted)} "
            f"({span(r.lo, r.hi, r.chance, level)}), observed {count(r.observed)} [{mark}]")


def _coverage(ev: Evaluation) -> str:
    """"50%: 40%, ..." with what a right model would give where that differs."""
    parts = []
    for k, v in ev.coverage.items():
        e = ev.expected.get(k)
        said = f" (a right model: {e:.0%})" if e is not None and abs(e - k) >= CHANCE_SAID else ""
        parts.append(f"{round(k * 100)}%: {v:.0%}{said}")
    return ", ".join(parts)


def render_traces(ev: Evaluation, total: AreaReach, observed_total: int,
                  names: Mapping[str, str] | None = None, bands: Evaluation | None = None,
                  recent: Sequence[RecentCheck] | None = None) -> str:
    """`!reach report`: rooms reached (with a trace) predicted against observed, per
    district and per IMD band, and how often the model's interval held lately."""
    pct = round(ev.level * 100)
    g = total.groups_reached
    lines = [TRACE,
             f"All rooms: predicted {count(g.mean)} ({count(g.lo)}-{count(g.hi)}, {pct}% interval"
             f"{chance_said(g.chance, ev.level, g.lo == g.hi)}), observed {count(observed_total)}"]
    band_rows = bands.rows if bands is not None else []
    budget = REPORT_LINES - 4 - len(band_rows) - (recent is not None)
    shown = ev.rows[: max(budget, 3)]
    lines += [_scored(r, names, ev.level) for r in shown]
    more = len(ev.rows) - len(shown)
    if more:
        lines.append(f"...and {more} more districts")
    lines.append(f"Districts inside their intervals at {_coverage(ev)}.")
    if band_rows:
        lines.append("By deprivation (IMD 1 = most deprived): "
                     + "; ".join(_scored(r, names, ev.level) for r in band_rows))
    if recent is not None:
        lines.append(render_recent(recent, ev.level))
    return "\n".join(lines)


def render_trace_prediction(districts: Sequence[AreaReach], total: AreaReach, level: float,
                            seeds: int, names: Mapping[str, str] | None = None) -> str:
    """`!reach predict`: rooms expected to be reached (with a trace) per district. It says
    plainly that getting the notice is not being reached, since a coordinator would
    otherwise read "3 of 40" as the rooms it goes to."""
    pct = round(level * 100)
    g = total.groups_reached
    lines = [f"Posted in {seeds} room(s), the rooms expected to be reached ({pct}% intervals):",
             TRACE, SILENT,
             f"All rooms: {count(g.mean)} of {count(total.groups)} "
             f"({span(g.lo, g.hi, g.chance, level)})"]
    rows = sorted((a for a in districts if a.groups), key=lambda a: -a.groups_reached.mean)
    shown = rows[: MAX_LINES - 4]
    for a in shown:
        iv = a.groups_reached
        lines.append(f"{_name(a.area, names)}: {count(iv.mean)} of {count(a.groups)} rooms "
                     f"({span(iv.lo, iv.hi, iv.chance, level)})")
    return _fit(lines, len(rows) - len(shown))


def _pounds(x: float) -> str:
    return f"£{x:,.0f}"


def render_overlay(ranks: Sequence[GapRank], bands: Sequence[ReachBand],
                   names: Mapping[str, str] | None = None,
                   closed: Sequence[str] | None = None, level: float = 0.9) -> str:
    """`!reach gaps`: the localities most in need (deprived, little reached, little funded),
    the ties that would close each gap, the reach-funding table, and the groups with no tie
    outside their circle (``closed``, most in need first). Reach intervals are at ``level``
    and say their own chance where it is far from it, as everywhere."""
    lines = ["Localities most in need (deprivation, low predicted reach and low past funding "
             "together); reach = rooms expected to get a notice and leave a trace:"]
    for i, g in enumerate(ranks, start=1):
        r = g.row
        decile = f"IMD {r.place.decile}" if r.place.decile else "IMD unknown"
        reach = (f"reach {r.reach_share:.0%} of {count(r.rooms)} rooms "
                 f"({span(r.reached.lo, r.reached.hi, r.reached.chance, level)})"
                 if r.reached is not None else "no room on chat")
        ties = "; ".join(f"{_name(a, names) if a else 'its first group on chat'} - "
                         f"{_name(b, names)}" for a, b in g.ties)
        lines.append(f"{i}. {_name(r.place.code, names)} ({decile}): {reach}; past grants "
                     f"{count(r.funding.grants)}, {_pounds(r.funding.amount)}; "
                     f"collaborations {count(r.collaborations)}"
                     + (f"; close it with a tie: {ties}" if ties else ""))
    lines.append("Where notices do not reach, grants do not land (localities, of them IMD 1-3, "
                 "past grants, collaborations):")
    for b in bands:
        lines.append(f"- {b.label}: {count(b.localities)} ({count(b.deprived)}), "
                     f"{count(b.grants)} grants {_pounds(b.amount)}, "
                     f"{count(b.collaborations)} collaborations")
    if closed is not None:
        first = ", ".join(_name(k, names) for k in closed[:3])
        lines.append(f"Groups with no tie outside their circle: {count(len(closed))}"
                     + (f" (first: {first})" if len(closed) >= SMALL else ""))
    return "\n".join(lines)


def map_text(rows: Sequence[LocalityOverlay], names: Mapping[str, str] | None = None) -> str:
    """The map's text alternative: what it shows, and what a reader would look for in it."""
    on = [r for r in rows if r.rooms]
    funded = sorted((r for r in rows if r.funding.amount > 0), key=lambda r: -r.funding.amount)
    low = sorted(on, key=lambda r: r.reach_share)[:3]
    parts = [f"Map of {len(rows)} localities at their ONS points, coloured by the share of their "
             f"rooms a notice is expected to reach with a trace, sized by past grants. "
             f"{count(len(on))} have a room on chat, {count(len(rows) - len(on))} have none."]
    if low:
        parts.append("Least reached: " + ", ".join(
            f"{_name(r.place.code, names)} {r.reach_share:.0%}" for r in low) + ".")
    if funded:
        parts.append("Most funded: " + ", ".join(
            f"{_name(r.place.code, names)} {_pounds(r.funding.amount)}" for r in funded[:3])
            + ".")
    return " ".join(parts)


@dataclass(frozen=True)
class DistrictStats:
    district: str
    rooms: int
    groups: int
    active_members: int  # from the flow records, supplied by the caller
    messages: int
    bridging_ties: int


def district_stats(
    graph: ReachGraph,
    structure: Structure,
    active_members: Mapping[str, int] | None = None,
    messages: Mapping[str, int] | None = None,
) -> list[DistrictStats]:
    """Per-district counts for `!reach stats`: rooms and groups from the graph, bridging
    ties from the structure, activity from the caller's flow records."""
    bridging = structure.bridging_ties()
    rows = []
    for i, code in enumerate(graph.districts):
        here = graph.district == i
        rows.append(DistrictStats(
            code,
            int(np.sum(here & (graph.kind == NODE_KINDS.index("room")))),
            int(np.sum(here & (graph.kind == NODE_KINDS.index("group")))),
            (active_members or {}).get(code, 0),
            (messages or {}).get(code, 0),
            int(bridging[here].sum()),
        ))
    return rows


def render_stats(rows: Sequence[DistrictStats], names: Mapping[str, str] | None = None) -> str:
    """`!reach stats`: one line per district."""
    lines = ["District: rooms, groups, active members, messages, bridging ties"]
    shown = list(rows)[: MAX_LINES - 2]
    for r in shown:
        lines.append(f"{_name(r.district, names)}: {count(r.rooms)}, {count(r.groups)}, "
                     f"{count(r.active_members)}, {count(r.messages)}, {count(r.bridging_ties)}")
    return _fit(lines, len(rows) - len(shown))
