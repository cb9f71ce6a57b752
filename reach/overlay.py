"""Past funding and partnership next to predicted reach, per locality: where notices do not
reach, do grants land? And which ties would close the gaps.

Pure joins and rankings over plain records: the bot supplies the shipped localities (with
their ONS points and IMD deciles), the predicted reach per locality (rooms reached with a
trace, ``reach.traces``), past grants placed by beneficiary location (360Giving imports)
and collaboration records placed by their groups' areas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reach.graph import NODE_KINDS, ReachGraph
from reach.predict import AreaReach
from reach.simulate import Interval


@dataclass(frozen=True)
class Place:
    """A shipped locality (parish, ward or unparished area)."""

    code: str
    name: str
    district: str | None
    decile: int | None  # IMD 2019, 1 = most deprived
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class Funding:
    """Past grants awarded to beneficiaries in a locality."""

    grants: int = 0
    amount: float = 0.0  # pounds


@dataclass(frozen=True)
class LocalityOverlay:
    place: Place
    rooms: int  # rooms and groups on chat in the locality
    reached: Interval | None  # rooms reached with a trace (None: no room on chat)
    funding: Funding
    collaborations: int  # collaboration records naming one of its groups

    @property
    def reach_share(self) -> float:
        """Expected share of its rooms reached with a trace (0 with no room on chat)."""
        return self.reached.mean / self.rooms if self.reached is not None and self.rooms else 0.0


def join(places: Iterable[Place], predicted: Sequence[AreaReach],
         funding: Mapping[str, Funding], collaborations: Mapping[str, int]
         ) -> list[LocalityOverlay]:
    """One row per shipped locality, in the order given; localities with no room on chat
    are kept (reach 0, no interval): they are where notices cannot land at all."""
    by_code = {a.area: a for a in predicted}
    rows = []
    for place in places:
        pred = by_code.get(place.code)
        rooms = pred.groups if pred is not None else 0
        rows.append(LocalityOverlay(place, rooms, pred.groups_reached if pred and rooms else None,
                                    funding.get(place.code, Funding()),
                                    collaborations.get(place.code, 0)))
    return rows


def collaborations_per_locality(records: Iterable[Sequence[int]],
                                group_area: Mapping[int, str | None],
                                locality_of: Mapping[str, str]) -> dict[str, int]:
    """Records per locality: a record counts once in each locality one of its groups is in.

    ``records`` are each record's group ids; ``locality_of`` maps an area code to its
    locality (codes not in it, such as districts, place no record)."""
    out: dict[str, int] = {}
    for group_ids in records:
        places = {locality_of[c] for g in group_ids
                  if (c := group_area.get(g)) is not None and c in locality_of}
        for code in places:
            out[code] = out.get(code, 0) + 1
    return out


def _need_rank(values: np.ndarray) -> np.ndarray:
    """0..1, 1 for the smallest value (most need); ties share their mean rank."""
    if values.size <= 1:
        return np.ones(values.size)
    order = values.argsort(kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size)
    for v in np.unique(values):  # ties share their mean rank
        same = values == v
        ranks[same] = ranks[same].mean()
    return 1.0 - ranks / (values.size - 1)


@dataclass(frozen=True)
class GapRank:
    row: LocalityOverlay
    score: float  # 0..1: mean of the deprivation, low-reach and low-funding ranks
    ties: tuple[tuple[str, str], ...]  # (inside, outside) node keys that would close it


def rank_gaps(rows: Sequence[LocalityOverlay], limit: int = 10) -> list[GapRank]:
    """Localities by need: deprivation, low predicted reach and low past funding together.

    Each is a rank from 0 (least need) to 1 (most): IMD decile (unknown counts as the
    middle, 5.5), the expected share of rooms reached with a trace, and past funding in
    pounds. The score is their mean, so a locality must be poor on all three to top the
    list; ties go to the more deprived, then the less reached. No ties named yet."""
    if not rows:
        return []
    decile = np.array([r.place.decile or 5.5 for r in rows], float)
    reach = np.array([r.reach_share for r in rows])
    money = np.array([r.funding.amount for r in rows])
    score = (_need_rank(decile) + _need_rank(reach) + _need_rank(money)) / 3.0
    order = sorted(range(len(rows)), key=lambda i: (-score[i], decile[i], reach[i]))
    return [GapRank(rows[i], float(score[i]), ()) for i in order[:limit]]


def bridging_ties(graph: ReachGraph, reach: np.ndarray, locality: str,
                  hubs: Iterable[str] = (), k: int = 2, district: str | None = None
                  ) -> tuple[tuple[str, str], ...]:
    """Up to ``k`` ties (inside, outside) that would bring a gap locality into the network.

    Inside: its least-reached room or group (a hub of its own first, since a parish
    council or locality room passes notices to every group there). Outside: the
    best-reached hubs, then rooms and groups, in the same district (place ties are the
    ones people keep up), else anywhere. A locality with nothing on chat gets
    ``("", outside)``: the tie is to be made when its first group joins; ``district``
    (the locality's) places it then.
    Cost: O(n log n).
    """
    counted = graph.kind != NODE_KINDS.index("person")
    hub = np.zeros(graph.n, bool)
    hub[[graph.index[h] for h in hubs if h in graph.index]] = True
    code = graph.localities.index(locality) if locality in graph.localities else -2
    mine = np.flatnonzero(counted & (graph.locality == code))
    inside = ""
    if mine.size:
        inside = graph.keys[mine[np.lexsort((reach[mine], ~hub[mine]))[0]]]
        here = int(graph.district[mine[0]])
    else:
        here = graph.districts.index(district) if district in graph.districts else -2
    outside = np.flatnonzero(counted & (graph.locality != code) & (reach > 0))
    if outside.size == 0:
        return ()
    near = graph.district[outside] == here
    # Same district first, hubs first, best reached first.
    order = np.lexsort((-reach[outside], ~hub[outside], ~near))
    return tuple((inside, graph.keys[v]) for v in outside[order[:k]])


@dataclass(frozen=True)
class ReachBand:
    """One row of "where notices do not reach, grants do not land"."""

    label: str
    localities: int
    deprived: int  # of them in IMD deciles 1-3
    grants: int
    amount: float
    collaborations: int


def reach_bands(rows: Sequence[LocalityOverlay]) -> list[ReachBand]:
    """Localities in bands of predicted reach: none on chat, then the thirds of the rest
    by expected share of rooms reached with a trace, lowest first, with their funding."""
    on_chat = sorted((r for r in rows if r.rooms), key=lambda r: r.reach_share)
    thirds = np.array_split(np.arange(len(on_chat)), 3) if on_chat else []
    groups: list[tuple[str, list[LocalityOverlay]]] = [
        ("no room on chat", [r for r in rows if not r.rooms])]
    for label, idx in zip(("lowest reach", "middle reach", "highest reach"), thirds, strict=False):
        groups.append((label, [on_chat[i] for i in idx]))
    return [ReachBand(label, len(g), sum(1 for r in g if r.place.decile and r.place.decile <= 3),
                      sum(r.funding.grants for r in g), float(sum(r.funding.amount for r in g)),
                      sum(r.collaborations for r in g)) for label, g in groups if g]


def with_ties(ranks: Sequence[GapRank], graph: ReachGraph, reach: np.ndarray,
              hubs: Iterable[str] = (), k: int = 2) -> list[GapRank]:
    """The ranked gaps, each naming the ties that would close it (``bridging_ties``)."""
    hub_list = list(hubs)
    return [GapRank(g.row, g.score, bridging_ties(graph, reach, g.row.place.code, hub_list, k,
                                                  g.row.place.district))
            for g in ranks]
