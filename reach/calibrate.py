"""Transmission probabilities from observed notice cascades.

A bot sees tens of notices a month, far too few to identify one probability
per arc (that needs O(d^2 log n) cascades), so probabilities are pooled by arc
kind with a Beta prior and fitted by MAP-EM for the discrete-time independent
cascade (Saito, Nakano, Kimura, KES 2008): when several parents were active
one step before a node, the E-step shares the credit for its activation among
them. Per-arc values are then shrunk toward their kind's rate, so an arc with
little evidence keeps its kind's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from reach.graph import ARC_KINDS, ReachGraph


@dataclass(frozen=True)
class BetaPrior:
    """Beta(a, b) prior on a kind's rate; the default's mode is 0.05 and mean 0.09."""

    a: float = 2.0
    b: float = 20.0


@dataclass(frozen=True)
class Calibration:
    kind_prob: dict[str, float]
    kind_trials: dict[str, int]  # attempts observed per kind (arc from a reached node)
    kind_credit: dict[str, float]  # expected successes per kind at the fit
    arc_prob: np.ndarray  # per arc in CSR order, shrunk toward kind_prob
    iterations: int
    converged: bool


@dataclass(frozen=True)
class _Evidence:
    attempt_arc: np.ndarray  # every attempt: arc index
    success_arc: np.ndarray  # attempts that succeeded
    success_group: np.ndarray  # (cascade, node) activation each success belongs to


def steps_from_times(
    graph: ReachGraph, times: Mapping[str, datetime], bin_hours: float = 12.0
) -> dict[int, int]:
    """A cascade as {node: step} from first-seen times per room, in bins of ``bin_hours``.

    Rooms unknown to the graph are dropped. Steps count from the earliest time.
    """
    known = {graph.index[k]: t for k, t in times.items() if k in graph.index}
    if not known:
        return {}
    t0 = min(known.values())
    return {v: int((t - t0).total_seconds() // (bin_hours * 3600)) for v, t in known.items()}


def _evidence(graph: ReachGraph, cascades: Sequence[Mapping[int, int]]) -> _Evidence:
    never = np.iinfo(np.int64).max // 2
    t = np.full(graph.n, never, dtype=np.int64)
    attempts, successes, groups = [], [], []
    offset = 0
    for cascade in cascades:
        if not cascade:
            continue
        nodes = np.fromiter(cascade.keys(), dtype=np.int64, count=len(cascade))
        t[nodes] = np.fromiter(cascade.values(), dtype=np.int64, count=len(cascade))
        start = graph.indptr[nodes]
        deg = graph.indptr[nodes + 1] - start
        ends = np.cumsum(deg)
        arc = np.arange(int(ends[-1])) + np.repeat(start - (ends - deg), deg)
        tu = np.repeat(t[nodes], deg)
        v = graph.indices[arc]
        tv = t[v]
        tried = tv > tu
        won = tv == tu + 1
        attempts.append(arc[tried])
        successes.append(arc[won])
        groups.append(v[won].astype(np.int64) + offset)
        offset += graph.n
        t[nodes] = never
    def cat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0, np.int64)

    group = cat(groups)
    _, group = np.unique(group, return_inverse=True)
    return _Evidence(cat(attempts), cat(successes), group)


def fit_ic(
    graph: ReachGraph,
    cascades: Sequence[Mapping[int, int]],
    prior: BetaPrior | Mapping[str, BetaPrior] = BetaPrior(),
    arc_strength: float = 20.0,
    max_iter: int = 200,
    tol: float = 1e-7,
) -> Calibration:
    """MAP-EM fit of one IC probability per arc kind, then per-arc shrinkage.

    ``cascades`` are {node: step} maps (seeds at their own step; a node whose
    parents were not active one step earlier counts as exogenous). An attempt
    is an arc out of a reached node u to a node not reached by u's step; it
    succeeded if the target was reached exactly one step later. Kinds with no
    attempts get their prior's mode. ``arc_strength`` is the prior weight (in
    attempts) of the kind rate in each arc's posterior mean.
    Cost: O(sum of arcs out of reached nodes) to gather evidence, then
    O(successes) per EM iteration.
    """
    k = len(ARC_KINDS)
    priors = [prior.get(name, BetaPrior()) if isinstance(prior, Mapping) else prior
              for name in ARC_KINDS]
    a = np.array([p.a for p in priors])
    b = np.array([p.b for p in priors])
    if np.any(a < 1) or np.any(b < 1):
        raise ValueError("Beta prior parameters must be >= 1 for a MAP fit")
    ev = _evidence(graph, cascades)
    kind = graph.arc_kind.astype(np.int64)
    trials = np.bincount(kind[ev.attempt_arc], minlength=k).astype(float)
    s_kind = kind[ev.success_arc]
    kappa = a / (a + b)
    credit = np.zeros(ev.success_arc.size)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        ks = kappa[s_kind]
        log_fail = np.bincount(ev.success_group, weights=np.log1p(-ks))
        credit = ks / -np.expm1(log_fail)[ev.success_group] if ks.size else ks
        num = np.bincount(s_kind, weights=credit, minlength=k)
        with np.errstate(invalid="ignore"):
            mode = (num + a - 1) / (trials + a + b - 2)
        # A flat prior with no evidence has no mode: fall back on its mean.
        new = np.clip(np.where(trials + a + b - 2 > 0, mode, a / (a + b)), 1e-6, 1 - 1e-6)
        done = float(np.max(np.abs(new - kappa))) < tol
        kappa = new
        if done:
            converged = True
            break
    arc_trials = np.bincount(ev.attempt_arc, minlength=graph.m)
    arc_credit = np.bincount(ev.success_arc, weights=credit, minlength=graph.m)
    base = kappa[kind]
    arc_prob = (arc_credit + arc_strength * base) / (arc_trials + arc_strength)
    num = np.bincount(s_kind, weights=credit, minlength=k)
    return Calibration(
        kind_prob={name: float(kappa[i]) for i, name in enumerate(ARC_KINDS)},
        kind_trials={name: int(trials[i]) for i, name in enumerate(ARC_KINDS)},
        kind_credit={name: float(num[i]) for i, name in enumerate(ARC_KINDS)},
        arc_prob=arc_prob,
        iterations=it,
        converged=converged,
    )


def kind_probabilities(graph: ReachGraph, kind_prob: Mapping[str, float]) -> np.ndarray:
    """Per-arc probabilities from per-kind rates (kinds not given get 0)."""
    table = np.array([kind_prob.get(name, 0.0) for name in ARC_KINDS])
    return table[graph.arc_kind.astype(np.int64)]


def beta_binomial_shrink(
    successes: np.ndarray, trials: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Empirical-Bayes rates (x + a) / (n + a + b), with (a, b) by method of moments.

    For room-to-room re-post rates: pooled over units of one type, so a room
    pair seen twice is pulled to the type's rate. Returns (rates, a, b).
    Cost: O(len(trials)).
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    seen = n > 0
    if not seen.any():
        return np.full(x.shape, np.nan), float("nan"), float("nan")
    mu = float(np.clip(x[seen].sum() / n[seen].sum(), 1e-6, 1 - 1e-6))
    rates = x[seen] / n[seen]
    w = n[seen]
    var = float(np.average((rates - mu) ** 2, weights=w))
    # Binomial noise alone gives var ~ mu(1-mu)/mean(n); the excess is between-unit spread.
    noise = mu * (1 - mu) * float(np.mean(1.0 / w))
    spread = max(var - noise, 1e-9)
    strength = max(mu * (1 - mu) / spread - 1.0, 1e-3)
    a, b = mu * strength, (1 - mu) * strength
    return (x + a) / (n + a + b), a, b
