"""Batched frontier kernel shared by forward simulation and reverse-reachable sets.

Many independent runs advance together as (run, node) pairs, so the Python
overhead of one step is paid once per batch, not once per run. Per-arc coin
flips use geometric skipping: only the successful arcs out of the frontier are
generated (gaps between successes are Geometric(p_max)), then thinned to each
arc's own probability. A step therefore costs O(F + p_max * A) for F frontier
pairs and A arcs out of them, instead of O(A); with p_max above ~0.3 it falls
back to one uniform per arc.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_DIRECT_ABOVE = 0.3  # above this p, one uniform per arc is cheaper than skipping
# run x node cells per batch: 2 MiB of visited flags stay in cache. Measured (CPU time
# per run, 10k and 100k nodes) best at 2^21, 10-20% ahead of 2^20 and 2^23.
BATCH_CELLS = 1 << 21
# Hash slots for removing duplicates within a step (1 MiB): a dense run x node
# table of marks was 45% of the time of reverse-reachable sampling at 2^24 cells.
MARK_SLOTS = 1 << 18
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, for Fibonacci hashing
# Reverse-reachable sets are many and often tiny, so per-batch overhead
# dominates and bigger batches pay: 2^25 cells took 20% less CPU than 2^24
# and as little as 2^26 and 2^27 (100k nodes, p=0.05).
RR_BATCH_CELLS = 1 << 25


@dataclass
class Scratch:
    """Reusable per-batch buffers: a visited flag per run x node cell (reset sparsely
    after each batch) and a small hash table for removing duplicates within a step."""

    visited: np.ndarray
    mark: np.ndarray

    @classmethod
    def for_cells(cls, cells: int) -> Scratch:
        return cls(np.zeros(cells, dtype=bool), np.zeros(MARK_SLOTS, dtype=np.int32))


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # activated (run, node, step)
KernelFn = Callable[[np.ndarray, np.ndarray, int, "Scratch"], Pairs]


def success_positions(rng: np.random.Generator, total: int, p: float) -> np.ndarray:
    """Indices of successes among ``total`` Bernoulli(p) trials. Cost: O(p * total)."""
    if total == 0 or p <= 0.0:
        return np.zeros(0, dtype=np.int64)
    if p >= _DIRECT_ABOVE:
        return np.flatnonzero(rng.random(total) < p)
    expected = total * p
    size = int(expected + 5.0 * np.sqrt(expected) + 16)
    pos = np.cumsum(_geometric(rng, p, size)) - 1
    while pos[-1] < total:
        more = np.cumsum(_geometric(rng, p, size)) + pos[-1]
        pos = np.concatenate([pos, more])
    return pos[: np.searchsorted(pos, total)]


def _geometric(rng: np.random.Generator, p: float, size: int) -> np.ndarray:
    """Geometric(p) on 1, 2, ... as 1 + floor(E / -log(1-p)): exact, and ~3x faster
    than ``Generator.geometric`` because exponentials come from the ziggurat."""
    scale = -1.0 / np.log1p(-p)
    return (rng.standard_exponential(size) * scale).astype(np.int64) + 1


def ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[i], stops[i]) without a Python loop. Cost: O(total)."""
    lengths = stops - starts
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if ends.size else 0
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)


