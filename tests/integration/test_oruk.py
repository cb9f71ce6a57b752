"""Open Referral UK on a real Synapse, on each database: one deployment's directory is
exported with the real command line and validated against the published schema; a
fresh deployment imports it (and the published examples), twice, without duplicates;
then a room's admin claims the listing, the area's moderator confirms, and the
directory shows the group."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from botfixture import REPO, BotFactory, RunningBot
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select

from storage.groups import Group
from storage.listings import Listing

PUBLISHED = REPO.parent / "shared" / "data" / "oruk"
WAIT = 30.0
CHATTERIS = "E04012516"


async def grapevine(bot: RunningBot, *argv: str) -> subprocess.CompletedProcess[str]:
    """The real CLI against this bot's config and database, on the bot's clock."""
    config = bot.setup.write_config()
    command = [sys.executable, "-m", "tests.integration.clocked_run",
               bot.clock.now().isoformat(), argv[0], "-c", str(config), *argv[1:]]
    return await asyncio.to_thread(
        subprocess.run, command, cwd=REPO, env=bot.setup.environment(), capture_output=True,
        text=True, timeout=120)


async def said(person: Any, room: str, bot: RunningBot, text: str, expect: str) -> str:
    await person.send(room, text)
    event = await person.wait_for_message(room, sender=bot.user_id, contains=expect,
                                          timeout=WAIT)
    return str(event["content"]["body"])


async def group_room(person: Any, bot: RunningBot, name: str) -> str:
    room = await person.create_room(name=name, invite=[bot.user_id])
    await person.wait_for_message(room, sender=bot.user_id, contains="never what", timeout=WAIT)
    return room


async def listing_rows(bot: RunningBot) -> list[tuple[str, str | None, int | None]]:
    async with bot.app.db.transaction() as session:
        rows = await session.scalars(select(Listing).order_by(Listing.id))
        return [(r.name, r.area_code, r.group_id) for r in rows]


async def test_a_directory_exported_imported_elsewhere_and_claimed(
    bot_factory: BotFactory, person_factory: Any, tmp_path: Path,
) -> None:
    # The first deployment: one listed group, one that chose not to be listed.
    first = await bot_factory()
    gail = await person_factory("Gail", e2e=False)
    food = await group_room(gail, first, "Chatteris Food Bank chat")
    await said(gail, food, first, '!group register name="Chatteris Food Bank" type=charity '
               "area=Chatteris themes=food,advice size=small email=gail@food.example",
               "Registered G1")
    quiet = await group_room(gail, first, "Private club")
    await said(gail, quiet, first, '!group register name="Quiet Club" type=club area=Chatteris '
               "themes=sport size=micro listed=no", "Registered G2")

    out = tmp_path / "directory.json"
    done = await grapevine(first, "export-directory", "--out", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    published = json.loads((PUBLISHED / "schema" / "organization.json").read_text())
    validator = Draft202012Validator(published, format_checker=FormatChecker())
    assert [list(validator.iter_errors(o)) for o in document] == [[]]
    assert [o["name"] for o in document] == ["Chatteris Food Bank"]
    text = out.read_text()
    assert gail.user_id not in text and food not in text and "gail@food.example" not in text

    # A fresh deployment reads it, and the published examples, twice: nothing doubles.
    bob = await person_factory("Bob")  # the bot's DMs are encrypted
    second = await bot_factory(roles={"moderators": {CHATTERIS: [bob.user_id]}})
    files = [str(out), *(str(p) for p in sorted((PUBLISHED / "examples").glob("*.json")))]
    for path in files:
        done = await grapevine(second, "import-directory", path)
        assert done.returncode == 0, done.stderr
    again = await grapevine(second, "import-directory", str(out))
    assert again.stdout.strip().endswith("0 new listings, 0 updated, 1 unchanged")
    assert await listing_rows(second) == [("Chatteris Food Bank", CHATTERIS, None),
                                          ("Community Counselling", None, None)]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "x", "name": "No status"}]')
    refused = await grapevine(second, "import-directory", str(broken))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "nothing was imported" in refused.stderr

    # Alice, the admin of the food bank's room there, claims it; Bob confirms.
    alice = await person_factory("Alice", e2e=False)
    room = await group_room(alice, second, "Food bank")
    listed = await said(alice, room, second, "!directory area=Chatteris", "L1")
    assert listed.startswith("L1 Chatteris Food Bank (charity, Chatteris) unclaimed; food, "
                             "advice: no route published")
    asked = await said(alice, room, second, "!group claim L1 size=small", "Claim of L1")
    assert "a moderator of Chatteris or a coordinator runs !group claim L1 confirm" in asked
    # Bob, Chatteris's moderator, is told by DM and answers there.
    dm = await bob.wait_for_invite(timeout=WAIT, joined=True)
    told = await bob.wait_for_message(dm, sender=second.user_id, contains="claims L1",
                                      since=0, timeout=WAIT)
    assert told["content"]["body"] == (
        f"{alice.user_id}, a room's admin, claims L1 Chatteris Food Bank (Chatteris) for the "
        "room: answer with !group claim L1 confirm (or refuse).")
    confirmed = await said(bob, dm, second, "!group claim L1 confirm", "Confirmed")
    assert confirmed == "Confirmed: L1 is now G1 Chatteris Food Bank (charity, Chatteris)."
    await alice.wait_for_message(room, sender=second.user_id,
                                 contains="This room's group is now G1", timeout=WAIT)
    shown = await said(alice, room, second, "!directory area=Chatteris", "G1")
    assert shown.startswith("G1 Chatteris Food Bank (charity, Chatteris); food, advice")
    assert "unclaimed" not in shown and room not in shown
    async with second.app.db.transaction() as session:
        groups = await session.scalar(select(func.count()).select_from(Group))
        group = await session.get(Group, 1)
    assert groups == 1 and group is not None
    assert (group.room_id, group.verified_by, group.registered_by) == (
        room, bob.user_id, alice.user_id)
