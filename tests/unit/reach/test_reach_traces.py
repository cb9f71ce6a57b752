"""Rooms reached with a trace: Beta trace rates per network, intervals with both uncertainties."""

import numpy as np

from reach.evaluate import RoomSignal
from reach.graph import ReachGraph, from_arcs
from reach.traces import ALL, Beta, fit_rates, observed_traces, predict_traces

N = 40


def rooms_only(n: int = N) -> ReachGraph:
    """n rooms, no ties: a notice reaches exactly the rooms it is posted in. Half are in D1."""
    return from_arcs(n, np.array([], np.int64), np.array([], np.int64),
                     keys=[f"!r{i}" for i in range(n)],
                     district=["D1" if i < n // 2 else "D2" for i in range(n)])


def test_rates_are_beta_posteriors_per_network_with_a_low_prior_for_bridges() -> None:
    rates = fit_rates([("matrix", True), ("matrix", False), ("matrix", True), ("irc", False)],
                      ["whatsapp"])
    assert rates["matrix"] == Beta(3.0, 2.0)
    assert rates["irc"] == Beta(1.0, 4.0)
    assert rates["whatsapp"].mean < 0.5  # no history: bridged rooms rarely leave traces


def test_an_uncertain_outcome_gets_an_interval_and_a_certain_one_a_point() -> None:
    g = rooms_only()
    seeds = list(g.keys)
    nets = ["matrix"] * N
    unsure = predict_traces(g, 0.0, seeds, nets, {"matrix": Beta(3, 3)}, runs=400, seed=1)
    assert unsure.total.groups_reached.lo < unsure.total.groups_reached.hi
    sure = predict_traces(g, 0.0, seeds, nets, {"matrix": Beta(1e9, 1e-9)}, runs=400, seed=1)
    iv = sure.total.groups_reached
    assert iv.lo == iv.hi == N
    assert {a.area: a.groups for a in sure.districts} == {"D1": N // 2, "D2": N // 2}


def test_parameter_uncertainty_widens_the_interval_beyond_monte_carlo() -> None:
    g = rooms_only()
    nets = ["matrix"] * N
    few = predict_traces(g, 0.0, list(g.keys), nets, {"matrix": Beta(3, 3)}, runs=2000, seed=2)
    many = predict_traces(g, 0.0, list(g.keys), nets, {"matrix": Beta(3000, 3000)}, runs=2000,
                          seed=2)
    width = [p.total.groups_reached.hi - p.total.groups_reached.lo for p in (few, many)]
    assert abs(few.total.groups_reached.mean - many.total.groups_reached.mean) < 1.5
    assert width[0] > 1.5 * width[1]


def test_intervals_cover_what_a_known_process_does_at_about_their_rate() -> None:
    """Rooms leave traces at 0.4 (Matrix) and 0.1 (bridged): fitted from 200 past rooms,
    the 90% interval for a fresh notice covers the observed count in ~90% of trials."""
    rng = np.random.default_rng(5)
    true = {"matrix": 0.4, "irc": 0.1}
    g = rooms_only()
    nets = ["matrix" if i % 3 else "irc" for i in range(N)]
    inside = 0
    trials = 60
    for t in range(trials):
        past = [(n, bool(rng.random() < true[n])) for n in rng.choice(list(true), 200)]
        pred = predict_traces(g, 0.0, list(g.keys), nets, fit_rates(past), runs=500, seed=t)
        traced = [RoomSignal(k, replies=1) for k, n in zip(g.keys, nets, strict=True)
                  if rng.random() < true[n]]
        seen = observed_traces(g, traced)
        iv = pred.total.groups_reached
        inside += int(iv.lo <= seen.get(ALL, 0) <= iv.hi)
    assert 0.8 * trials <= inside <= trials


def test_observed_counts_rooms_with_any_trace_per_district_and_in_all() -> None:
    g = rooms_only()
    seen = observed_traces(g, [RoomSignal("!r0", receipts=3), RoomSignal("!r1"),
                               RoomSignal("!r30", link_opens=1), RoomSignal("!unknown", replies=1)])
    assert seen == {ALL: 2, "D1": 1, "D2": 1}
