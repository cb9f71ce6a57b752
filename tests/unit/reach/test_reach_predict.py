"""Predictions per district and locality, checked against what happened."""

import numpy as np

from reach.evaluate import Observed, RoomSignal, evaluate, observed_by_district
from reach.graph import ReachGraph
from reach.predict import predict


def test_reach_per_district_adds_up_with_intervals(village_graph: ReachGraph) -> None:
    g = village_graph
    pred = predict(g, 0.2, ["!r0", "!r70"], runs=800, seed=2, level=0.9)
    by = {a.area: a for a in pred.districts}
    assert set(by) == {"D1", "D2"}
    assert by["D1"].groups == 60 and by["D1"].members == 60 * 20
    for a in pred.districts:
        g_iv = a.groups_reached
        assert g_iv.lo <= g_iv.mean <= g_iv.hi <= a.groups
        assert np.isclose(a.members_reached.mean, 20 * g_iv.mean)  # 20 members per group
        assert 0 < a.share_groups.mean <= 1
        assert np.isclose(a.share_members.mean, a.share_groups.mean)
    total = np.sum([a.group_samples for a in pred.districts], axis=0)
    assert np.isclose(total.mean(), pred.node_prob.sum())
    assert {a.area for a in pred.localities} == {"TOWN", "V1", "V2", "V3", "V4", "V5"}


def test_linear_threshold_model_is_available_for_predictions(village_graph: ReachGraph) -> None:
    g = village_graph
    indeg = np.bincount(g.indices, minlength=g.n)
    pred = predict(g, 1.0 / indeg[g.indices], ["!r0"], runs=200, seed=0, model="lt")
    assert sum(a.groups_reached.mean for a in pred.districts) > 1


def test_observed_reach_is_counted_per_district_as_a_lower_bound(village_graph: ReachGraph) -> None:
    g = village_graph
    seen = observed_by_district(g, [
        RoomSignal("!r0", receipts=12, replies=2),
        RoomSignal("!r1", reactions=1, forwards=1, replies=1),
        RoomSignal("!r2", link_opens=50),  # capped at the room's 20 members
        RoomSignal("!r70"),  # nothing happened there
        RoomSignal("!unknown", receipts=3),
    ])
    assert seen == {"D1": Observed(groups=3, members=12 + 3 + 20)}


def test_a_calibrated_model_covers_what_it_simulated(village_graph: ReachGraph) -> None:
    g = village_graph
    pred = predict(g, 0.2, ["!r0", "!r70"], runs=1000, seed=3, level=0.9)
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(40):  # "observed" outcomes drawn from the model itself
        draw = int(rng.integers(1000))
        observed = {a.area: Observed(int(a.group_samples[draw]), 0) for a in pred.districts}
        ev = evaluate(pred.districts, observed, measure="groups", level=0.9)
        hits.append(ev.coverage[0.95])
    assert np.mean(hits) > 0.85


def test_a_model_that_overpredicts_shows_negative_bias_and_misses(
    village_graph: ReachGraph,
) -> None:
    g = village_graph
    pred = predict(g, 0.3, ["!r0", "!r70"], runs=300, seed=3)
    ev = evaluate(pred.districts, {"D1": Observed(1, 0)}, measure="groups")
    assert ev.bias < -1 and ev.mean_abs_log_error > 1
    assert ev.coverage[0.5] == ev.coverage[0.8] == 0.0
    assert not any(r.inside for r in ev.rows)
    assert np.isnan(ev.spearman)  # two districts are too few to rank
