"""Brokerage measures agree with networkx's definitions; communities and bridges are found."""

from typing import Literal

import networkx as nx
import numpy as np
import pytest
from networkx.algorithms.structuralholes import normalized_mutual_weight as nmw

from reach.graph import from_arcs, from_networkx
from reach.structure import analyse


def test_constraint_and_effective_size_match_networkx_on_the_karate_club() -> None:
    club = nx.karate_club_graph()
    s = analyse(from_networkx(club))
    theirs_c, theirs_e = nx.constraint(club), nx.effective_size(club)
    assert np.allclose(s.constraint, [theirs_c[v] for v in club])
    assert np.allclose(s.effective_size, [theirs_e[v] for v in club])
    assert np.allclose(s.efficiency, s.effective_size / np.array([club.degree(v) for v in club]))


def test_weighted_directed_ties_follow_burts_definitions() -> None:
    d = nx.gnp_random_graph(30, 0.15, seed=2, directed=True)
    rng = np.random.default_rng(0)
    for u, v in d.edges:
        d[u][v]["weight"] = float(rng.integers(1, 5))
    pairs = np.array(list(d.edges))
    weights = np.array([d[u][v]["weight"] for u, v in d.edges])
    s = analyse(from_arcs(30, pairs[:, 0], pairs[:, 1], arc_weight=weights), weighted=True)
    constraint = nx.constraint(d, weight="weight")
    assert np.allclose(s.constraint, [constraint[v] for v in range(30)], equal_nan=True)
    # Burt's effective size, term by term (networkx's all-nodes sparse path disagrees with
    # its own per-node path on weighted digraphs, and the per-node path gives nan to nodes
    # without out-arcs, so the definition itself is the oracle here).
    for u in range(30):
        ties = set(nx.all_neighbors(d, u))
        expected = sum(
            1 - sum(nmw(d, u, w, weight="weight") * nmw(d, v, w, norm=max, weight="weight")
                    for w in ties)
            for v in ties
        )
        assert np.isclose(s.effective_size[u], expected) if ties else np.isnan(
            s.effective_size[u])


def test_a_triad_has_constraint_1_125_and_an_isolated_node_has_none() -> None:
    g = nx.complete_graph(3)
    g.add_node(3)
    s = analyse(from_networkx(g))
    assert np.allclose(s.constraint[:3], 1.125)
    assert np.isnan(s.constraint[3]) and np.isnan(s.effective_size[3])


@pytest.mark.parametrize("method", ["leiden", "louvain"])
def test_two_cliques_joined_by_one_tie_split_into_communities_with_one_bridge(
    method: Literal["leiden", "louvain"],
) -> None:
    g = nx.barbell_graph(6, 0)  # nodes 0-5 and 6-11, tie 5-6
    s = analyse(from_networkx(g), seed=3, method=method)
    assert s.n_communities == 2
    assert len(set(s.community[:6])) == 1 and s.community[0] != s.community[11]
    bridges = {tuple(e) for e in s.edges[s.bridging].tolist()}
    local = {tuple(e) for e in s.edges[s.local_bridge].tolist()}
    assert bridges == local == {(5, 6)}
    assert s.bridging_ties()[[5, 6]].tolist() == [1, 1]
    assert s.bridging_ties().sum() == 2
    assert s.effective_size[5] > s.effective_size[0]  # the broker has more non-redundant ties


def test_communities_are_reproducible_with_a_seed() -> None:
    g = from_networkx(nx.powerlaw_cluster_graph(400, 3, 0.2, seed=1))
    assert np.array_equal(analyse(g, seed=5).community, analyse(g, seed=5).community)
