"""Monte Carlo spread: independent cascade and linear threshold, seeded and vectorised.

Runs are simulated in batches by ``reach.kernel``; results give per-node reach
probabilities, per-run totals and optional per-run tallies (for example reached
groups and members per district) so callers can put intervals on any aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reach import kernel
from reach.graph import ReachGraph

Seed = int | np.random.Generator


@dataclass(frozen=True)
class SpreadResult:
    node_prob: np.ndarray  # (n,) share of runs in which each node was reached
    run_totals: np.ndarray  # (runs,) nodes reached per run, seeds included
    run_tallies: np.ndarray | None = None  # (runs, C) = reached indicator @ tally

    @property
    def runs(self) -> int:
        return int(self.run_totals.size)


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float
    se: float  # Monte Carlo standard error of the mean
    # The predictive chance that the outcome lands in [lo, hi]. None for percentile
    # summaries of continuous quantities, where it is the level asked for.
    chance: float | None = None


def summarise(samples: np.ndarray, level: float = 0.9) -> Interval:
    """Mean, central ``level`` percentile interval and standard error of per-run values."""
    x = np.asarray(samples, dtype=float)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(x, [tail, 100.0 - tail])
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    return Interval(float(x.mean()), float(lo), float(hi), se)


POINT_LEVEL = 0.5  # a single value may stand for an interval of at most this level


def _odds(chance: float) -> float:
    """Log-odds of a chance, finite at 0 and 1 (so "holds every run" is far, not infinite)."""
    c = min(max(chance, 1e-9), 1.0 - 1e-9)
    return float(np.log(c / (1.0 - c)))


def interval(samples: np.ndarray, level: float = 0.9) -> Interval:
    """The interval of per-run counts shown to a coordinator, with the chance it holds.

    One rule for every count the bot shows or checks. Start central: each tail left out
    holds as near ``(1 - level) / 2`` of the runs as the counts allow. Then either end may
    move by one value if that brings the interval's chance nearer the level in odds, that
    is by how often it would miss (a 95% interval misses half as often as a 90% one says,
    an 85% one 1.5 times as often, so 85% is the nearer). Always rounding outwards made a
    locality's 0-2 counts hold 95-98% under a 50% or 90% label.

    A wide interval (``level`` above ``POINT_LEVEL``) is never one value while the runs
    disagree, so "18 (18-18)" means every run agreed. A 50% interval may be one value,
    the one holding about half the chance or more. ``chance`` is what the interval really
    holds, so a reader can be told when no interval holds near the level. Deterministic:
    the same runs always give the same interval.
    """
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return summarise(x, level)
    values, counts = np.unique(x, return_counts=True)
    w = counts / x.size
    upto = np.cumsum(w)
    below = upto - w  # P(X < value)
    above = np.clip(1.0 - upto, 0.0, None)  # P(X > value)
    tail = (1.0 - level) / 2.0
    # Rounded so that ties are ties, not float noise; a tie goes to the wider side.
    i = int(np.argmin(np.round(np.abs(below - tail), 9)))
    j = values.size - 1 - int(np.argmin(np.round(np.abs(above - tail), 9)[::-1]))
    i, j = min(i, j), max(i, j)
    point_ok = values.size == 1 or level <= POINT_LEVEL
    best: tuple[tuple[float, float, int], int, int] | None = None
    for a in range(max(i - 1, 0), min(i + 2, values.size)):
        for b in range(max(j - 1, a), min(j + 2, values.size)):
            if a == b and not point_ok:
                continue
            key = (round(abs(_odds(upto[b] - below[a]) - _odds(level)), 9),
                   round(abs(below[a] - above[b]), 9), b - a)  # then even tails, then narrow
            if best is None or key < best[0]:
                best = (key, a, b)
    assert best is not None  # [i, i + 1] or [i - 1, i] is always there when a point is not ok
    _, i, j = best
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    return Interval(float(x.mean()), float(values[i]), float(values[j]), se,
                    float(min(1.0, upto[j] - below[i])))


def as_rng(seed: Seed) -> np.random.Generator:
    """A Generator from an int seed (reproducible) or the caller's own Generator."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def resolve_probs(graph: ReachGraph, p: float | np.ndarray) -> tuple[np.ndarray | None, float]:
    """(per-arc array or None when all arcs share one value, the largest value)."""
    if np.isscalar(p):
        return None, float(p)  # type: ignore[arg-type]
    arr = np.asarray(p, dtype=float)
    if arr.shape != (graph.m,):
        raise ValueError(f"need one probability per arc ({graph.m}), got shape {arr.shape}")
    p_max = float(arr.max()) if arr.size else 0.0
    if p_max > 0.0 and float(arr.min()) == p_max:
        return None, p_max
    return arr, p_max


