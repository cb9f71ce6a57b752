"""The shipped area tree: faithful to its sources, navigable, and resolvable by name."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from config.areas import GSS_CODE, SHIPPED_AREAS, SLUG, AreaFileError, AreaIndex
from config.build_areas import build, write_rows

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"
SHARED_LOCALITIES = SHARED_DATA / "cambridgeshire_localities.csv"

COMBINED_AUTHORITY = "E47000008"
CAMBRIDGESHIRE = "E10000003"
CAMBRIDGE = "E07000008"
EAST_CAMBS = "E07000009"
FENLAND = "E07000010"
HUNTS = "E07000011"
SOUTH_CAMBS = "E07000012"
PETERBOROUGH = "E06000031"


@pytest.fixture(scope="module")
def areas() -> AreaIndex:
    return AreaIndex.load()


@pytest.fixture(scope="module")
def shared_localities() -> list[dict[str, str]]:
    # In CI the shared folder sits beside the project; without it this must fail, not skip.
    assert SHARED_LOCALITIES.is_file(), f"shared locality table missing: {SHARED_LOCALITIES}"
    with SHARED_LOCALITIES.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- the shipped file against its sources -----------------------------------------


def test_shipped_file_is_exactly_what_the_build_makes_from_the_shared_table(
    shared_localities: list[dict[str, str]], tmp_path: Path
) -> None:
    rebuilt = tmp_path / "cambridgeshire.csv"
    write_rows(build(SHARED_LOCALITIES), rebuilt)
    assert rebuilt.read_bytes() == SHIPPED_AREAS.read_bytes()


def test_every_shared_locality_is_shipped_with_its_code_name_district_point_and_decile(
    areas: AreaIndex, shared_localities: list[dict[str, str]]
) -> None:
    assert len(shared_localities) == 279
    assert {a.code for a in areas.localities()} == {r["code"] for r in shared_localities}
    for row in shared_localities:
        area = areas.get(row["code"])
        assert (area.name, area.kind, area.parent_code) == (
            row["name"],
            row["kind"],
            row["district_code"],
        )
        assert (area.lat, area.lon) == (float(row["lat"]), float(row["lon"]))
        assert area.imd_decile == int(row["imd_decile"])
        assert areas.get(row["district_code"]).name == row["district_name"]


@pytest.mark.parametrize(
    ("name", "code", "district", "decile"),
    [
        ("Wisbech", "E04001668", FENLAND, 3),
        ("March", "E04001661", FENLAND, 4),
        ("Chatteris", "E04012516", FENLAND, 5),
        ("Whittlesey", "E04001666", FENLAND, 6),
        ("Wisbech St. Mary", "E04001669", FENLAND, 3),
        ("Ely", "E04012829", EAST_CAMBS, 8),
        ("Soham", "E04001641", EAST_CAMBS, 7),
        ("St. Ives", "E04012036", HUNTS, 8),
        ("St. Neots", "E04012037", HUNTS, 7),
        ("Ramsey", "E04012035", HUNTS, 5),
        ("Cottenham", "E04001775", SOUTH_CAMBS, 8),
        ("Sawston", "E04001836", SOUTH_CAMBS, 8),
    ],
)
def test_provenance_spot_checks(
    areas: AreaIndex, name: str, code: str, district: str, decile: int
) -> None:
    (area,) = areas.resolve(name)
    assert area.code == code
    assert area.imd_decile == decile
    district_area = areas.district_of(code)
    assert district_area is not None and district_area.code == district


@pytest.mark.parametrize(
    ("district", "count"),
    [
        (CAMBRIDGE, 14),
        (EAST_CAMBS, 35),
        (FENLAND, 16),
        (HUNTS, 81),
        (SOUTH_CAMBS, 103),
        (PETERBOROUGH, 30),
    ],
)
def test_locality_counts_per_district_match_provenance(
    areas: AreaIndex, district: str, count: int
) -> None:
    assert len(areas.localities(within=district)) == count


def test_every_code_is_a_gss_code_and_every_locality_has_a_point_and_a_decile(
    areas: AreaIndex,
) -> None:
    assert all(GSS_CODE.match(a.code) for a in areas)
    assert len(areas) == 287
    for area in areas.localities():
        assert area.lat is not None and 51.9 < area.lat < 52.8, area
        assert area.lon is not None and -0.6 < area.lon < 0.6, area
        assert area.imd_decile in range(1, 11), area


def test_the_tiers_above_the_localities_carry_sourced_points_and_deciles(areas: AreaIndex) -> None:
    fenland = areas.get(FENLAND)
    assert (fenland.lat, fenland.lon, fenland.imd_decile) == (52.53544, 0.00902, 4)
    assert areas.root.lat is None  # no sourced point for the combined authority
    assert {a.vintage for a in areas.localities()} == {"PAR19", "NCP19", "WD21"}


# -- tree navigation ---------------------------------------------------------------


def test_tree_shape_with_peterborough_beside_the_county_under_the_combined_authority(
    areas: AreaIndex,
) -> None:
    assert areas.root.code == COMBINED_AUTHORITY
    assert areas.root.name == "Cambridgeshire and Peterborough"
    assert [a.code for a in areas.children(COMBINED_AUTHORITY)] == [CAMBRIDGESHIRE, PETERBOROUGH]
    assert [a.code for a in areas.children(CAMBRIDGESHIRE)] == [
        CAMBRIDGE,
        EAST_CAMBS,
        FENLAND,
        HUNTS,
        SOUTH_CAMBS,
    ]
    assert [a.name for a in areas.districts()] == [
        "Cambridge",
        "East Cambridgeshire",
        "Fenland",
        "Huntingdonshire",
        "South Cambridgeshire",
        "Peterborough",
    ]
    assert areas.get(PETERBOROUGH).kind == "unitary"


def test_an_area_includes_every_area_inside_it(areas: AreaIndex) -> None:
    wisbech = "E04001668"
    for outer in (wisbech, FENLAND, CAMBRIDGESHIRE, COMBINED_AUTHORITY):
        assert areas.contains(outer, wisbech)
    assert not areas.contains(wisbech, FENLAND)
    assert not areas.contains(EAST_CAMBS, wisbech)
    assert [a.code for a in areas.ancestors(wisbech)] == [
        FENLAND,
        CAMBRIDGESHIRE,
        COMBINED_AUTHORITY,
    ]


def test_peterborough_parishes_are_not_inside_cambridgeshire(areas: AreaIndex) -> None:
    peterborough_localities = areas.localities(within=PETERBOROUGH)
    assert len(peterborough_localities) == 30
    for area in peterborough_localities:
        assert not areas.contains(CAMBRIDGESHIRE, area.code)
        assert areas.contains(COMBINED_AUTHORITY, area.code)


def test_descendants_and_localities_cover_the_subtree(areas: AreaIndex) -> None:
    under_county = areas.descendants(CAMBRIDGESHIRE, include_self=False)
    assert CAMBRIDGESHIRE not in {a.code for a in under_county}
    assert len(under_county) == 5 + 14 + 35 + 16 + 81 + 103
    assert areas.descendants(FENLAND)[0].code == FENLAND
    assert len(areas.localities()) == 279
    assert areas.district_of(CAMBRIDGESHIRE) is None
    district = areas.district_of("E05013056")  # King's Hedges ward
    assert district is not None and district.name == "Cambridge"


def test_unknown_codes_are_key_errors_and_membership_ignores_case(areas: AreaIndex) -> None:
    with pytest.raises(KeyError, match="E04999999"):
        areas.get("E04999999")
    assert "e04001668" in areas
    assert "E04999999" not in areas


def test_nearest_finds_the_locality_around_a_point(areas: AreaIndex) -> None:
    wisbech = areas.get("E04001668")
    assert wisbech.lat is not None and wisbech.lon is not None
    assert areas.nearest(wisbech.lat + 0.001, wisbech.lon) == wisbech
    in_cambridge = areas.nearest(52.2053, 0.1218)  # the city centre
    assert in_cambridge is not None and in_cambridge.parent_code == CAMBRIDGE


# -- resolving what people type ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("st ives", "E04012036"),
        ("St. Ives", "E04012036"),
        ("ST IVES", "E04012036"),
        ("Saint Ives", "E04012036"),
        ('"St Ives"', "E04012036"),
        ("wisbech st mary", "E04001669"),
        ("Wisbech St. Mary", "E04001669"),
        ("wisbech", "E04001668"),
        ("fenland", FENLAND),
        ("Fenland District Council", FENLAND),
        ("e07000010", FENLAND),
        ("King’s Hedges", "E05013056"),
        ("kings hedges", "E05013056"),
        ("Offord Cluny & Offord D’Arcy", "E04012015"),
        ("newton in the isle", "E04001662"),
        ("Cambridge", CAMBRIDGE),
        ("cambridge city", CAMBRIDGE),
        ("Cambridgeshire", CAMBRIDGESHIRE),
        ("Peterborough", PETERBOROUGH),
        ("sutton-east-cambridgeshire", "E04012832"),
    ],
)
def test_a_name_or_code_resolves_to_exactly_one_area(
    areas: AreaIndex, typed: str, code: str
) -> None:
    assert [a.code for a in areas.resolve(typed)] == [code]


def test_a_name_two_parishes_share_gives_both_to_choose_from(areas: AreaIndex) -> None:
    suttons = areas.resolve("sutton")
    assert {a.code for a in suttons} == {"E04012832", "E04001120"}
    assert {areas.label(a.code) for a in suttons} == {
        "Sutton (East Cambridgeshire)",
        "Sutton (Peterborough)",
    }
    assert len(areas.resolve("Conington")) == 2


def test_a_beginning_lists_every_name_it_starts_but_a_whole_name_wins(areas: AreaIndex) -> None:
    assert [a.name for a in areas.resolve("wisb")] == ["Wisbech", "Wisbech St. Mary"]
    assert [a.name for a in areas.resolve("Alconbury")] == ["Alconbury"]
    assert [a.name for a in areas.resolve("alconbury w")] == ["Alconbury Weston"]


def test_unknown_places_resolve_to_nothing(areas: AreaIndex) -> None:
    assert areas.resolve("Atlantis") == []
    assert areas.resolve("E04999999") == []
    assert areas.resolve("  ") == []
    assert areas.resolve("el") == []  # too short to guess from


def test_slugs_are_unique_alias_safe_and_disambiguated_by_district(areas: AreaIndex) -> None:
    slugs = [a.slug for a in areas]
    assert len(set(slugs)) == len(slugs)
    assert all(SLUG.match(s) for s in slugs)
    assert areas.get("E04012036").slug == "st-ives"
    assert areas.get("E05013056").slug == "kings-hedges"
    assert areas.get("E04001120").slug == "sutton-peterborough"
    assert areas.get("E04012832").slug == "sutton-east-cambridgeshire"


# -- another county is one data file away --------------------------------------------

# Fictional codes (E1099999x and friends): a shape test, not data.
TESTSHIRE = """\
code,name,kind,parent_code,lat,lon,imd_decile,vintage
E10999991,Testshire,county,,,,,CTY99
E07999991,North Testshire,district,E10999991,53.1,-1.2,6,LAD99
E07999992,South Testshire,district,E10999991,52.9,-1.1,,LAD99
E04999991,Upper Test,parish,E07999991,53.11,-1.21,2,PAR99
E04999992,Lower Test,parish,E07999991,53.09,-1.19,9,PAR99
E04999993,Upper Test,parish,E07999992,52.91,-1.11,,PAR99
"""


def test_another_county_loads_from_one_file(tmp_path: Path) -> None:
    path = tmp_path / "testshire.csv"
    path.write_text(TESTSHIRE, encoding="utf-8")
    testshire = AreaIndex.load(path)
    assert testshire.root.name == "Testshire"
    assert [a.name for a in testshire.districts()] == ["North Testshire", "South Testshire"]
    assert len(testshire.localities()) == 3
    assert len(testshire.resolve("upper test")) == 2
    assert testshire.get("E04999991").slug == "upper-test-north-testshire"
    assert testshire.contains("E07999991", "E04999992")
    assert not testshire.contains("E07999992", "E04999992")
    assert testshire.get("E04999993").imd_decile is None


# -- bad files -----------------------------------------------------------------------

HEADER = "code,name,kind,parent_code,lat,lon,imd_decile,vintage\n"
ROOT = "E10999991,Testshire,county,,,,,CTY99\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("E04999991,Upper Test,parish,E07999999,,,,\n", "line 3 (E04999991): unknown parent_code"),
        (
            "E04999991,Upper Test,parish,E10999991,,,,\nE04999991,Again,parish,E10999991,,,,\n",
            "line 4 (E04999991): duplicate code, first on line 3",
        ),
        ("X123,Nowhere,parish,E10999991,,,,\n", "line 3: 'X123' is not a GSS code"),
        ("E0499999,Short,parish,E10999991,,,,\n", "'E0499999' is not a GSS code"),
        ("E04999991,Upper Test,hamlet,E10999991,,,,\n", "unknown kind 'hamlet'"),
        ("E04999991,Upper Test,parish,E10999991,52.1,,,\n", "give both lat and lon"),
        ("E04999991,Upper Test,parish,E10999991,95,1,,\n", "lat '95' is outside"),
        ("E04999991,Upper Test,parish,E10999991,,,11,\n", "imd_decile '11' is outside"),
        ("E04999991,Upper Test,parish,E10999991,,,high,\n", "imd_decile 'high' is not a number"),
        ("E10999992,Other Shire,county,,,,,\n", "exactly one top area, found E10999991, E10999992"),
        (
            "E04999991,A,parish,E04999992,,,,\nE04999992,B,parish,E04999991,,,,\n",
            "parent_code loops back",
        ),
    ],
)
def test_a_bad_row_is_refused_naming_the_row(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + ROOT + body, encoding="utf-8")
    with pytest.raises(AreaFileError, match=re.escape(message)):
        AreaIndex.load(path)


def test_a_file_without_the_needed_columns_or_at_all_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("code,name\nE10999991,Testshire\n", encoding="utf-8")
    with pytest.raises(AreaFileError, match="missing columns: kind, parent_code"):
        AreaIndex.load(path)
    with pytest.raises(AreaFileError, match="cannot read area file"):
        AreaIndex.load(tmp_path / "absent.csv")
