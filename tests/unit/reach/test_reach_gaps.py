"""Gaps: a notice posted in the town leaves the villages out, most deprived named first."""

import numpy as np

from reach.gaps import AreaInfo, find_gaps
from reach.graph import ReachGraph
from reach.predict import predict
from reach.structure import analyse


def test_low_reach_localities_are_ranked_by_deprivation(village_graph: ReachGraph) -> None:
    g = village_graph
    pred = predict(g, 0.2, ["!r0"], runs=500, seed=1)
    gaps = find_gaps(g, analyse(g, seed=1), pred.node_prob, below=0.2,
                     areas={"EMPTY": AreaInfo("D2", 3)})
    names = [r.locality for r in gaps.localities]
    assert "TOWN" not in names
    assert names == ["V1", "V2", "EMPTY", "V3", "V4", "V5"]
    empty = gaps.localities[2]
    assert (empty.groups, empty.predicted_reach, empty.decile) == (0, 0.0, 3)
    assert all(r.predicted_reach <= 0.2 for r in gaps.localities)


def test_default_threshold_is_the_lower_quartile_of_localities(village_graph: ReachGraph) -> None:
    g = village_graph
    reach = np.where(g.decile == 8, 0.9, 0.1)
    reach[g.decile == 5] = 0.5
    gaps = find_gaps(g, analyse(g), reach)
    assert np.isclose(gaps.threshold, 0.1)
    assert [r.locality for r in gaps.localities] == ["V1", "V2", "V3", "V4"]


def test_closed_in_groups_and_weak_communities_are_reported(village_graph: ReachGraph) -> None:
    g = village_graph
    s = analyse(g, seed=1)
    reach = np.where(g.decile == 8, 0.9, 0.05)
    gaps = find_gaps(g, s, reach, below=0.2)
    assert gaps.groups and all(grp.bridging_ties == 0 for grp in gaps.groups)
    assert gaps.groups[0].decile == 1
    weakest = gaps.communities[0]
    assert weakest.predicted_reach < 0.1 and weakest.deprived_share > 0
    town = [c for c in gaps.communities if c.predicted_reach > 0.5]
    assert town and weakest.broker in g.index
