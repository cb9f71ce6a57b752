"""Open Referral UK in and out: the directory as ORUK JSON, ORUK files as unclaimed listings.

What a council officer or deployer checks: the export validates against the published
schema and carries nothing private; the published examples and our own export read
back as listings; importing again duplicates nothing; a bad file gets one line and
changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select

from bot import cli
from bot.features.oruk_export import (
    ExportInvalid,
    deployment_namespace,
    organization_of,
    validate,
)
from bot.features.oruk_import import DirectoryFileError, map_terms, read_listings
from config.areas import AreaIndex
from config.oruk import GSS_SCHEME, THEMES_TAXONOMY, THEMES_TAXONOMY_ID, schema
from config.themes import load_themes
from storage.engine import Database
from storage.groups import Group
from storage.listings import Listing
from storage.migrate import upgrade
from tests.clocks import START, ManualClock
from tests.small_county import write_test_areas

PUBLISHED = Path(__file__).parents[2] / ".." / "shared" / "data" / "oruk"
EXAMPLES = sorted((PUBLISHED / "examples").glob("*.json"))
THEMES = load_themes()
NAMESPACE = deployment_namespace("grapevine.local")
ANN = "@ann:grapevine.local"
ROOM = "!wisbyfood:grapevine.local"


@pytest.fixture
def areas(tmp_path: Path) -> AreaIndex:
    return AreaIndex.load(write_test_areas(tmp_path / "areas.csv"))


def food_bank(**changes: Any) -> Group:
    values: dict[str, Any] = dict(
        id=5, room_id=ROOM, name="Wisby Food Bank", type="charity", area_code="E04900001",
        themes=["food", "advice"], size="small", reach="district", listed=True, contact=True,
        email="private@wisby.example", registered_by=ANN, registered_at=START,
        verified_by=ANN, verified_at=START, introductions="room")
    values.update(changes)
    return Group(**values)


# -- out --------------------------------------------------------------------------------


def test_a_group_becomes_an_organization_the_published_schema_accepts(areas: AreaIndex) -> None:
    organization = organization_of(food_bank(), areas, THEMES, NAMESPACE)
    published = json.loads((PUBLISHED / "schema" / "organization.json").read_text())
    errors = list(Draft202012Validator(published, format_checker=FormatChecker())
                  .iter_errors(organization))
    assert errors == []
    [service] = organization["services"]
    terms = [a["taxonomy_term"] for a in service["attributes"]]
    assert [(t["term"], t["taxonomy"], t["taxonomy_id"]) for t in terms] == [
        ("food", THEMES_TAXONOMY, str(THEMES_TAXONOMY_ID)),
        ("advice", THEMES_TAXONOMY, str(THEMES_TAXONOMY_ID))]
    # reach=district: the service area is the district, the location is the parish.
    [served] = service["service_areas"]
    assert (served["name"], served["uri"].rsplit("/", 1)[1]) == ("Fenmarsh", "E07900001")
    location = service["service_at_locations"][0]["location"]
    assert (location["name"], location["external_identifier"]) == ("Wisby", "E04900001")
    assert organization["attributes"][0]["taxonomy_term"]["term"] == "charity"


def test_the_export_holds_no_person_no_room_and_no_unpublished_email(areas: AreaIndex) -> None:
    text = json.dumps(organization_of(food_bank(), areas, THEMES, NAMESPACE))
    assert ANN not in text and ROOM not in text and "private@wisby.example" not in text


def test_the_same_group_gets_the_same_ids_and_another_deployment_other_ids(
    areas: AreaIndex,
) -> None:
    first = organization_of(food_bank(), areas, THEMES, NAMESPACE)
    again = organization_of(food_bank(name="Renamed"), areas, THEMES, NAMESPACE)
    elsewhere = organization_of(food_bank(), areas, THEMES, deployment_namespace("other.org"))
    assert first["id"] == again["id"] and first["services"][0]["id"] == again["services"][0]["id"]
    assert first["id"] != elsewhere["id"]


def test_an_invalid_export_is_refused_naming_the_record(areas: AreaIndex) -> None:
    organization = organization_of(food_bank(), areas, THEMES, NAMESPACE)
    organization["services"][0]["status"] = "open"
    with pytest.raises(ExportInvalid, match=r"Wisby Food Bank.*services/0/status"):
        validate([organization])


# -- in ---------------------------------------------------------------------------------


def test_terms_map_to_themes_by_our_vocabulary_or_by_name_and_the_rest_stay_text() -> None:
    terms = [
        {"id": "1", "name": "Anything", "description": "", "taxonomy": THEMES_TAXONOMY,
         "term": "youth"},
        {"id": "2", "name": "Food banks", "description": "", "taxonomy": "council"},
        {"id": "3", "name": "Bereavement support", "description": "", "taxonomy": "council"},
        {"id": "4", "name": "cic", "description": "", "taxonomy": "grapevine-organisation-types",
         "term": "cic"},
    ]
    themes, others, org_type = map_terms(terms, THEMES)
    assert (themes, others, org_type) == (["youth", "food"], ["Bereavement support"], "cic")


def test_the_export_reads_back_as_the_same_profile(areas: AreaIndex) -> None:
    organization = organization_of(food_bank(), areas, THEMES, NAMESPACE)
    [listing] = read_listings([organization], areas, THEMES)
    assert (listing.name, listing.area_code, listing.themes, listing.org_type, listing.email) == (
        "Wisby Food Bank", "E04900001", ["food", "advice"], "charity", None)
    assert listing.oruk_id == organization["services"][0]["id"]


def test_a_council_service_is_placed_by_a_place_name_that_means_one_area(
    areas: AreaIndex,
) -> None:
    service = {"id": "svc-1", "name": "March End Lunch Club", "status": "active",
               "email": "lunch@march.example",
               "service_areas": [{"id": "sa-1", "name": "March End"}],
               "attributes": [{"id": "a", "taxonomy_term": {
                   "id": "t", "name": "Older people", "description": ""}}]}
    upton = {**service, "id": "svc-2", "name": "Upton Club",
             "service_areas": [{"id": "sa-2", "name": "Upton"}]}
    first, second = read_listings({"contents": [service, upton]}, areas, THEMES)
    assert (first.area_code, first.email, first.area_text) == (
        "E04900002", "lunch@march.example", "March End")
    # Two Uptons: never a guess, the place is kept as text.
    assert (second.area_code, second.area_text) == (None, "Upton")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_published_examples_are_read(example: Path, areas: AreaIndex) -> None:
    [listing] = read_listings(json.loads(example.read_text()), areas, THEMES)
    assert (listing.oruk_id, listing.name) == (
        "ac148810-d857-441c-9679-408f346de14b", "Community Counselling")
    assert listing.description is not None and listing.description.startswith("Counselling")
    assert listing.area_code is None and listing.area_text is not None
    assert "MyCity Civic Center" in listing.area_text


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "not JSON (line 1"),
    ("[]", "holds no organizations or services"),
    ("[1]", "record 0: not a JSON object"),
    ('[{"id": "x", "name": "No status", "status": "open"}]',
     "record 0 (service, status): 'open' is not one of"),
    ('[{"id": "o", "name": "Org without description"}]',
     "record 0 (organization): 'description' is a required property"),
])
def test_a_bad_file_is_refused_in_one_line(content: str, says: str, areas: AreaIndex,
                                           tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DirectoryFileError) as caught:
        from bot.features.oruk_import import load_file

        read_listings(load_file(path), areas, THEMES)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_our_own_shipped_schemas_are_the_published_ones() -> None:
    for kind in ("organization", "service", "service_at_location"):
        assert schema(kind) == json.loads((PUBLISHED / "schema" / f"{kind}.json").read_text())


# -- the command line, end to end on a database -----------------------------------------


def _config(tmp_path: Path, name: str) -> Path:
    areas = write_test_areas(tmp_path / "areas.csv")
    path = tmp_path / f"{name}.toml"
    (tmp_path / name).mkdir()
    path.write_text(f'[bot]\ndata_dir = "{tmp_path / name}"\n[areas]\nfile = "{areas}"\n'
                    '[matrix]\nuser_id = "@grapevine:grapevine.local"\n')
    return path


async def _seed(config: Path, *groups: Group) -> None:
    db = Database(cli.load_settings(config).database_url)
    await upgrade(db.engine)
    async with db.transaction() as session:
        session.add_all(groups)
    await db.close()


async def _listings(config: Path) -> list[tuple[str, str | None, list[str]]]:
    db = Database(cli.load_settings(config).database_url)
    async with db.transaction() as session:
        rows = list(await session.scalars(select(Listing).order_by(Listing.id)))
        count = await session.scalar(select(func.count()).select_from(Listing))
    await db.close()
    assert count == len(rows)
    return [(r.name, r.area_code, r.themes) for r in rows]


def test_export_then_import_into_a_fresh_database_twice_without_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    ours, theirs = _config(tmp_path, "ours"), _config(tmp_path, "theirs")
    hidden = food_bank(id=6, room_id="!hidden:x", name="Hidden Club", listed=False)
    asyncio.run(_seed(ours, food_bank(), hidden))
    out = tmp_path / "directory.json"
    assert cli.main(["export-directory", "-c", str(ours), "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert [o["name"] for o in document] == ["Wisby Food Bank"]  # listed=no stays out
    clock = ManualClock(START)
    assert cli.main(["import-directory", "-c", str(theirs), str(out)], clock=clock) == 0
    assert "1 new listings, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert cli.main(["import-directory", "-c", str(theirs), str(out)], clock=clock) == 0
    assert "0 new listings, 0 updated, 1 unchanged" in capsys.readouterr().out
    assert asyncio.run(_listings(theirs)) == [("Wisby Food Bank", "E04900001",
                                               ["food", "advice"])]
    # Our own export read back into our own database turns no group into a listing.
    assert cli.main(["import-directory", "-c", str(ours), str(out)], clock=clock) == 0
    assert "1 of our own groups skipped" in capsys.readouterr().out
    assert asyncio.run(_listings(ours)) == []


def test_a_bad_file_on_the_command_line_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    config = _config(tmp_path, "db")
    good = tmp_path / "good.json"
    good.write_text((PUBLISHED / "examples" / "service_full.json").read_text())
    assert cli.main(["import-directory", "-c", str(config), str(good)],
                    clock=ManualClock(START)) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    changed = json.loads(good.read_text()) | {"name": "Renamed"}
    bad.write_text(json.dumps([changed, {"id": "x", "name": "Broken", "status": "shut"}]))
    assert cli.main(["import-directory", "-c", str(config), str(bad)],
                    clock=ManualClock(datetime(2026, 11, 21, tzinfo=UTC))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("nothing was imported.")
    assert "record 1 (service, status): 'shut' is not one of" in err[0]
    assert asyncio.run(_listings(config)) == [("Community Counselling", None, [])]


# -- a county-sized directory -----------------------------------------------------------

COUNCIL = UUID("5f0c7a52-6d1e-4a57-9d43-2c1b8e0f9a61")  # the ids a council's system would mint
PARISHES = [("E04900001", "Wisby"), ("E04900002", "March End"), ("E04900004", "Upton")]


def county_directory(count: int) -> list[dict[str, Any]]:
    """``count`` organisations with one service each, as a council's ORUK export gives them:
    placed by a location's GSS code, a service area's URI, or only a place name."""
    def uid(*parts: object) -> str:
        return str(uuid5(COUNCIL, "/".join(map(str, parts))))

    organizations = []
    for n in range(count):
        code, place = PARISHES[n % len(PARISHES)]
        service: dict[str, Any] = {
            "id": uid("service", n), "organization_id": uid("org", n),
            "name": f"Lunch Club {n:03}", "status": "active",
            "description": f"A weekly lunch in {place}.", "email": f"club{n}@council.example",
            "attributes": [{"id": uid("attr", n), "taxonomy_term": {
                "id": uid("term", "food"), "name": "Food banks", "description": ""}}]}
        if n % 3 == 0:
            service["service_at_locations"] = [{"id": uid("sal", n), "location": {
                "id": uid("loc", n), "location_type": "physical", "name": f"{place} Hall",
                "external_identifier": code, "external_identifier_type": GSS_SCHEME}}]
        elif n % 3 == 1:
            service["service_areas"] = [{"id": uid("area", n), "name": place,
                                         "uri": f"http://statistics.data.gov.uk/id/"
                                                f"statistical-geography/{code}"}]
        else:
            service["service_areas"] = [{"id": uid("area", n), "name": place}]
        organizations.append({"id": uid("org", n), "name": f"Friends of {place} {n:03}",
                              "description": f"Volunteers in {place}.", "services": [service]})
    return organizations


def test_a_county_sized_directory_is_imported_once_and_again_without_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    document = county_directory(600)
    published = json.loads((PUBLISHED / "schema" / "organization.json").read_text())
    checker = Draft202012Validator(published, format_checker=FormatChecker())
    assert [e.message for o in document for e in checker.iter_errors(o)] == []
    config = _config(tmp_path, "county")
    path = tmp_path / "county.json"
    path.write_text(json.dumps(document))

    clock = ManualClock(START)
    assert cli.main(["import-directory", "-c", str(config), str(path)], clock=clock) == 0
    assert "600 new listings, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert cli.main(["import-directory", "-c", str(config), str(path)], clock=clock) == 0
    assert "0 new listings, 0 updated, 600 unchanged" in capsys.readouterr().out
    listed = asyncio.run(_listings(config))
    assert len(listed) == 600 and len({name for name, _, _ in listed}) == 600
    # Placed by code (either way) where the file gives one; "Upton" alone means two places.
    assert listed[0] == ("Lunch Club 000", "E04900001", ["food"])
    assert listed[1] == ("Lunch Club 001", "E04900002", ["food"])
    assert listed[2] == ("Lunch Club 002", None, ["food"])
    assert listed[5][1] is None and listed[4][1] == "E04900002"

    # The council renames one club: one update, nothing new.
    document[7]["services"][0]["name"] = "Lunch Club Seven"
    path.write_text(json.dumps(document))
    later = ManualClock(START + timedelta(days=30))
    assert cli.main(["import-directory", "-c", str(config), str(path)], clock=later) == 0
    assert "0 new listings, 1 updated, 599 unchanged" in capsys.readouterr().out
    listed = asyncio.run(_listings(config))
    assert len(listed) == 600 and listed[7][0] == "Lunch Club Seven"
