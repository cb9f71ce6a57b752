"""Small synthetic county networks for the reach model's tests."""

import networkx as nx
import numpy as np
import pytest

from reach.graph import ReachGraph, from_arcs


def villages(seed: int = 0) -> ReachGraph:
    """A market town's dense cluster of groups and five small, poorer villages.

    The town (decile 8) has 60 well-connected groups; each village (deciles 1-5)
    has a small-world cluster of 22-25 groups (the two most deprived are the
    smallest), linked to the town by one tie. Degree-ranked seeding piles into
    the town; good seeding does not, and plain reach prefers bigger villages.
    """
    rng = np.random.default_rng(seed)
    g = nx.Graph()
    town = list(range(60))
    g.add_edges_from(nx.gnp_random_graph(60, 0.25, seed=seed).edges)
    locality, district, decile = ["TOWN"] * 60, ["D1"] * 60, [8] * 60
    start = 60
    for i, size in enumerate([22, 22, 25, 25, 25]):
        nodes = list(range(start, start + size))
        sub = nx.connected_watts_strogatz_graph(size, 6, 0.1, seed=seed + i)
        g.add_edges_from((nodes[u], nodes[v]) for u, v in sub.edges)
        g.add_edge(nodes[0], int(rng.choice(town)))
        locality += [f"V{i + 1}"] * size
        district += ["D2"] * size
        decile += [i + 1] * size
        start += size
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
