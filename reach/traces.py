"""The one quantity the reach model predicts and the bot can observe: rooms that left a trace.

A room is *reached* by a notice when it got the notice (posted there, or passed
on to it) **and** someone there left a trace of it: a reply, a reaction, a
forward, a read receipt, or a link opened by a person (preview fetchers are not
counted, see ``bot.features.funding_links``). Delivery is certain; whether a
delivered room leaves a trace is not, and it differs by network (bridged rooms
rarely send read receipts). So the chance a room that got the notice leaves a
trace is a Beta posterior per network, fitted from past notices' rooms.

Intervals carry both kinds of uncertainty: the spread of the notice (Monte
Carlo independent cascade) and the trace rates (each run draws its own rates
from the posteriors). They are shown by ``reach.simulate.interval``: a 90%
interval is a point only when the outcome is certain; a 50% one may be the one
value holding about half the chance; each carries the chance it really holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from reach.evaluate import RoomSignal
from reach.graph import NODE_KINDS, ReachGraph
from reach.predict import AreaReach
from reach.simulate import Seed, independent_cascade, interval, summarise

MATRIX = "matrix"  # rooms with no bridge
ALL = "all"  # the row that sums every room, areas known or not
# Before any history: a plain Matrix room is as likely as not to show a trace; a bridged
# room much less (no receipts cross most bridges), so its prior leans low.
PRIORS: dict[str, tuple[float, float]] = {MATRIX: (1.0, 1.0)}
BRIDGED_PRIOR = (1.0, 3.0)


@dataclass(frozen=True)
class Beta:
    """A Beta(a, b) posterior on the chance a room that got a notice leaves a trace."""

    a: float
    b: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)


def prior(network: str) -> Beta:
    return Beta(*PRIORS.get(network, BRIDGED_PRIOR))


def fit_rates(history: Iterable[tuple[str, bool]], networks: Iterable[str] = ()) -> dict[str, Beta]:
    """Posteriors per network from past (network, left a trace?) pairs, one per room a
    past notice reached; ``networks`` adds ones with no history yet (at their prior)."""
    counts: dict[str, list[int]] = {n: [0, 0] for n in networks}
    for network, traced in history:
        c = counts.setdefault(network, [0, 0])
        c[0 if traced else 1] += 1
    out = {}
    for network, (hit, miss) in counts.items():
        p = prior(network)
        out[network] = Beta(p.a + hit, p.b + miss)
    return out


# IMD decile bands a coordinator reads at a glance: the most deprived three deciles, the middle
# four, the least deprived three; rooms with no known decile are in none.
BANDS: tuple[str, ...] = ("IMD 1-3", "IMD 4-7", "IMD 8-10")


def band_of(decile: int | None) -> str | None:
    """The band of an IMD decile (1 = most deprived), None when unknown."""
    if not decile or not 1 <= decile <= 10:
        return None
    return BANDS[0] if decile <= 3 else BANDS[1] if decile <= 7 else BANDS[2]


def band_codes(graph: ReachGraph) -> np.ndarray:
    """Each node's band as an index into ``BANDS`` (-1 when its decile is unknown)."""
    d = graph.decile.astype(np.int64)
    return np.where(d <= 0, -1, np.where(d <= 3, 0, np.where(d <= 7, 1, 2))).astype(np.int64)


@dataclass(frozen=True)
class TracePrediction:
    """Rooms expected to leave a trace: per district, locality and IMD band, and all.

    Rows are ``AreaReach`` with ``group_samples`` the per-run counts, so ``evaluate``
    scores them. ``node_prob`` is each node's chance of being reached with a trace.
    """

    districts: list[AreaReach]
    total: AreaReach
    rates: dict[str, Beta]
    runs: int
    level: float
    localities: list[AreaReach] = field(default_factory=list)
    bands: list[AreaReach] = field(default_factory=list)
    node_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))
    delivered: np.ndarray = field(default_factory=lambda: np.zeros(0))  # P(got it) per node


def _row(area: str, rooms: int, samples: np.ndarray, level: float) -> AreaReach:
    # Members are not part of this quantity; the fields stay zero so evaluate() can score it.
    zero = np.zeros_like(samples)
    return AreaReach(area, rooms, 0, interval(samples, level), summarise(zero, level), samples,
                     zero)