def _run(
    graph: ReachGraph,
    step_batch: kernel.KernelFn,
    seeds: np.ndarray,
    runs: int,
    tally: np.ndarray | sp.spmatrix | None,
) -> SpreadResult:
    n = graph.n
    batch = max(1, min(runs, kernel.BATCH_CELLS // max(n, 1)))
    scratch = kernel.Scratch.for_cells(batch * n)
    seeds = np.asarray(seeds, dtype=np.int64)
    hits = np.zeros(n, dtype=np.int64)
    totals = np.zeros(runs, dtype=np.int64)
    tallies = []
    for first in range(0, runs, batch):
        b = min(batch, runs - first)
        run = np.repeat(np.arange(b, dtype=np.int64), seeds.size)
        node = np.tile(seeds, b)
        r, v, _ = step_batch(run, node, b, scratch)
        hits += np.bincount(v, minlength=n)
        totals[first : first + b] = np.bincount(r, minlength=b)
        if tally is not None:
            reached = sp.csr_matrix((np.ones(r.size), (r, v)), shape=(b, n))
            part = reached @ tally
            tallies.append(part.toarray() if sp.issparse(part) else np.asarray(part))
    return SpreadResult(
        node_prob=hits / runs,
        run_totals=totals,
        run_tallies=np.vstack(tallies) if tally is not None else None,
    )


def independent_cascade(
    graph: ReachGraph,
    p: float | np.ndarray,
    seeds: Sequence[int] | np.ndarray,
    runs: int = 1000,
    seed: Seed = 0,
    tally: np.ndarray | sp.spmatrix | None = None,
) -> SpreadResult:
    """Independent cascade: each newly reached node gets one chance per out-arc.

    ``p`` is one probability for all arcs or one per arc (CSR order). ``tally``
    (n x C) turns each run's reached set into C totals. Cost: expected
    O(runs * (reached + p_max * arcs out of reached)) plus O(n) per batch.
    """
    rng = as_rng(seed)
    arc_p, p_max = resolve_probs(graph, p)

    def step(run: np.ndarray, node: np.ndarray, b: int, scratch: kernel.Scratch) -> kernel.Pairs:
        return kernel.cascade(
            graph.indptr, graph.indices, arc_p, p_max, run, node, graph.n, rng, scratch
        )

    return _run(graph, step, np.asarray(seeds), runs, tally)


def linear_threshold(
    graph: ReachGraph,
    w: np.ndarray,
    seeds: Sequence[int] | np.ndarray,
    runs: int = 1000,
    seed: Seed = 0,
    tally: np.ndarray | sp.spmatrix | None = None,
) -> SpreadResult:
    """Linear threshold with per-arc weights whose in-sums per node are at most 1.

    Cost: O(runs * n) for thresholds plus O(runs * arcs out of reached nodes).
    """
    w = np.asarray(w, dtype=float)
    if w.shape != (graph.m,):
        raise ValueError(f"need one weight per arc ({graph.m}), got shape {w.shape}")
    in_sum = np.bincount(graph.indices, weights=w, minlength=graph.n)
    if in_sum.size and in_sum.max() > 1.0 + 1e-6:
        raise ValueError("linear threshold weights into a node must sum to at most 1")
    rng = as_rng(seed)

    def step(run: np.ndarray, node: np.ndarray, b: int, scratch: kernel.Scratch) -> kernel.Pairs:
        return kernel.threshold(
            graph.indptr, graph.indices, w, run, node, graph.n, b, rng, scratch
        )

    return _run(graph, step, np.asarray(seeds), runs, tally)


def uniform_lt_weights(graph: ReachGraph) -> np.ndarray:
    """Kempe's standard LT weights: each arc into v weighs 1 / in-degree(v)."""
    indeg = np.bincount(graph.indices, minlength=graph.n)
    return 1.0 / indeg[graph.indices]


def cascade_times(
    graph: ReachGraph,
    p: float | np.ndarray,
    seed_sets: Sequence[Sequence[int]],
    seed: Seed = 0,
) -> list[dict[int, int]]:
    """One independent cascade per seed set, as {node: step reached}; for calibration tests."""
    rng = as_rng(seed)
    arc_p, p_max = resolve_probs(graph, p)
    scratch = kernel.Scratch.for_cells(len(seed_sets) * graph.n)
    run = np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(seed_sets)])
    node = np.concatenate([np.asarray(s, np.int64) for s in seed_sets])
    r, v, t = kernel.cascade(
        graph.indptr, graph.indices, arc_p, p_max, run, node, graph.n, rng, scratch
    )
    out: list[dict[int, int]] = [{} for _ in seed_sets]
    for ri, vi, ti in zip(r.tolist(), v.tolist(), t.tolist(), strict=True):
        out[ri][vi] = ti
    return out
