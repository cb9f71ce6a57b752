"""Where to post: the k rooms that maximise expected (need-weighted) reach.

Weighted reverse-influence sampling with IMM's sample sizes (Borgs et al.,
SODA 2014; Tang, Shi, Xiao, SIGMOD 2015). A reverse-reachable (RR) set is the
set of nodes that would have reached a random root; roots are drawn with
probability w_v / W, so W x (share of RR sets a seed set touches) is an
unbiased estimate of the weighted reach sum_v w_v P(v reached). Weighted
reach is monotone submodular, so greedy maximum coverage over the sets gives
a (1 - 1/e - eps)-approximation with probability at least 1 - n^-ell.

The final sets are sampled afresh after the lower bound is found, which
closes the gap in IMM's original martingale argument (Chen, 2018,
arXiv 1808.09363). Cost: O((k + ell)(n + m) log n / eps^2) expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reach import kernel
from reach.graph import NODE_KINDS, ReachGraph
from reach.simulate import Seed, as_rng, resolve_probs

GUARANTEE = "(1 - 1/e - eps) of the best k with probability at least 1 - n^-ell"


@dataclass(frozen=True)
class SeedChoice:
    seeds: list[int]  # node indices, in the order greedy picked them
    keys: list[str]
    weighted_reach: float  # estimated sum_v w_v P(v reached) for all seeds
    gains: list[float]  # estimated marginal weighted reach of each pick
    rr_sets: int  # RR sets in the final sample
    eps: float
    ell: float
    guarantee: str = GUARANTEE


def need(graph: ReachGraph) -> np.ndarray:
    """Need per node from its IMD decile: 1.0 for decile 1 down to 0.1 for decile 10.

    Nodes with no decile get the mean need of those with one (1 if none has).
    """
    d = graph.decile.astype(float)
    known = d > 0
    out = np.where(known, (11.0 - d) / 10.0, 0.0)
    out[~known] = out[known].mean() if known.any() else 1.0
    return out


def equity_weights(
    graph: ReachGraph, equity: float, base: np.ndarray | None = None
) -> np.ndarray:
    """Reach weights that lean toward deprived areas as ``equity`` goes 0 -> 1.

    w_v = base_v * ((1 - equity) + equity * need_v / mean need): equity 0 is
    plain reach, equity 1 weights a decile-1 node ten times a decile-10 one.
    """
    if not 0.0 <= equity <= 1.0:
        raise ValueError("equity must be between 0 and 1")
    b = np.ones(graph.n) if base is None else np.asarray(base, dtype=float)
    nd = need(graph)
    return b * ((1.0 - equity) + equity * nd / nd.mean())


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


class _Sampler:
    """Draws weighted RR sets in batches and keeps them as (set id, node) pairs."""

    def __init__(self, graph: ReachGraph, p: float | np.ndarray, w: np.ndarray,
                 rng: np.random.Generator) -> None:
        self.graph, self.rng = graph, rng
        indptr, sources, order = graph.reverse
        arc_p, self.p_max = resolve_probs(graph, p)
        self.rev = (indptr, sources)
        self.arc_p = None if arc_p is None else arc_p[order]
        self.cdf = np.cumsum(w / w.sum())
        self.sets: list[np.ndarray] = []
        self.nodes: list[np.ndarray] = []
        self.count = 0
        self.scratch: kernel.Scratch | None = None

    def grow(self, target: int) -> None:
        n = self.graph.n
        batch = max(1, kernel.RR_BATCH_CELLS // n)
        if self.scratch is None:
            self.scratch = kernel.Scratch.for_cells(batch * n)
        while self.count < target:
            size = min(batch, target - self.count)
            u = self.rng.random(size) * self.cdf[-1]
            roots = np.minimum(np.searchsorted(self.cdf, u, side="right"), n - 1)
            s, v, _ = kernel.cascade(
                self.rev[0], self.rev[1], self.arc_p, self.p_max,
                np.arange(size, dtype=np.int64), roots, n, self.rng, self.scratch,
            )
            self.sets.append((s + self.count).astype(np.int32))
            self.nodes.append(v.astype(np.int32))
            self.count += size

    def greedy(self, k: int, candidates: np.ndarray) -> tuple[list[int], list[float]]:
        """Greedy max coverage over the candidate nodes.

        After each pick the pairs of covered sets are dropped and gains
        recounted from what is left. The first pick usually covers the few
        giant sets that hold most pairs, so later picks scan a small remainder.
        Cost: O(pairs) for the first pick, O(remaining pairs) for each later one.
        """
        n = self.graph.n
        s = np.concatenate(self.sets)
        v = np.concatenate(self.nodes)
        allowed = np.zeros(n, bool)
        allowed[candidates] = True
        covered = np.zeros(self.count, bool)
        picks: list[int] = []
        gains: list[float] = []
        for _ in range(min(k, int(allowed.sum()))):
            gain = np.bincount(v, minlength=n)
            best = int(np.argmax(np.where(allowed, gain, -1)))
            picks.append(best)
            gains.append(float(gain[best]) / self.count)
            allowed[best] = False
            covered[s[v == best]] = True
            keep = ~covered[s]
            s, v = s[keep], v[keep]
        return picks, gains

    def reset(self) -> None:
        self.sets, self.nodes, self.count = [], [], 0


def choose_seeds(
    graph: ReachGraph,
    p: float | np.ndarray,
    k: int,
    *,
    weights: np.ndarray | None = None,
    candidates: Sequence[int] | np.ndarray | None = None,
    eps: float = 0.2,
    ell: float = 1.0,
    seed: Seed = 0,
    max_sets: int = 5_000_000,
) -> SeedChoice:
    """IMM seed selection under independent cascade with per-arc probabilities ``p``.

    ``weights`` (default 1 per node) is what reach is worth at each node, e.g.
    ``equity_weights``; ``candidates`` (default rooms and groups, not people)
    are the nodes allowed as seeds. ``max_sets`` caps memory; if it binds, the
    guarantee no longer holds and ``rr_sets`` shows the cap.
    """
    n = graph.n
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if candidates is None:
        candidates = np.flatnonzero(graph.kind != NODE_KINDS.index("person"))
    cand = np.asarray(candidates, dtype=np.int64)
    k = min(k, cand.size)
    if k <= 0:
        return SeedChoice([], [], 0.0, [], 0, eps, ell)
    total_w = float(w.sum())
    rng = as_rng(seed)
    sampler = _Sampler(graph, p, w, rng)
    log_n = math.log(max(n, 2))
    ell2 = ell * (1 + math.log(2) / log_n)
    log_ck = _log_comb(cand.size, k)
    eps2 = math.sqrt(2) * eps
    lam2 = (2 + 2 * eps2 / 3) * (log_ck + ell2 * log_n + math.log(max(math.log2(n), 1.0)))
    lam2 *= total_w / eps2**2
    lower = float(np.sort(w[cand])[-k:].sum())  # OPT reaches at least its own seeds
    i, last = 1, max(2, int(math.log2(n)))
    while i < last:
        x = total_w / 2**i
        sampler.grow(min(max_sets, math.ceil(lam2 / x)))
        picks, gains = sampler.greedy(k, cand)
        est = total_w * sum(gains)
        if est >= (1 + eps2) * x or sampler.count >= max_sets:
            lower = max(lower, est / (1 + eps2))
            break
        # A round can only pass once x <= est / (1 + eps'), so go straight there:
        # the sets are kept across rounds, so skipping only saves greedy passes, and
        # the failure probability is a union over rounds tried, which skipping shrinks.
        i = max(i + 1, math.ceil(math.log2(total_w * (1 + eps2) / max(est, 1e-12))))
    alpha = math.sqrt(ell2 * log_n + math.log(2))
    beta = math.sqrt((1 - 1 / math.e) * (log_ck + ell2 * log_n + math.log(2)))
    lam_star = 2 * total_w * ((1 - 1 / math.e) * alpha + beta) ** 2 / eps**2
    theta = min(max_sets, math.ceil(lam_star / lower))
    sampler.reset()
    sampler.grow(theta)
    picks, gains = sampler.greedy(k, cand)
    return SeedChoice(
        seeds=picks,
        keys=[graph.keys[i] for i in picks],
        weighted_reach=total_w * sum(gains),
        gains=[total_w * g for g in gains],
        rr_sets=sampler.count,
        eps=eps,
        ell=ell,
    )


def seed_rooms(
    graph: ReachGraph,
    p: float | np.ndarray,
    k: int = 5,
    equity: float = 0.0,
    *,
    seed: Seed = 0,
    eps: float = 0.2,
) -> SeedChoice:
    """`!reach seed`: the k rooms or groups whose posts reach the most members,
    leaning toward deprived areas by ``equity`` (0..1). Rooms with no member
    count known weigh as one member.
    """
    base = np.maximum(graph.members.astype(float), 1.0)
    base[graph.kind == NODE_KINDS.index("person")] = 1.0
    return choose_seeds(graph, p, k, weights=equity_weights(graph, equity, base), eps=eps,
                        seed=seed)
