"""Who the network leaves out: low-reach localities and closed-in groups, most deprived first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from reach.graph import NODE_KINDS, ReachGraph
from reach.structure import Structure


@dataclass(frozen=True)
class AreaInfo:
    """A directory locality, so places with no group on chat at all still show up."""

    district: str | None
    decile: int | None


@dataclass(frozen=True)
class LocalityGap:
    locality: str
    district: str | None
    decile: int | None
    groups: int
    members: int
    predicted_reach: float  # mean P(reached) over its rooms and groups (0 if none)
    bridging_ties: int  # ties from its groups into other communities


@dataclass(frozen=True)
class GroupGap:
    key: str
    locality: str | None
    decile: int | None
    predicted_reach: float
    constraint: float
    effective_size: float
    bridging_ties: int


@dataclass(frozen=True)
class CommunityGap:
    community: int
    groups: int
    predicted_reach: float
    bridging_ties: int
    deprived_share: float  # share of its groups in IMD deciles 1-3
    broker: str  # the member with the largest effective size: where a new tie pays most


@dataclass(frozen=True)
class Gaps:
    threshold: float  # localities below this mean reach count as gaps
    localities: list[LocalityGap]
    groups: list[GroupGap]
    communities: list[CommunityGap]


def _need_order(decile: int | None, reach: float) -> tuple[int, float]:
    return (decile if decile else 11, reach)


def find_gaps(
    graph: ReachGraph,
    structure: Structure,
    reach: np.ndarray,
    *,
    below: float | None = None,
    areas: Mapping[str, AreaInfo] | None = None,
    limit: int = 50,
) -> Gaps:
    """Rank the gaps in the network by need.

    ``reach`` is P(reached) per node from a prediction. A locality is a gap when
    the mean reach of its groups is below ``below`` (default: the lower quartile
    across localities); localities in ``areas`` with no group count as reach 0.
    Groups are gaps when they have no tie into another community and sit in a
    gap locality. All lists are ranked by IMD decile (most deprived first),
    then by reach. Cost: O(n + E) after the structure.
    """
    counted = graph.kind != NODE_KINDS.index("person")
    bridging = structure.bridging_ties()
    nl = len(graph.localities)
    code = graph.locality
    mine = counted & (code >= 0)
    groups = np.bincount(code[mine], minlength=nl)
    with np.errstate(invalid="ignore"):
        mean_reach = np.bincount(code[mine], weights=reach[mine], minlength=nl) / groups
    mean_reach = np.nan_to_num(mean_reach)
    members = np.bincount(code[mine], weights=graph.members[mine], minlength=nl)
    ties = np.bincount(code[mine], weights=bridging[mine], minlength=nl)
    decile = np.zeros(nl, dtype=int)
    decile[code[mine]] = graph.decile[mine]
    district = np.full(nl, -1)
    district[code[mine]] = graph.district[mine]
    rows = {
        name: LocalityGap(
            name,
            graph.districts[district[i]] if district[i] >= 0 else None,
            int(decile[i]) or None,
            int(groups[i]),
            int(members[i]),
            float(mean_reach[i]),
            int(ties[i]),
        )
        for i, name in enumerate(graph.localities)
    }
    for name, info in (areas or {}).items():
        if name not in rows:
            rows[name] = LocalityGap(name, info.district, info.decile, 0, 0, 0.0, 0)
    values = np.array([r.predicted_reach for r in rows.values()])
    threshold = float(np.quantile(values, 0.25)) if below is None and values.size else below or 0.0
    low = [r for r in rows.values() if r.predicted_reach <= threshold + 1e-9]
    low.sort(key=lambda r: _need_order(r.decile, r.predicted_reach))
    gap_codes = {graph.localities.index(r.locality) for r in low if r.locality in graph.localities}
    closed = np.flatnonzero(mine & (bridging == 0) & np.isin(code, list(gap_codes)))
    group_rows = [
        GroupGap(
            graph.keys[v],
            graph.localities[code[v]],
            int(graph.decile[v]) or None,
            float(reach[v]),
            float(structure.constraint[v]),
            float(structure.effective_size[v]),
            int(bridging[v]),
        )
        for v in closed
    ]
    group_rows.sort(key=lambda g: (*_need_order(g.decile, g.predicted_reach), -g.constraint))
    return Gaps(threshold, low[:limit], group_rows[:limit], _communities(graph, structure, reach))


def _communities(graph: ReachGraph, structure: Structure, reach: np.ndarray) -> list[CommunityGap]:
    counted = graph.kind != NODE_KINDS.index("person")
    c = structure.community
    k = structure.n_communities
    size = np.bincount(c[counted], minlength=k)
    with np.errstate(invalid="ignore"):
        mean = np.nan_to_num(np.bincount(c[counted], weights=reach[counted], minlength=k) / size)
        deprived = counted & (graph.decile > 0) & (graph.decile <= 3)
        share = np.nan_to_num(np.bincount(c[deprived], minlength=k) / size)
    ties = np.bincount(c[structure.edges[structure.bridging].ravel()], minlength=k)
    esize = np.nan_to_num(structure.effective_size, nan=-1.0)
    esize[~counted] = -2.0  # people are never named as brokers
    order = np.lexsort((-esize, c))
    first = np.searchsorted(c[order], np.arange(k))
    out = [
        CommunityGap(i, int(size[i]), float(mean[i]), int(ties[i]), float(share[i]),
                     graph.keys[order[first[i]]])
        for i in range(k)
        if size[i] > 0
    ]
    out.sort(key=lambda g: (g.predicted_reach, -g.deprived_share))
    return out
