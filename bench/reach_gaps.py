"""The whole gaps analysis on the benchmark graphs: structure (constraint, effective size,
Leiden communities, bridging and local-bridge ties), a 200-run prediction from 1% seeds,
and the ranked gaps, with wall time and peak memory.

Localities are synthetic: nodes are dealt into 1,000 localities in blocks of
consecutive ids (powerlaw_cluster_graph attaches new nodes near old ones, so
blocks are loosely clustered), each with a random IMD decile.

    .venv/bin/python -m bench.reach_gaps [--sizes 10k,100k]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from bench.reach_common import P, benchmark_graph, cpu_timed, peak_rss_mib
from reach.gaps import find_gaps
from reach.graph import ReachGraph
from reach.predict import predict
from reach.structure import analyse

LOCALITIES = 1000


def with_areas(g: ReachGraph) -> ReachGraph:
    rng = np.random.default_rng(0)
    locality = (np.arange(g.n) * LOCALITIES // g.n).astype(np.int32)
    decile = rng.integers(1, 11, size=LOCALITIES).astype(np.int8)[locality]
    return dataclasses.replace(
        g,
        locality=locality,
        district=(locality * 6 // LOCALITIES).astype(np.int32),
        decile=decile,
        members=np.full(g.n, 30, dtype=np.int64),
        localities=tuple(f"L{i:04d}" for i in range(LOCALITIES)),
        districts=tuple(f"D{i}" for i in range(6)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10k,100k")
    args = parser.parse_args()
    print("| graph | structure | prediction, 200 runs | gaps | total wall (CPU) "
          "| communities | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        _, g, seeds = benchmark_graph(size)
        g = with_areas(g)
        keys = [g.keys[i] for i in seeds]
        t_s, c_s, s = cpu_timed(lambda g=g: analyse(g, seed=1))
        t_p, c_p, pred = cpu_timed(lambda g=g, keys=keys: predict(g, P, keys, runs=200, seed=1))
        t_g, c_g, gaps = cpu_timed(lambda g=g, s=s, pred=pred: find_gaps(g, s, pred.node_prob))
        print(f"| {size} | {t_s:.1f} s | {t_p:.1f} s | {t_g:.2f} s | {t_s + t_p + t_g:.1f} "
              f"({c_s + c_p + c_g:.1f}) s | {s.n_communities} | {peak_rss_mib():.0f} |", flush=True)
        assert gaps.localities, "a gaps analysis that finds nothing is not measuring anything"


if __name__ == "__main__":
    main()
