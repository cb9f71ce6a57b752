"""The one quantity the reach model predicts and the bot can observe: rooms that left a trace.

A room is *reached* by a notice when it got the notice (posted there, or passed
on to it) **and** someone there left a trace of it: a reply, a reaction, a
forward, a read receipt, or a link opened by a person (preview fetchers are not
counted, see ``bot.features.funding_links``). Delivery is certain; whether a
delivered room leaves a trace is not, and it differs by network (bridged rooms
rarely send read receipts). So the chance a room that got the notice leaves a
trace is a Beta posterior per network, fitted from past notices' rooms.

Intervals carry both kinds of uncertainty: the spread of the notice (Monte
Carlo independent cascade) and the trace rates (each batch of runs draws its
own rates from the posteriors), so they shrink to a point only when the
outcome is certain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reach.evaluate import RoomSignal
from reach.graph import NODE_KINDS, ReachGraph
from reach.predict import AreaReach
from reach.simulate import Seed, independent_cascade, summarise

MATRIX = "matrix"  # rooms with no bridge
ALL = "all"  # the row that sums every room, areas known or not
BATCH = 50  # runs sharing one draw of the trace rates
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


@dataclass(frozen=True)
class TracePrediction:
    """Rooms expected to leave a trace: per district (``AreaReach.group_samples``) and all."""

    districts: list[AreaReach]
    total: AreaReach
    rates: dict[str, Beta]
    runs: int
    level: float


def _row(area: str, rooms: int, samples: np.ndarray, level: float) -> AreaReach:
    # Members are not part of this quantity; the fields stay zero so evaluate() can score it.
    zero = np.zeros_like(samples)
    return AreaReach(area, rooms, 0, summarise(samples, level), summarise(zero, level), samples,
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
    """Rooms reached-with-a-trace per district for a notice posted in ``seeds``.

    ``networks`` gives each node's network (graph order); one missing from ``rates``
    uses its prior. Rooms in one run and network leave traces independently, so per
    (district, network) the count is Binomial(rooms the notice got, rate), the rate drawn
    once per batch of ``BATCH`` runs. Cost: the cascade plus O(runs * districts * networks).
    """
    names = sorted(set(networks))
    j = {n: i for i, n in enumerate(names)}
    nd = len(graph.districts)
    counted = np.flatnonzero(graph.kind != NODE_KINDS.index("person"))
    net = np.array([j[networks[int(v)]] for v in counted], dtype=np.int64)
    area = np.where(graph.district[counted] >= 0, graph.district[counted], nd)
    cols = len(names) * (nd + 2)  # districts, no district, all
    rows = np.concatenate([counted, counted])
    col = np.concatenate([area * len(names) + net, (nd + 1) * len(names) + net])
    tally = sp.csr_matrix((np.ones(rows.size), (rows, col)), shape=(graph.n, cols))
    spread = independent_cascade(graph, p, graph.nodes_of(seeds), runs, seed, tally)
    assert spread.run_tallies is not None
    got = np.rint(spread.run_tallies).astype(np.int64).reshape(runs, nd + 2, len(names))
    # Its own stream for the rates and traces, so the cascade's runs stay as predict()'s.
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([seed, 1])
    traced = np.empty_like(got)
    for start in range(0, runs, BATCH):
        theta = np.array([rng.beta(r.a, r.b) for r in (rates.get(n, prior(n)) for n in names)])
        traced[start:start + BATCH] = rng.binomial(got[start:start + BATCH], theta)
    per_area = traced.sum(axis=2).astype(float)
    rooms_in = np.bincount(area, minlength=nd + 1)
    districts = [_row(code, int(rooms_in[i]), per_area[:, i], level)
                 for i, code in enumerate(graph.districts)]
    total = _row(ALL, int(counted.size), per_area[:, nd + 1], level)
    return TracePrediction(districts, total, {n: rates.get(n, prior(n)) for n in names}, runs,
                           level)


def observed_traces(graph: ReachGraph, signals: Iterable[RoomSignal]) -> dict[str, int]:
    """Rooms that left a trace, per district code and under ``ALL`` (every known room)."""
    out: dict[str, int] = {}
    for s in signals:
        v = graph.index.get(s.room)
        if v is None or not s.any:
            continue
        out[ALL] = out.get(ALL, 0) + 1
        if graph.district[v] >= 0:
            d = graph.districts[graph.district[v]]
            out[d] = out.get(d, 0) + 1
    return out
