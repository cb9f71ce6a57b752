"""Seeding picks rooms that beat the obvious choices, and equity moves reach to deprived places."""

from collections.abc import Sequence

import numpy as np

from reach.graph import ReachGraph
from reach.seeding import GUARANTEE, choose_seeds, equity_weights, need, seed_rooms
from reach.simulate import independent_cascade

P = 0.3


def spread(g: ReachGraph, seeds: Sequence[int] | np.ndarray,
           weights: np.ndarray | None = None) -> float:
    res = independent_cascade(g, P, seeds, runs=3000, seed=11)
    w = np.ones(g.n) if weights is None else weights
    return float(res.node_prob @ w)


def test_chosen_rooms_reach_more_than_the_best_connected_or_random_ones(
    village_graph: ReachGraph,
) -> None:
    g = village_graph
    choice = choose_seeds(g, P, 3, eps=0.2, seed=1)
    top_degree = np.argsort(-np.diff(g.indptr), kind="stable")[:3]
    rng = np.random.default_rng(0)
    random = np.mean([spread(g, rng.choice(g.n, 3, replace=False)) for _ in range(10)])
    ours = spread(g, choice.seeds)
    assert ours > 1.15 * spread(g, top_degree)
    assert ours > 1.15 * random
    assert abs(choice.weighted_reach - ours) < 0.1 * ours  # RIS estimate is unbiased
    assert choice.keys == [g.keys[i] for i in choice.seeds]
    assert "1 - 1/e - eps" in choice.guarantee == GUARANTEE


def test_equity_lifts_reach_in_the_most_deprived_localities(village_graph: ReachGraph) -> None:
    g = village_graph
    plain = choose_seeds(g, P, 3, eps=0.2, seed=1, weights=equity_weights(g, 0.0))
    fair = choose_seeds(g, P, 3, eps=0.2, seed=1, weights=equity_weights(g, 1.0))
    deprived = (g.decile > 0) & (g.decile <= 2)
    assert spread(g, fair.seeds, deprived) > 1.3 * spread(g, plain.seeds, deprived)


def test_need_and_equity_weights_follow_the_deprivation_decile(village_graph: ReachGraph) -> None:
    g = village_graph
    nd = need(g)
    assert nd[g.decile == 1][0] == 1.0 and nd[g.decile == 8][0] == 0.3
    assert np.allclose(equity_weights(g, 0.0), 1.0)
    w = equity_weights(g, 1.0)
    assert np.isclose(w[g.decile == 1][0] / w[g.decile == 8][0], 1.0 / 0.3)


def test_only_candidate_rooms_are_picked_and_k_zero_picks_nothing(
    village_graph: ReachGraph,
) -> None:
    g = village_graph
    allowed = np.arange(60, g.n)
    choice = choose_seeds(g, P, 3, candidates=allowed, seed=0)
    assert set(choice.seeds) <= set(allowed.tolist()) and len(choice.seeds) == 3
    assert choose_seeds(g, P, 0).seeds == []


def test_seed_command_weighs_rooms_by_members_and_equity(village_graph: ReachGraph) -> None:
    g = village_graph
    plain = seed_rooms(g, P, 3, 0.0, seed=1)
    fair = seed_rooms(g, P, 3, 1.0, seed=1)
    assert plain.weighted_reach > 20 * 3  # 20 members a room: at least the seeds' own
    deprived = (g.decile > 0) & (g.decile <= 2)
    assert spread(g, fair.seeds, deprived) > spread(g, plain.seeds, deprived)
