"""Calibration recovers known probabilities and falls back on the prior when data is thin."""

import networkx as nx
import numpy as np

from reach.calibrate import BetaPrior, beta_binomial_shrink, fit_ic, kind_probabilities
from reach.graph import ARC_KINDS, ReachGraph, from_arcs
from reach.simulate import cascade_times

TRUTH = {"member": 0.08, "reply": 0.25, "forward": 0.15}


def known_graph() -> ReachGraph:
    g = nx.gnm_random_graph(300, 1200, seed=3, directed=True)
    pairs = np.array(list(g.edges))
    kinds = np.random.default_rng(0).integers(0, 3, size=len(pairs))
    return from_arcs(300, pairs[:, 0], pairs[:, 1], arc_kind=kinds)


def test_recovers_the_probabilities_cascades_were_simulated_with() -> None:
    g = known_graph()
    p = kind_probabilities(g, TRUTH)
    rng = np.random.default_rng(1)
    seed_sets = [rng.choice(g.n, 2, replace=False).tolist() for _ in range(1500)]
    cascades = cascade_times(g, p, seed_sets, seed=2)
    fit = fit_ic(g, cascades)
    for kind, value in TRUTH.items():
        assert abs(fit.kind_prob[kind] - value) < 0.02, kind
    assert fit.converged
    assert fit.kind_trials["offline"] == 0
    assert fit.kind_prob["offline"] == 0.05  # no evidence: the prior's mode


def test_a_handful_of_cascades_gives_values_near_the_prior_not_zero_or_one() -> None:
    g = known_graph()
    cascades = cascade_times(g, kind_probabilities(g, TRUTH), [[0], [1], [2]], seed=4)
    fit = fit_ic(g, cascades, prior=BetaPrior(2, 20))
    assert all(0.01 < v < 0.4 for v in fit.kind_prob.values())
    assert np.all((fit.arc_prob > 0) & (fit.arc_prob < 1))


def test_shared_credit_when_two_parents_could_have_passed_it_on() -> None:
    # a and b both reached at step 0, c at step 1: each parent gets part of the credit.
    g = from_arcs(3, np.array([0, 1]), np.array([2, 2]), arc_kind=np.array([1, 1]))
    fit = fit_ic(g, [{0: 0, 1: 0, 2: 1}] * 50 + [{0: 0, 1: 0}] * 50,
                 prior=BetaPrior(1, 1))
    # MLE: P(c) = 1 - (1-k)^2 = 0.5  =>  k = 1 - sqrt(0.5)
    assert abs(fit.kind_prob["reply"] - (1 - np.sqrt(0.5))) < 1e-3
    assert fit.kind_trials["reply"] == 200


def test_sparse_arcs_are_pulled_toward_their_kind() -> None:
    g = from_arcs(3, np.array([0, 0]), np.array([1, 2]), arc_kind=np.array([2, 2]))
    cascades = [{0: 0, 1: 1}] * 40 + [{0: 0}] * 160
    fit = fit_ic(g, cascades, arc_strength=20)
    pos = {int(v): i for i, v in enumerate(g.indices)}
    assert fit.arc_prob[pos[1]] > fit.kind_prob["forward"] > fit.arc_prob[pos[2]]
    assert ARC_KINDS[g.arc_kind[0]] == "forward"


def test_beta_binomial_shrinks_small_samples_to_the_pooled_rate() -> None:
    rng = np.random.default_rng(0)
    trials = np.concatenate([np.full(50, 200), [2]])
    true = rng.beta(4, 36, size=51)
    successes = rng.binomial(trials, true)
    successes[-1] = 2  # 2 of 2: a raw rate of 100%
    rates, a, b = beta_binomial_shrink(successes, trials)
    assert 0.05 < a / (a + b) < 0.15
    assert 5 < a + b < 400  # the true spread between units is Beta(4, 36)
    assert rates[-1] < 0.3
    raw = successes[:50] / 200
    assert np.corrcoef(rates[:50], raw)[0, 1] > 0.99  # well-measured units keep their order
    assert np.max(np.abs(rates[:50] - raw)) < 0.06
