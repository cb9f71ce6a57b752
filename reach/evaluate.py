"""Predicted against observed reach per district.

Cascade size is only partly predictable (Martin et al., WWW 2016: under half
the variance), so the model is judged on what it can promise: whether its
intervals cover what happened at their stated rate, the log error of its
means, and whether it ranks districts right (Spearman). Observed reach is a
lower bound: lurkers read without a trace and bridged users' receipts are
often missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from reach.graph import ReachGraph
from reach.predict import AreaReach
from reach.simulate import interval


@dataclass(frozen=True)
class RoomSignal:
    """What a room did with one notice (counts only: receipts are per room, never per person)."""

    room: str
    replies: int = 0
    reactions: int = 0
    receipts: int = 0
    forwards: int = 0
    link_opens: int = 0

    @property
    def any(self) -> bool:
        return (self.replies + self.reactions + self.receipts + self.forwards + self.link_opens) > 0


@dataclass(frozen=True)
class Observed:
    groups: int  # rooms with any sign of the notice
    members: int  # lower bound on members who saw it


@dataclass(frozen=True)
class AreaScore:
    area: str
    predicted: float
    lo: float
    hi: float
    observed: float
    log_error: float  # log((observed + 1) / (predicted + 1)); negative = over-predicted
    inside: bool
    chance: float | None = None  # the predictive chance of [lo, hi] (see simulate.interval)


@dataclass(frozen=True)
class Evaluation:
    measure: str  # "groups" or "members"
    level: float
    rows: list[AreaScore]
    mean_abs_log_error: float
    bias: float  # mean log error
    coverage: dict[float, float]  # nominal level -> share of areas inside the interval
    spearman: float  # nan with fewer than 3 areas or no variation
    # nominal level -> mean chance of the areas' intervals: the share inside them a right
    # model would give (small counts cannot have intervals holding exactly the level)
    expected: dict[float, float] = field(default_factory=dict)


def observed_by_district(graph: ReachGraph, signals: Iterable[RoomSignal]) -> dict[str, Observed]:
    """Rooms reached and a lower bound on members reached, per district.

    A room counts as reached on any signal. Its members reached are at least
    the largest of its receipts, link opens and replies+reactions+forwards
    (counts, so one person may be behind several), capped at its member count.
    """
    groups: dict[str, int] = {}
    members: dict[str, int] = {}
    for s in signals:
        v = graph.index.get(s.room)
        if v is None or not s.any or graph.district[v] < 0:
            continue
        d = graph.districts[graph.district[v]]
        seen = max(s.receipts, s.link_opens, s.replies + s.reactions + s.forwards)
        cap = int(graph.members[v]) or seen
        groups[d] = groups.get(d, 0) + 1
        members[d] = members.get(d, 0) + min(seen, cap)
    return {d: Observed(groups[d], members[d]) for d in groups}


def evaluate(
    predicted: Sequence[AreaReach],
    observed: Mapping[str, Observed],
    measure: str = "groups",
    level: float = 0.9,
    levels: Sequence[float] = (0.5, 0.8, 0.95),
) -> Evaluation:
    """Score per-area predictions against observations (areas with none observed count as 0)."""
    rows = []
    cover = {lv: 0 for lv in levels}
    chance = {lv: 0.0 for lv in levels}
    for area in predicted:
        samples = area.group_samples if measure == "groups" else area.member_samples
        obs_row = observed.get(area.area)
        obs = 0.0 if obs_row is None else float(getattr(obs_row, measure))
        iv = interval(samples, level)  # the rule every shown interval follows
        lo, hi = iv.lo, iv.hi
        mean = float(np.mean(samples))
        rows.append(AreaScore(area.area, mean, float(lo), float(hi), obs,
                              float(np.log((obs + 1) / (mean + 1))), bool(lo <= obs <= hi),
                              iv.chance))
        for lv in levels:
            at = interval(samples, lv)
            cover[lv] += int(at.lo <= obs <= at.hi)
            chance[lv] += lv if at.chance is None else at.chance
    errors = np.array([r.log_error for r in rows])
    pred = np.array([r.predicted for r in rows])
    obs_arr = np.array([r.observed for r in rows])
    rho = float("nan")
    if len(rows) >= 3 and np.ptp(pred) > 0 and np.ptp(obs_arr) > 0:
        rho = float(stats.spearmanr(pred, obs_arr).statistic)
    k = max(len(rows), 1)
    return Evaluation(
        measure=measure,
        level=level,
        rows=rows,
        mean_abs_log_error=float(np.abs(errors).mean()) if rows else float("nan"),
        bias=float(errors.mean()) if rows else float("nan"),
        coverage={lv: c / k for lv, c in cover.items()},
        spearman=rho,
        expected={lv: c / k for lv, c in chance.items()},
    )
