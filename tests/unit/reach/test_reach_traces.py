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


def test_reach_is_predicted_and_observed_per_locality_and_imd_band() -> None:
    from reach.traces import BANDS, band_of

    g = from_arcs(6, np.array([], np.int64), np.array([], np.int64),
                  keys=[f"!r{i}" for i in range(6)], district=["D1"] * 6,
                  locality=["L1", "L1", "L2", "L2", "L3", None],
                  decile=[1, 1, 5, 5, 9, None])
    pred = predict_traces(g, 0.0, list(g.keys), ["matrix"] * 6, {"matrix": Beta(1e9, 1e-9)},
                          runs=50, seed=1)
    assert {a.area: (a.groups, a.groups_reached.mean) for a in pred.localities} == {
        "L1": (2, 2.0), "L2": (2, 2.0), "L3": (1, 1.0)}
    assert [(a.area, a.groups) for a in pred.bands] == list(zip(BANDS, [2, 2, 1], strict=True))
    assert np.allclose(pred.node_prob, 1.0)
    seen = observed_traces(g, [RoomSignal("!r0", replies=1), RoomSignal("!r4", reactions=1),
                               RoomSignal("!r5", receipts=1)])
    assert seen == {ALL: 3, "D1": 3, "L1": 1, "L3": 1, "IMD 1-3": 1, "IMD 8-10": 1}
    assert [band_of(d) for d in (None, 1, 3, 4, 7, 8, 10)] == [
        None, "IMD 1-3", "IMD 1-3", "IMD 4-7", "IMD 4-7", "IMD 8-10", "IMD 8-10"]


def test_the_recent_line_says_how_often_the_interval_held() -> None:
    from reach.report import RecentCheck, render_recent

    checks = [RecentCheck(9, 2, 6, 4), RecentCheck(8, 2, 6, 7), RecentCheck(7, 0, 3, 0)]
    assert render_recent(checks, 0.9) == (
        "The model's 90% interval held in 2 of the last 3 notice(s) (missed: F8).")
    assert render_recent([], 0.9).startswith("No earlier notices yet")
