"""The simulator agrees with NDlib and with exact answers, and is reproducible."""

import networkx as nx
import numpy as np
from ndlib.models import ModelConfig as mc
from ndlib.models.epidemics import IndependentCascadesModel

from reach.graph import from_arcs, from_networkx
from reach.simulate import (
    independent_cascade,
    linear_threshold,
    summarise,
    uniform_lt_weights,
)


def ndlib_spread(g: nx.DiGraph, probs: dict, seeds: list[int], runs: int) -> np.ndarray:
    # NDlib draws from numpy's global state, which its constructor (re)seeds.
    model = IndependentCascadesModel(g, seed=7)
    cfg = mc.Configuration()
    for e, p in probs.items():
        cfg.add_edge_configuration("threshold", e, p)
    cfg.add_model_initial_configuration("Infected", seeds)
    model.set_initial_status(cfg)
    sizes = []
    for _ in range(runs):
        model.reset(infected_nodes=seeds)
        while True:
            it = model.iteration()
            if it["node_count"][1] == 0 and it["iteration"] > 0:
                break
        sizes.append(it["node_count"][2])
    return np.array(sizes, dtype=float)


def test_expected_spread_matches_ndlib_on_the_same_graph_and_probabilities() -> None:
    g = nx.gnp_random_graph(60, 0.08, seed=4, directed=True)
    rng = np.random.default_rng(4)
    probs = {e: float(rng.uniform(0.05, 0.45)) for e in g.edges}
    seeds = [0, 1, 2]
    theirs = ndlib_spread(g, probs, seeds, runs=300)

    ours_graph = from_networkx(g)
    arc_p = np.zeros(ours_graph.m)
    for (u, v), p in probs.items():
        lo, hi = ours_graph.indptr[u], ours_graph.indptr[u + 1]
        arc_p[lo + int(np.flatnonzero(ours_graph.indices[lo:hi] == v)[0])] = p
    ours = independent_cascade(ours_graph, arc_p, seeds, runs=5000, seed=1).run_totals

    se = np.sqrt(theirs.var(ddof=1) / theirs.size + ours.var(ddof=1) / ours.size)
    assert abs(theirs.mean() - ours.mean()) < 3.5 * se
    assert theirs.mean() > len(seeds) + 1  # the cascade really spreads


def test_uniform_probability_matches_the_ndlib_figure_on_the_benchmark_graph() -> None:
    # notes/reach.md: 100 seeds, p=0.05 on powerlaw_cluster_graph(10000, 5, 0.1, seed=42)
    # gave 708-710 nodes on average over 2,000 runs (SE about 2.7) in four engines.
    g = from_networkx(nx.powerlaw_cluster_graph(10_000, 5, 0.1, seed=42))
    seeds = np.random.default_rng(1).choice(g.n, 100, replace=False)
    run = independent_cascade(g, 0.05, seeds, runs=2000, seed=3)
    assert 690 < run.run_totals.mean() < 730


def test_same_seed_same_answer_and_different_seed_different_runs() -> None:
    g = from_networkx(nx.karate_club_graph())
    a = independent_cascade(g, 0.2, [0], runs=200, seed=9)
    b = independent_cascade(g, 0.2, [0], runs=200, seed=9)
    c = independent_cascade(g, 0.2, [0], runs=200, seed=10)
    assert np.array_equal(a.run_totals, b.run_totals)
    assert np.array_equal(a.node_prob, b.node_prob)
    assert not np.array_equal(a.run_totals, c.run_totals)


def test_seeds_are_always_reached_and_probability_one_reaches_the_component() -> None:
    g = from_networkx(nx.path_graph(6))
    certain = independent_cascade(g, 1.0, [2], runs=10, seed=0)
    assert np.all(certain.run_totals == 6)
    never = independent_cascade(g, 0.0, [2, 2], runs=10, seed=0)
    assert np.all(never.run_totals == 1)
    assert never.node_prob[2] == 1.0


def test_linear_threshold_matches_the_exact_expectation_on_a_small_graph() -> None:
    # a -> b (0.5), b -> c (0.4), a -> d (0.3), x -> d (0.5), b -> e (0.6); seeds a, x.
    # P(b)=0.5, P(c)=0.5*0.4, P(d)=0.8 (both seeds), P(e)=0.5*0.6.
    a, b, c, d, e, x = range(6)
    src = np.array([a, b, a, x, b])
    dst = np.array([b, c, d, d, e])
    w_by_arc = {(a, b): 0.5, (b, c): 0.4, (a, d): 0.3, (x, d): 0.5, (b, e): 0.6}
    g = from_arcs(6, src, dst)
    w = np.array([w_by_arc[(int(u), int(v))] for u, v in zip(g.sources, g.indices, strict=True)])
    res = linear_threshold(g, w, [a, x], runs=40_000, seed=2)
    exact = np.array([1, 0.5, 0.2, 0.8, 0.3, 1])
    assert np.allclose(res.node_prob, exact, atol=0.015)
    assert abs(res.run_totals.mean() - exact.sum()) < 4 * summarise(res.run_totals).se


def test_linear_threshold_with_kempe_weights_spreads_less_than_everyone() -> None:
    g = from_networkx(nx.karate_club_graph())
    res = linear_threshold(g, uniform_lt_weights(g), [0, 33], runs=500, seed=0)
    assert 2 < res.run_totals.mean() < g.n


def test_per_run_tallies_give_intervals_per_group_of_nodes() -> None:
    g = from_networkx(nx.path_graph(4))
    halves = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    res = independent_cascade(g, 0.5, [0], runs=4000, seed=5, tally=halves)
    assert res.run_tallies is not None
    first, second = res.run_tallies[:, 0], res.run_tallies[:, 1]
    assert np.array_equal(first + second, res.run_totals)
    assert abs(first.mean() - 1.5) < 0.05  # node 0, plus node 1 half the time
    assert abs(second.mean() - (0.25 + 0.125)) < 0.05
    iv = summarise(second, level=0.9)
    assert iv.lo <= iv.mean <= iv.hi
