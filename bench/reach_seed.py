"""Seeding: IMM (k=10, eps=0.2) on the benchmark graphs, timed, and its seeds' spread
against top-degree and random seeds by Monte Carlo.

    .venv/bin/python -m bench.reach_seed [--sizes 10k,100k] [--k 10] [--eps 0.2]
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.reach_common import P, benchmark_graph, cpu_timed, mean_se, peak_rss_mib
from reach.seeding import choose_seeds
from reach.simulate import independent_cascade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.2)
    args = parser.parse_args()
    print(f"IC p={P}, k={args.k}, eps={args.eps}, ell=1; spread over 1,000 runs")
    print("| graph | IMM wall (CPU) s | RR sets | IMM spread | top-degree spread | random spread |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        _, g, _ = benchmark_graph(size)
        t, cpu, choice = cpu_timed(lambda g=g: choose_seeds(g, P, args.k, eps=args.eps, seed=1))
        top = np.argsort(-np.diff(g.indptr), kind="stable")[: args.k]
        rand = np.random.default_rng(0).choice(g.n, args.k, replace=False)
        spread = [
            mean_se(independent_cascade(g, P, s, runs=1000, seed=3).run_totals)
            for s in (choice.seeds, top, rand)
        ]
        print(f"| {size} | {t:.1f} ({cpu:.1f}) | {choice.rr_sets:,} | {' | '.join(spread)} |",
              flush=True)
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
