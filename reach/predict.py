"""Expected reach of a notice per district and locality, with Monte Carlo intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from reach.graph import NODE_KINDS, ReachGraph
from reach.simulate import (
    Interval,
    Seed,
    SpreadResult,
    independent_cascade,
    linear_threshold,
    summarise,
)


@dataclass(frozen=True)
class AreaReach:
    area: str  # GSS code of the district or locality
    groups: int  # rooms and groups in the area
    members: int
    groups_reached: Interval
    members_reached: Interval
    group_samples: np.ndarray  # per run, for calibration checks
    member_samples: np.ndarray

    @property
    def share_groups(self) -> Interval:
        return _share(self.groups_reached, self.groups)

    @property
    def share_members(self) -> Interval:
        return _share(self.members_reached, self.members)


def _share(iv: Interval, whole: int) -> Interval:
    d = max(whole, 1)
    return Interval(iv.mean / d, iv.lo / d, iv.hi / d, iv.se / d, iv.chance)


@dataclass(frozen=True)
class Prediction:
    seeds: list[str]
    runs: int
    level: float
    districts: list[AreaReach]
    localities: list[AreaReach]
    node_prob: np.ndarray  # P(reached) per node


def area_tally(
    graph: ReachGraph, codes: np.ndarray, n_areas: int, exposure: float
) -> sp.csr_matrix:
    """n x 2A matrix: column a counts a reached room of area a, column A + a its members."""
    counted = (codes >= 0) & (graph.kind != NODE_KINDS.index("person"))
    rows = np.flatnonzero(counted)
    area = codes[rows]
    data = np.concatenate([np.ones(rows.size), exposure * graph.members[rows].astype(float)])
    return sp.csr_matrix(
        (data, (np.concatenate([rows, rows]), np.concatenate([area, area + n_areas]))),
        shape=(graph.n, 2 * n_areas),
    )


def _areas(graph: ReachGraph, codes: np.ndarray, names: tuple[str, ...], tallies: np.ndarray,
           level: float) -> list[AreaReach]:
    counted = graph.kind != NODE_KINDS.index("person")
    a = len(names)
    groups = np.bincount(codes[counted & (codes >= 0)], minlength=a)
    members = np.bincount(codes[counted & (codes >= 0)],
                          weights=graph.members[counted & (codes >= 0)], minlength=a)
    out = []
    for i, name in enumerate(names):
        g, m = tallies[:, i], tallies[:, a + i]
        out.append(AreaReach(name, int(groups[i]), int(members[i]), summarise(g, level),
                             summarise(m, level), g, m))
    return out


def predict(
    graph: ReachGraph,
    p: float | np.ndarray,
    seeds: Sequence[str],
    *,
    runs: int = 1000,
    seed: Seed = 0,
    level: float = 0.9,
    model: Literal["ic", "lt"] = "ic",
    exposure: float = 1.0,
) -> Prediction:
    """Simulate a notice posted in ``seeds`` (room keys) and sum reach per area.

    ``p`` is the per-arc IC probability (or LT weight for ``model="lt"``);
    ``exposure`` is the share of a reached room's members taken to see it.
    People nodes (if any) spread the notice but are not counted in areas.
    Unknown seed keys raise KeyError naming the key.
    Cost: that of the simulation plus O(reached pairs) for the tallies.
    """
    nodes = graph.nodes_of(seeds)
    nd, nl = len(graph.districts), len(graph.localities)
    tally = sp.hstack([
        area_tally(graph, graph.district, nd, exposure),
        area_tally(graph, graph.locality, nl, exposure),
    ]).tocsr()
    result: SpreadResult
    if model == "lt":
        result = linear_threshold(graph, np.asarray(p), nodes, runs, seed, tally)
    else:
        result = independent_cascade(graph, p, nodes, runs, seed, tally)
    t = result.run_tallies
    assert t is not None
    return Prediction(
        seeds=list(seeds),
        runs=runs,
        level=level,
        districts=_areas(graph, graph.district, graph.districts, t[:, : 2 * nd], level),
        localities=_areas(graph, graph.locality, graph.localities, t[:, 2 * nd :], level),
        node_prob=result.node_prob,
    )
