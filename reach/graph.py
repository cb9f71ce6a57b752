"""The reach graph: rooms and groups (optionally pseudonymous people) as CSR arrays.

Built by pure functions from plain records so the bot can rebuild it from the
database at any time; everything downstream works on the integer arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import networkx as nx
import numpy as np
import scipy.sparse as sp

NodeKind = Literal["room", "group", "person"]
NODE_KINDS: tuple[NodeKind, ...] = ("room", "group", "person")
# Arc kinds, in code order: shared members, cross-room replies, forwards,
# offline (directory) ties, and person<->room membership arcs.
ARC_KINDS: tuple[str, ...] = ("member", "reply", "forward", "offline", "membership")


@dataclass(frozen=True)
class RoomNode:
    """A room or registered group, with the area facts the reach model needs."""

    key: str
    kind: NodeKind = "room"
    locality: str | None = None
    district: str | None = None
    deprivation_decile: int | None = None  # IMD decile, 1 = most deprived
    members: int = 0


@dataclass(frozen=True)
class Membership:
    room: str
    member_key: str  # pseudonymous sender key, never a Matrix id


@dataclass(frozen=True)
class FlowTie:
    """Notices seen moving from one room to another (replies or forwards across rooms)."""

    src_room: str
    dst_room: str
    kind: Literal["reply", "forward"]
    count: int = 1


@dataclass(frozen=True)
class OfflineTie:
    """A tie from the directory: a parish council or community hub to a group in its area."""

    src: str
    dst: str
    weight: float = 1.0


@dataclass(frozen=True, eq=False)
class ReachGraph:
    """Directed multigraph in CSR form (arcs sorted by source) with node metadata.

    Area fields are integer codes into ``localities`` / ``districts`` (-1 unknown);
    ``decile`` is 0 where unknown.
    """

    keys: tuple[str, ...]
    kind: np.ndarray  # int8 codes into NODE_KINDS
    locality: np.ndarray  # int32 codes into localities
    district: np.ndarray  # int32 codes into districts
    decile: np.ndarray  # int8, 1..10, 0 unknown
    members: np.ndarray  # int64
    indptr: np.ndarray  # int64, n + 1
    indices: np.ndarray  # int32 arc targets
    arc_kind: np.ndarray  # int8 codes into ARC_KINDS
    arc_weight: np.ndarray  # float64 (shared members, tie counts)
    localities: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    index: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def m(self) -> int:
        return int(self.indices.size)

    @cached_property
    def sources(self) -> np.ndarray:
        """Source node of every arc (the CSR rows expanded)."""
        return np.repeat(np.arange(self.n, dtype=np.int32), np.diff(self.indptr))

    @cached_property
    def reverse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, sources, arc order) of the transposed graph, for reverse-reachable sets."""
        order = np.argsort(self.indices, kind="stable")
        counts = np.bincount(self.indices, minlength=self.n)
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, self.sources[order], order

    def nodes_of(self, keys: Iterable[str]) -> np.ndarray:
        """Node indices for keys; unknown keys raise KeyError naming the key."""
        return np.array([self.index[k] for k in keys], dtype=np.int64)

    def adjacency(self) -> sp.csr_matrix:
        """Weighted adjacency with parallel arcs summed."""
        a = sp.csr_matrix(
            (self.arc_weight, self.indices, self.indptr), shape=(self.n, self.n)
        )
        a.sum_duplicates()
        return a

    def to_networkx(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(range(self.n))
        a = self.adjacency().tocoo()
        g.add_weighted_edges_from(zip(a.row.tolist(), a.col.tolist(), a.data.tolist(), strict=True))
        return g


def _codes(values: Sequence[str | None]) -> tuple[np.ndarray, tuple[str, ...]]:
    names = tuple(sorted({v for v in values if v is not None}))
    lookup = {name: i for i, name in enumerate(names)}
    codes = np.array([-1 if v is None else lookup[v] for v in values], dtype=np.int32)
    return codes, names


def from_arcs(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    arc_kind: np.ndarray | None = None,
    arc_weight: np.ndarray | None = None,
    keys: Sequence[str] | None = None,
    kind: Sequence[NodeKind] | None = None,
    locality: Sequence[str | None] | None = None,
    district: Sequence[str | None] | None = None,
    decile: Sequence[int | None] | None = None,
    members: Sequence[int] | None = None,
) -> ReachGraph:
    """Assemble a ReachGraph from arc arrays (self-loops dropped).

    Cost: O(m log m) for the sort by source.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    kinds = np.zeros(src.size, np.int8) if arc_kind is None else np.asarray(arc_kind, np.int8)
    weights = np.ones(src.size) if arc_weight is None else np.asarray(arc_weight, float)
    keep = src != dst
    src, dst, kinds, weights = src[keep], dst[keep], kinds[keep], weights[keep]
    order = np.lexsort((dst, src))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    key_list = tuple(keys) if keys is not None else tuple(str(i) for i in range(n))
    loc, localities = _codes(locality if locality is not None else [None] * n)
    dis, districts = _codes(district if district is not None else [None] * n)
    kind_codes = [NODE_KINDS.index(k) for k in (kind or ["room"] * n)]
    return ReachGraph(
        keys=key_list,
        kind=np.array(kind_codes, dtype=np.int8),
        locality=loc,
        district=dis,
        decile=np.array([d or 0 for d in (decile or [0] * n)], dtype=np.int8),
        members=np.array(members if members is not None else [0] * n, dtype=np.int64),
        indptr=indptr,
        indices=dst[order].astype(np.int32),
        arc_kind=kinds[order],
        arc_weight=weights[order],
        localities=localities,
        districts=districts,
        index={k: i for i, k in enumerate(key_list)},
    )


def from_networkx(g: nx.Graph, **node_fields: Any) -> ReachGraph:
    """Nodes relabelled 0..n-1 in iteration order; an undirected edge becomes two arcs."""
    nodes = list(g.nodes)
    pos = {v: i for i, v in enumerate(nodes)}
    pairs = np.array([(pos[u], pos[v]) for u, v in g.edges], dtype=np.int64).reshape(-1, 2)
    src, dst = pairs[:, 0], pairs[:, 1]
    if not g.is_directed():
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    return from_arcs(len(nodes), src, dst, keys=[str(v) for v in nodes], **node_fields)


def build_graph(
    nodes: Iterable[RoomNode],
    memberships: Iterable[Membership] = (),
    flows: Iterable[FlowTie] = (),
    offline: Iterable[OfflineTie] = (),
    *,
    people: bool = False,
    shared: Iterable[tuple[str, str, int]] = (),
) -> ReachGraph:
    """The reach graph from directory and flow records.

    Rooms sharing members get arcs both ways weighted by the number shared;
    flow ties add arcs in the direction notices moved; offline ties go both
    ways. With ``people=True`` (only after a DPIA) each pseudonymous member is a
    node with arcs to and from their rooms instead of room-room member arcs.
    ``shared`` gives the room-room counts already made, (room, other room, people
    active in both) once per pair: the same member arcs as from the memberships they
    count, without a row per person and room (the bot's database counts them).
    Records naming unknown rooms are ignored. Cost: O(M + R * s) for M
    memberships and s rooms per member.
    """
    rooms = list(nodes)
    keys = [r.key for r in rooms]
    index = {k: i for i, k in enumerate(keys)}
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    kind: list[np.ndarray] = []
    weight: list[np.ndarray] = []

    def add(s: np.ndarray, d: np.ndarray, k: str, w: Sequence[float] | np.ndarray) -> None:
        src.append(s)
        dst.append(d)
        kind.append(np.full(s.size, ARC_KINDS.index(k), np.int8))
        weight.append(np.asarray(w, float))

    pairs = {(index[m.room], m.member_key) for m in memberships if m.room in index}
    person_keys = sorted({p for _, p in pairs})
    person_index = {p: i for i, p in enumerate(person_keys)}
    room_col = np.array([r for r, _ in pairs], dtype=np.int64)
    person_col = np.array([person_index[p] for _, p in pairs], dtype=np.int64)
    if people:
        person_nodes = person_col + len(rooms)
        add(room_col, person_nodes, "membership", np.ones(room_col.size))
        add(person_nodes, room_col, "membership", np.ones(room_col.size))
    elif pairs:
        inc = sp.csr_matrix(
            (np.ones(room_col.size), (room_col, person_col)), shape=(len(rooms), len(person_keys))
        )
        both = (inc @ inc.T).tocoo()
        off = both.row != both.col
        add(both.row[off], both.col[off], "member", both.data[off])
    counted = [(index[a], index[b], n) for a, b, n in shared
               if a in index and b in index and a != b and n > 0]
    if counted:
        ends = np.array([(a, b) for a, b, _ in counted], dtype=np.int64)
        w = np.array([n for _, _, n in counted], dtype=float)
        add(np.concatenate([ends[:, 0], ends[:, 1]]), np.concatenate([ends[:, 1], ends[:, 0]]),
            "member", np.concatenate([w, w]))
    for f in flows:
        if f.src_room in index and f.dst_room in index and f.count > 0:
            add(np.array([index[f.src_room]]), np.array([index[f.dst_room]]), f.kind, [f.count])
    for t in offline:
        if t.src in index and t.dst in index:
            a, b = index[t.src], index[t.dst]
            add(np.array([a, b]), np.array([b, a]), "offline", [t.weight, t.weight])

    total = len(rooms) + (len(person_keys) if people else 0)
    extra = total - len(rooms)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return from_arcs(
        total,
        cat(src, np.int64),
        cat(dst, np.int64),
        arc_kind=cat(kind, np.int8),
        arc_weight=cat(weight, float),
        keys=keys + person_keys[: extra],
        kind=[r.kind for r in rooms] + ["person"] * extra,
        locality=[r.locality for r in rooms] + [None] * extra,
        district=[r.district for r in rooms] + [None] * extra,
        decile=[r.deprivation_decile for r in rooms] + [None] * extra,
        members=[r.members for r in rooms] + [1] * extra,
    )


def hub_ties(nodes: Iterable[RoomNode], hubs: Iterable[str]) -> list[OfflineTie]:
    """Offline ties from each hub (parish council, community hub) to every group in its locality."""
    rooms = list(nodes)
    by_key = {r.key: r for r in rooms}
    ties = []
    for h in hubs:
        hub = by_key.get(h)
        if hub is None or hub.locality is None:
            continue
        ties += [OfflineTie(h, r.key) for r in rooms if r.locality == hub.locality and r.key != h]
    return ties
