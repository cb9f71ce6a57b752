"""Small synthetic county networks for the reach model's tests."""

import networkx as nx
import numpy as np
import pytest

from reach.graph import ReachGraph, from_arcs


def villages(seed: int = 0) -> ReachGraph:
    """A market town's dense cluster of groups and five small, poorer villages.

    The town (decile 8) has 60 well-connected groups; each village (deciles 1-5)
    has 25 groups in a sparse chain-like cluster, linked to the town by one
    tie. Degree-ranked seeding piles into the town; good seeding does not.
    """
    rng = np.random.default_rng(seed)
    g = nx.Graph()
    town = list(range(60))
    g.add_edges_from(nx.gnp_random_graph(60, 0.25, seed=seed).edges)
    locality, district, decile = ["TOWN"] * 60, ["D1"] * 60, [8] * 60
    start = 60
    for i in range(5):
        nodes = list(range(start, start + 25))
        sub = nx.connected_watts_strogatz_graph(25, 4, 0.1, seed=seed + i)
        g.add_edges_from((nodes[u], nodes[v]) for u, v in sub.edges)
        g.add_edge(nodes[0], int(rng.choice(town)))
        locality += [f"V{i + 1}"] * 25
        district += ["D2"] * 25
        decile += [i + 1] * 25
        start += 25
    pairs = np.array(list(g.edges))
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    n = start
    return from_arcs(
        n, src, dst,
        keys=[f"!r{i}" for i in range(n)],
        kind=["group"] * n,
        locality=locality,
        district=district,
        decile=decile,
        members=[20] * n,
    )


@pytest.fixture(scope="session")
def village_graph() -> ReachGraph:
    return villages()
