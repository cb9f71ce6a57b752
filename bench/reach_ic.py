"""Independent-cascade Monte Carlo: reach.simulate against NDlib and CyNetDiff, one run each.

Same graph, same probability (p=0.05 on every arc), same 1% seeds, so the
three must agree on expected spread; per-simulation times are compared.

    .venv/bin/python -m bench.reach_ic [--sizes 10k,100k]
"""

from __future__ import annotations

import argparse

import numpy as np
from cynetdiff.utils import networkx_to_ic_model
from ndlib.models import ModelConfig as mc
from ndlib.models.epidemics import IndependentCascadesModel

from bench.reach_common import P, benchmark_graph, best_of, mean_se
from reach.simulate import independent_cascade

RUNS = {"10k": (2000, 20), "100k": (300, 3)}  # (fast engines, NDlib)


def ndlib_runs(g, seeds: np.ndarray, runs: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    model = IndependentCascadesModel(g, seed=0)  # it reseeds numpy's global state itself
    cfg = mc.Configuration()
    for e in g.edges:
        cfg.add_edge_configuration("threshold", e, P)
    cfg.add_model_initial_configuration("Infected", seeds.tolist())
    model.set_initial_status(cfg)
    sizes = []
    for _ in range(runs):
        model.reset(infected_nodes=seeds.tolist())  # O(n), as NDlib's own steps are
        while True:
            it = model.iteration()
            if it["iteration"] > 0 and it["node_count"][1] == 0:
                break
        sizes.append(it["node_count"][2])
    return np.array(sizes)


def cynetdiff_runs(model, seeds: list[int], runs: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    model.set_seeds(seeds)
    sizes = np.empty(runs)
    for i in range(runs):
        model.reset_model()
        model.advance_until_completion()
        sizes[i] = model.get_num_activated_nodes()
    return sizes


def bench(size: str) -> list[str]:
    g, rg, seeds = benchmark_graph(size)
    fast, slow = RUNS[size]
    cnd, mapping = networkx_to_ic_model(g, activation_prob=P, rng=1)
    cnd_seeds = [mapping[int(s)] for s in seeds]

    t_ours, ours = best_of(3, lambda: independent_cascade(rg, P, seeds, runs=fast, seed=2))
    t_cnd, cnd_sizes = best_of(3, lambda: cynetdiff_runs(cnd, cnd_seeds, fast))
    t_nd, nd_sizes = best_of(1, lambda: ndlib_runs(g, seeds, slow))
    per = {"reach.simulate": t_ours / fast, "CyNetDiff": t_cnd / fast, "NDlib": t_nd / slow}
    spread = {"reach.simulate": mean_se(ours.run_totals), "CyNetDiff": mean_se(cnd_sizes),
              "NDlib": mean_se(nd_sizes)}
    runs = {"reach.simulate": fast, "CyNetDiff": fast, "NDlib": slow}
    rows = []
    for name in ("NDlib", "CyNetDiff", "reach.simulate"):
        rows.append(
            f"| {size} | {name} | {runs[name]} | {per[name] * 1e3:.3f} | "
            f"{per['NDlib'] / per[name]:.3g}x | {per['CyNetDiff'] / per[name]:.3g}x | "
            f"{spread[name]} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10k,100k")
    args = parser.parse_args()
    print(f"p={P}, 1% seeds, powerlaw_cluster_graph(n, 5, 0.1, seed=42); CPU time, best of 3"
          " for the fast engines")
    print("| graph | engine | runs | CPU ms per run | vs NDlib | vs CyNetDiff | mean spread ± SE |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for row in bench(size):
            print(row, flush=True)


if __name__ == "__main__":
    main()
