"""Shared set-up for the reach benchmarks: the graphs of issue 8 and simple timers."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import TypeVar

import networkx as nx
import numpy as np

from reach.graph import ReachGraph, from_networkx

T = TypeVar("T")

# (nodes, edges added per node): about 50,000 and 500,000 edges.
SIZES = {"10k": (10_000, 5), "100k": (100_000, 5)}
P = 0.05


def benchmark_graph(size: str) -> tuple[nx.Graph, ReachGraph, np.ndarray]:
    """powerlaw_cluster_graph(n, 5, 0.1, seed=42) both as networkx and ReachGraph, 1% seeds."""
    n, m = SIZES[size]
    g = nx.powerlaw_cluster_graph(n, m, 0.1, seed=42)
    seeds = np.random.default_rng(1).choice(n, n // 100, replace=False)
    return g, from_networkx(g), seeds


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def cpu_timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """(wall, CPU) seconds: on a shared machine CPU time is the steadier of the two."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def best_of(repeats: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Least CPU time of several timings: the machine is shared, and CPU time (all engines
    here are single-threaded) leaves out the time spent waiting for a core."""
    results = [cpu_timed(fn) for _ in range(repeats)]
    return min(cpu for _, cpu, _ in results), results[-1][2]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mean_se(x: np.ndarray) -> str:
    x = np.asarray(x, dtype=float)
    se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return f"{x.mean():.1f} ± {se:.1f}"
