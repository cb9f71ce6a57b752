"""Past grants from 360Giving files, and `!funding history` answering who funds groups here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.features.grants_import import GrantFileError, import_grants
from storage import groups
from storage.engine import Database
from tests.botworld import BotWorld, bot_world

WISBECH, CHATTERIS, ABBEY, FENLAND = "E04001668", "E04012516", "E05013050", "E07000010"


def grant(n: int, funder: str, recipient: str, amount: float, code: str | None,
          date: str = "2025-03-01", classification: str | None = None) -> dict[str, object]:
    record: dict[str, object] = {
        "id": f"360G-test-{n}", "title": f"Grant {n}", "description": "...", "currency": "GBP",
        "amountAwarded": amount, "awardDate": date,
        "fundingOrganization": [{"id": f"GB-CHC-{funder[:3].upper()}", "name": funder}],
        "recipientOrganization": [{"id": f"GB-CHC-{n}00", "name": recipient}],
    }
    if code:
        record["beneficiaryLocation"] = [
            {"name": "Cambridgeshire", "geoCode": "E10000003", "geoCodeType": "CTY"},
            {"name": "place", "geoCode": code, "geoCodeType": "PAR"},
        ]
    if classification:
        record["classifications"] = [{"vocabulary": "x", "code": "1", "title": classification}]
    return record


GRANTS = {"grants": [
    grant(1, "Fens Trust", "Wisbech Food Bank", 5000, WISBECH, "2025-06-01", "Food"),
    grant(2, "Fens Trust", "Chatteris Youth Club", 2000, CHATTERIS, "2024-11-01", "Youth"),
    grant(3, "Lottery Community Fund", "Wisbech Food Bank", 10000, WISBECH, "2023-01-10"),
    grant(4, "City Foundation", "Abbey People", 7000, ABBEY),
    grant(5, "Somewhere Else", "Unplaced Group", 100, None),
]}

CSV = (
    "Identifier,Title,Currency,Amount Awarded,Award Date,Recipient Org:Identifier,"
    "Recipient Org:Name,Funding Org:Identifier,Funding Org:Name,"
    "Beneficiary Location:0:Geographic Code,Beneficiary Location:0:Geographic Code Type,"
    "Classifications:0:Title\n"
    "360G-csv-1,Warm hub,GBP,\"1,500\",2025-01-20,GB-CHC-9,March Warm Hub,GB-CHC-F,Fens Trust,"
    f"{WISBECH},PAR,Food\n"
    "360G-csv-2,No amount,GBP,,2025-01-20,GB-CHC-8,Broken row,GB-CHC-F,Fens Trust,,,\n"
)


async def test_a_json_file_imports_and_importing_it_again_changes_nothing(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "grants.json"
    path.write_text(json.dumps(GRANTS))
    assert await import_grants(database, path) == 5
    assert await import_grants(database, path) == 5
    from sqlalchemy import func, select

    from storage.funding import PastGrant

    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(PastGrant)) == 5
        food = await session.scalar(select(PastGrant).where(PastGrant.grant_id == "360G-test-1"))
        assert food is not None
        # The most local code wins over the county one; the classification names a theme.
        assert (food.area_code, food.themes, food.amount) == (WISBECH, ["food"], 5000)


async def test_a_csv_export_imports_and_rows_without_an_amount_are_skipped(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "grants.csv"
    path.write_text(CSV)
    assert await import_grants(database, path) == 1


async def test_a_file_that_is_not_360giving_says_so(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,email\nAda,ada@example.org\n")
    with pytest.raises(GrantFileError, match="no Identifier and Amount Awarded columns"):
        await import_grants(database, path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"grants": [')
    with pytest.raises(GrantFileError, match="not valid JSON"):
        await import_grants(database, broken)


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path) as bw:
        path = tmp_path / "grants.json"
        path.write_text(json.dumps(GRANTS))
        await import_grants(bw.app.db, path)
        yield bw


async def test_history_answers_for_the_groups_own_area_by_default(town: BotWorld) -> None:
    ada = town.world.user("ada", "Ada")
    mo = town.world.user("mo", "Mo")
    room = town.world.create_room(ada, name="Wisbech Food Bank", members=[mo])
    await town.world.join(town.bot, room)
    await town.deliver()
    async with town.app.db.transaction() as session:
        session.add(groups.Group(room_id=room, name="Wisbech Food Bank", type="charity",
                                 area_code=WISBECH, themes=["food"], size="small",
                                 registered_by=ada, registered_at=town.clock.now()))
    [here] = await town.say(ada, room, "!funding history")
    assert here.splitlines() == [
        "Past grants in Wisbech: 2, £15,000 in all (360Giving).",
        "Lottery Community Fund: 1 grant, £10,000",
        "Fens Trust: 1 grant, £5,000",
        "Recent:",
        "Wisbech Food Bank: £5,000 from Fens Trust (2025-06-01)",
        "Wisbech Food Bank: £10,000 from Lottery Community Fund (2023-01-10)",
    ]
    [fenland] = await town.say(ada, room, "!funding history area=fenland theme=food")
    assert fenland.startswith("Past grants in Fenland, food: 1, £5,000 in all")
    [none] = await town.say(ada, room, "!funding history area=peterborough")
    assert none.startswith("No past grants recorded for Peterborough.")
