"""Past funding and collaboration next to predicted reach: the joins, the gaps ranking, the
ties named to close a gap, and the map with its text alternative."""

import itertools

import numpy as np

from reach import charts, report
from reach.graph import from_arcs
from reach.overlay import (
    Funding,
    LocalityOverlay,
    Place,
    bridging_ties,
    collaborations_per_locality,
    join,
    rank_gaps,
    reach_bands,
)
from reach.predict import AreaReach
from reach.simulate import Interval, summarise


def place(code: str, decile: int | None, district: str = "D1") -> Place:
    return Place(code, code.title(), district, decile, 52.3 + 0.01 * len(code), 0.1)


def reached(area: str, rooms: int, samples: list[float]) -> AreaReach:
    x = np.array(samples, float)
    return AreaReach(area, rooms, 0, summarise(x), summarise(0 * x), x, 0 * x)


def row(code: str, decile: int | None, share: float, amount: float, rooms: int = 10
        ) -> LocalityOverlay:
    iv = Interval(share * rooms, 0, rooms, 0) if rooms else None
    return LocalityOverlay(place(code, decile), rooms, iv, Funding(1, amount), 0)


def test_join_keeps_every_locality_and_puts_funding_and_collaborations_beside_reach() -> None:
    places = [place("ely", 8), place("wisbech", 1), place("elm", 3)]
    pred = [reached("ely", 4, [2, 3, 2, 1]), reached("wisbech", 2, [0, 1, 0, 0])]
    rows = join(places, pred, {"wisbech": Funding(3, 12_000.0)}, {"ely": 2})
    assert [r.place.code for r in rows] == ["ely", "wisbech", "elm"]
    ely, wisbech, elm = rows
    assert ely.rooms == 4 and ely.reach_share == 2 / 4 and ely.collaborations == 2
    assert wisbech.funding == Funding(3, 12_000.0) and wisbech.reach_share == 0.25 / 2
    assert elm.rooms == 0 and elm.reached is None and elm.reach_share == 0.0
    assert elm.funding == Funding() and elm.collaborations == 0


def test_collaborations_count_once_per_locality_of_their_groups() -> None:
    records = [[1, 2], [1, 3], [4]]
    areas = {1: "wisbech", 2: "wisbech", 3: "ely", 4: "E07000010"}  # 4: a district only
    assert collaborations_per_locality(records, areas, {"wisbech": "wisbech", "ely": "ely"}) == {
        "wisbech": 2, "ely": 1}


def test_gaps_rank_deprivation_low_reach_and_low_funding_together() -> None:
    rows = [
        row("rich-reached-funded", 9, 0.8, 50_000),
        row("poor-unreached-unfunded", 1, 0.05, 0),
        row("poor-but-funded", 1, 0.05, 90_000),  # deprived and unreached, but grants land
        row("poor-reached", 2, 0.9, 0),
        row("middling", 5, 0.3, 5_000),
    ]
    ranked = rank_gaps(rows)
    assert ranked[0].row.place.code == "poor-unreached-unfunded"
    assert ranked[-1].row.place.code == "rich-reached-funded"
    order = [g.row.place.code for g in ranked]
    assert order.index("poor-unreached-unfunded") < order.index("poor-but-funded")
    assert order.index("poor-unreached-unfunded") < order.index("poor-reached")
    assert 0 < ranked[-1].score < ranked[0].score <= 1.0
    assert all(a.score >= b.score for a, b in itertools.pairwise(ranked))
    assert len(rank_gaps(rows, limit=2)) == 2 and rank_gaps([]) == []


def test_the_ties_named_go_from_the_gap_to_the_best_reached_hub_in_its_district() -> None:
    # gap locality G (rooms 0, 1); district D1 also has hub 2 and room 3; D2 has room 4.
    g = from_arcs(5, np.array([2, 3]), np.array([3, 2]), keys=["g0", "g1", "hub", "r3", "far"],
                  locality=["G", "G", "H", "H", "F"], district=["D1", "D1", "D1", "D1", "D2"])
    reach = np.array([0.02, 0.01, 0.3, 0.6, 0.9])
    ties = bridging_ties(g, reach, "G", hubs=["hub"])
    # Inside: the least-reached room; outside: the hub first (it passes notices on to its
    # locality), then the best-reached room of the same district, before the far one.
    assert ties == (("g1", "hub"), ("g1", "r3"))
    # A locality with no room on chat: the tie waits for its first group; placed by district.
    assert bridging_ties(g, reach, "NEW", k=1, district="D2") == (("", "far"),)
    assert bridging_ties(g, np.zeros(5), "G") == ()


def test_reach_bands_put_funding_beside_reach_lowest_first() -> None:
    rows = [row("a", 1, 0.1, 100), row("b", 2, 0.5, 1_000), row("c", 9, 0.9, 9_000),
            row("none", 2, 0, 0, rooms=0)]
    bands = reach_bands(rows)
    assert [(b.label, b.localities, b.deprived, b.amount) for b in bands] == [
        ("no room on chat", 1, 1, 0.0), ("lowest reach", 1, 1, 100.0),
        ("middle reach", 1, 1, 1_000.0), ("highest reach", 1, 0, 9_000.0)]


def test_the_gaps_text_suppresses_small_counts_and_names_the_ties() -> None:
    rows = [row("wisbech", 1, 0.1, 2_500.0, rooms=7)]
    ranked = rank_gaps(rows)
    from reach.overlay import GapRank
    ranked = [GapRank(ranked[0].row, ranked[0].score, (("!a", "!hub"), ("", "!b")))]
    text = report.render_overlay(ranked, reach_bands(rows), {"wisbech": "Wisbech",
                                                             "!a": "G1 Pantry", "!hub": "Hub"})
    assert "1. Wisbech (IMD 1): reach 10% of 7 rooms (<5-7); past grants <5, £2,500" in text
    assert "; close it with a tie: G1 Pantry - Hub; its first group on chat - !b" in text
    assert "Groups with no tie outside their circle" not in text
    closed = report.render_overlay(ranked, [], {}, ["!g1", "!g2", "!g3", "!g4", "!g5"])
    assert closed.endswith("Groups with no tie outside their circle: 5 (first: !g1, !g2, !g3)")
    assert "- lowest reach: <5 (<5), <5 grants £2,500, <5 collaborations" in text
    # The interval says its own chance where it is far from the level, as in every reply.
    sure = LocalityOverlay(place("wisbech", 1), 7, Interval(0.7, 0, 7, 0, 0.99),
                           Funding(1, 2_500.0), 0)
    said = report.render_overlay([GapRank(sure, 1.0, ())], [], {"wisbech": "Wisbech"})
    assert "1. Wisbech (IMD 1): reach 10% of 7 rooms (<5-7, 99% chance); past grants" in said


def test_the_map_is_a_png_with_a_text_alternative_naming_what_it_shows() -> None:
    rows = [row("wisbech", 1, 0.1, 2_500.0), row("ely", 8, 0.7, 40_000.0),
            row("elm", 3, 0, 0, rooms=0), row("march", 4, 0.4, 0)]
    png = charts.locality_map(rows)
    assert png.startswith(b"\x89PNG")
    alt = report.map_text(rows, {"wisbech": "Wisbech", "ely": "Ely"})
    assert alt.startswith("Map of 4 localities at their ONS points")
    assert "Least reached: Wisbech 10%" in alt and "Most funded: Ely £40,000, Wisbech £2,500" in alt