def predict_traces(
    graph: ReachGraph,
    p: float | np.ndarray,
    seeds: Sequence[str],
    networks: Sequence[str],
    rates: Mapping[str, Beta],
    *,
    runs: int = 1000,
    seed: Seed = 0,
    level: float = 0.9,
) -> TracePrediction:
    """Rooms reached-with-a-trace per district, locality and IMD band for a notice in ``seeds``.

    ``networks`` gives each node's network (graph order); one missing from ``rates``
    uses its prior. Rooms in one run and network leave traces independently, so per
    (area, network) the count is Binomial(rooms the notice got, rate), the rate drawn
    afresh for every run (so the interval is the posterior predictive, however few the
    runs) and shared by every area. Each area's counts have
    the right distribution; the areas are drawn apart, so a locality's run need not add
    up to its district's. Cost: the cascade plus O(runs * areas * networks).
    """
    names = sorted(set(networks))
    j = {n: i for i, n in enumerate(names)}
    counted = np.flatnonzero(graph.kind != NODE_KINDS.index("person"))
    net = np.array([j[networks[int(v)]] for v in counted], dtype=np.int64)
    parts = [(graph.districts, graph.district[counted].astype(np.int64)),
             (graph.localities, graph.locality[counted].astype(np.int64)),
             (BANDS, band_codes(graph)[counted]),
             ((ALL,), np.zeros(counted.size, np.int64))]
    rows_, cols_ = [], []
    offset = 0
    for labels, code in parts:
        known = code >= 0
        rows_.append(counted[known])
        cols_.append((offset + code[known]) * len(names) + net[known])
        offset += len(labels)
    rows, col = np.concatenate(rows_), np.concatenate(cols_)
    tally = sp.csr_matrix((np.ones(rows.size), (rows, col)), shape=(graph.n, offset * len(names)))
    spread = independent_cascade(graph, p, graph.nodes_of(seeds), runs, seed, tally)
    assert spread.run_tallies is not None
    got = np.rint(spread.run_tallies).astype(np.int64).reshape(runs, offset, len(names))
    # Its own stream for the rates and traces, so the cascade's runs stay as predict()'s.
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([seed, 1])
    chosen = [rates.get(n, prior(n)) for n in names]
    theta = rng.beta([r.a for r in chosen], [r.b for r in chosen], size=(runs, len(names)))
    traced = rng.binomial(got, theta[:, None, :])
    per_area = traced.sum(axis=2).astype(float)
    out: list[list[AreaReach]] = []
    offset = 0
    for labels, code in parts:
        size = np.bincount(code[code >= 0], minlength=len(labels))
        out.append([_row(name, int(size[i]), per_area[:, offset + i], level)
                    for i, name in enumerate(labels)])
        offset += len(labels)
    mean_rate = np.array([r.mean for r in chosen])
    node_rate = np.zeros(graph.n)
    node_rate[counted] = mean_rate[net]
    return TracePrediction(out[0], out[3][0], dict(zip(names, chosen, strict=True)), runs, level,
                           localities=out[1], bands=out[2],
                           node_prob=spread.node_prob * node_rate, delivered=spread.node_prob)


def observed_traces(graph: ReachGraph, signals: Iterable[RoomSignal]) -> dict[str, int]:
    """Rooms that left a trace, per district, locality and IMD band code, and under ``ALL``
    (every known room). The codes cannot clash: GSS district and locality codes differ in
    prefix and bands are named "IMD a-b"."""
    out: dict[str, int] = {}
    bands = band_codes(graph)
    for s in signals:
        v = graph.index.get(s.room)
        if v is None or not s.any:
            continue
        keys = [ALL]
        if graph.district[v] >= 0:
            keys.append(graph.districts[graph.district[v]])
        if graph.locality[v] >= 0:
            keys.append(graph.localities[graph.locality[v]])
        if bands[v] >= 0:
            keys.append(BANDS[bands[v]])
        for k in keys:
            out[k] = out.get(k, 0) + 1
    return out
