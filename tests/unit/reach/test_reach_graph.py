"""The reach graph is built from directory and flow records, never from message text."""

import numpy as np

from reach.graph import (
    ARC_KINDS,
    FlowTie,
    Membership,
    OfflineTie,
    ReachGraph,
    RoomNode,
    build_graph,
    hub_ties,
)

ROOMS = [
    RoomNode("!food", "group", "E04001", "E07000010", 2, 40),
    RoomNode("!youth", "group", "E04001", "E07000010", 2, 25),
    RoomNode("!parish", "room", "E04001", "E07000010", 2, 12),
    RoomNode("!choir", "group", "E04002", "E07000011", 9, 30),
]


def arcs(g: ReachGraph) -> set[tuple[str, str, str, float]]:
    return {
        (g.keys[u], g.keys[v], ARC_KINDS[k], w)
        for u, v, k, w in zip(g.sources, g.indices, g.arc_kind, g.arc_weight, strict=True)
    }


def test_rooms_sharing_members_are_tied_both_ways_weighted_by_how_many() -> None:
    members = [Membership("!food", "k1"), Membership("!food", "k2"), Membership("!youth", "k1"),
               Membership("!youth", "k2"), Membership("!choir", "k3")]
    g = build_graph(ROOMS, members)
    assert arcs(g) == {("!food", "!youth", "member", 2.0), ("!youth", "!food", "member", 2.0)}


def test_replies_and_forwards_run_the_way_notices_moved_and_offline_ties_both_ways() -> None:
    g = build_graph(
        ROOMS,
        flows=[FlowTie("!food", "!choir", "forward", 3), FlowTie("!gone", "!food", "reply")],
        offline=[OfflineTie("!parish", "!youth")],
    )
    assert arcs(g) == {
        ("!food", "!choir", "forward", 3.0),
        ("!parish", "!youth", "offline", 1.0),
        ("!youth", "!parish", "offline", 1.0),
    }


def test_area_facts_are_kept_as_codes_per_node() -> None:
    g = build_graph(ROOMS)
    assert g.districts == ("E07000010", "E07000011")
    assert g.districts[g.district[g.index["!choir"]]] == "E07000011"
    assert g.localities[g.locality[g.index["!youth"]]] == "E04001"
    assert list(g.decile) == [2, 2, 2, 9]
    assert list(g.members) == [40, 25, 12, 30]


def test_people_mode_makes_pseudonymous_members_nodes_between_their_rooms() -> None:
    members = [Membership("!food", "k1"), Membership("!youth", "k1")]
    g = build_graph(ROOMS, members, people=True)
    assert g.n == 5 and g.keys[4] == "k1"
    assert {(a, b) for a, b, _, _ in arcs(g)} == {
        ("!food", "k1"), ("k1", "!food"), ("!youth", "k1"), ("k1", "!youth")}
    assert g.locality[4] == -1


def test_a_parish_council_is_tied_offline_to_every_group_in_its_locality() -> None:
    ties = hub_ties(ROOMS, ["!parish"])
    assert {(t.src, t.dst) for t in ties} == {("!parish", "!food"), ("!parish", "!youth")}


def test_reverse_view_lists_each_nodes_in_arcs() -> None:
    g = build_graph(ROOMS, flows=[FlowTie("!food", "!choir", "forward"),
                                  FlowTie("!youth", "!choir", "reply")])
    indptr, sources, order = g.reverse
    choir = g.index["!choir"]
    assert sorted(g.keys[s] for s in sources[indptr[choir]:indptr[choir + 1]]) == ["!food",
                                                                                  "!youth"]
    assert np.all(g.indices[order] == np.repeat(np.arange(g.n), np.diff(indptr)))