def first_occurrence(mark: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Mask keeping one copy of each repeated id, without sorting. Cost: O(len(flat)).

    Each id scatters its position into a hash slot (Fibonacci hashing into
    ``mark``, small enough to stay in cache); whichever copy the scatter writes
    last wins the slot, so exactly one copy of an id survives whatever order
    numpy uses. Distinct ids that merely share a slot are kept, with any copies
    among them removed by sorting that (rare) remainder.
    """
    slots = mark.size
    if 2 * flat.size > slots:  # too crowded for the table
        keep = np.zeros(flat.size, dtype=bool)
        keep[np.unique(flat, return_index=True)[1]] = True
        return keep
    shift = np.uint64(64 - (slots.bit_length() - 1))
    h = ((flat.astype(np.uint64) * _GOLDEN) >> shift).astype(np.intp)
    pos = np.arange(flat.size, dtype=np.int32)
    mark[h] = pos
    winner = mark[h]
    keep = winner == pos
    clash = np.flatnonzero(~keep & (flat[winner] != flat))
    if clash.size:
        keep[clash[np.unique(flat[clash], return_index=True)[1]]] = True
    return keep


def _out_arcs(indptr: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             int]:
    """First arc, out-degree and running arc count of each frontier node, and the total."""
    start = indptr[node]
    deg = indptr[node + 1] - start
    ends = np.cumsum(deg)
    return start, deg, ends, int(ends[-1]) if ends.size else 0


def _seed(run: np.ndarray, node: np.ndarray, n: int, scratch: Scratch) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Distinct seed pairs as (flat id run * n + node, node), marked visited."""
    flat = run.astype(np.int64) * n + node
    keep = first_occurrence(scratch.mark, flat)
    scratch.visited[flat[keep]] = True
    return flat[keep], node[keep].astype(np.int64)


Advance = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _spread(run: np.ndarray, node: np.ndarray, n: int, scratch: Scratch,
            advance: Advance) -> Pairs:
    """Step ``advance`` from the seed pairs until no new pair is reached.

    Pairs travel as (flat id, node) so a step never divides; ``advance`` maps
    this step's new pairs to the next step's, which it must have marked in
    ``scratch.visited``. The flags are cleared at the end so the scratch can
    serve the next batch.
    """
    flat, node = _seed(run, node, n, scratch)
    flats, nodes, steps = [flat], [node], [np.zeros(flat.size, np.int32)]
    step = 0
    while flat.size:
        step += 1
        flat, node = advance(flat, node)
        flats.append(flat)
        nodes.append(node)
        steps.append(np.full(flat.size, step, np.int32))
    flat_all, node_all = np.concatenate(flats), np.concatenate(nodes)
    scratch.visited[flat_all] = False
    return (flat_all - node_all) // n, node_all, np.concatenate(steps)


def cascade(
    indptr: np.ndarray,
    indices: np.ndarray,
    arc_p: np.ndarray | None,
    p_max: float,
    run: np.ndarray,
    node: np.ndarray,
    n: int,
    rng: np.random.Generator,
    scratch: Scratch,
) -> Pairs:
    """Independent cascade from seed pairs (run, node) for a batch of runs.

    ``arc_p`` None means every arc has probability ``p_max``. Returns the
    activated (run, node, step) triples, seeds at step 0. ``scratch`` must have
    at least (max run + 1) * n cells and is left clean. Cost: O(sum over runs of
    activated nodes + p_max * arcs out of them) expected.
    """
    visited = scratch.visited
    targets = indices.astype(np.int64)  # once, not per step
    none = np.zeros(0, np.int64)

    def advance(flat: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start, deg, ends, total = _out_arcs(indptr, node)
        pos = success_positions(rng, total, p_max)
        if pos.size == 0:
            return none, none
        j = np.searchsorted(ends, pos, side="right")
        arc = (start - ends + deg)[j] + pos  # arc = start of node j + offset within it
        if arc_p is not None:
            ok = rng.random(arc.size) * p_max < arc_p[arc]
            arc, j = arc[ok], j[ok]
        target = targets[arc]
        new = (flat - node)[j] + target  # same run, new node
        fresh = ~visited[new]
        new, target = new[fresh], target[fresh]
        once = first_occurrence(scratch.mark, new)
        new, target = new[once], target[once]
        visited[new] = True
        return new, target

    return _spread(run, node, n, scratch, advance)


def threshold(
    indptr: np.ndarray,
    indices: np.ndarray,
    arc_w: np.ndarray,
    run: np.ndarray,
    node: np.ndarray,
    n: int,
    n_runs: int,
    rng: np.random.Generator,
    scratch: Scratch,
) -> Pairs:
    """Linear threshold (Kempe et al. 2003) from seed pairs for a batch of runs.

    Each node draws a uniform threshold per run; it activates once the weights
    of its active in-neighbours reach it. Cost: O(n_runs * n) to draw the
    thresholds plus O(arcs out of activated nodes) for the spread.
    """
    cells = n_runs * n
    theta = rng.random(cells, dtype=np.float32)
    acc = np.zeros(cells, dtype=np.float32)
    visited = scratch.visited

    def advance(flat: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start, deg, _, _ = _out_arcs(indptr, node)
        arc = ranges(start, start + deg)
        target = indices[arc].astype(np.int64)
        new = np.repeat(flat - node, deg) + target
        fresh = ~visited[new]
        new, arc, target = new[fresh], arc[fresh], target[fresh]
        np.add.at(acc, new, arc_w[arc].astype(np.float32))
        once = first_occurrence(scratch.mark, new)
        new, target = new[once], target[once]
        crossed = acc[new] >= theta[new]
        new, target = new[crossed], target[crossed]
        visited[new] = True
        return new, target

    return _spread(run, node, n, scratch, advance)
