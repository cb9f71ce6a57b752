"""The room tree as an admin and moderators meet it, on the in-process world."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.features import tree_plan as plan
from bot.features.tree_build import builder_for
from bot.transport.base import RateLimited, RoomSpec
from config.areas import AreaIndex
from config.themes import load_themes
from storage import tree
from storage.engine import Database
from storage.groups import Group
from tests.botworld import BotWorld, bot_world
from tests.small_county import write_test_areas

ADMIN = "@ada:grapevine.local"
COORDINATOR = "@cora:grapevine.local"
JOIN_HINT = ("To get in: !rooms join <area or alias> invites you if you moderate its area, "
             "coordinate, or admin a registered group there.")


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[BotWorld]:
    areas = write_test_areas(tmp_path / "areas.csv")
    async with bot_world(
        tmp_path,
        roles={"admins": [ADMIN], "coordinators": [COORDINATOR],
               "moderators": {"E04900001": ["@wisby.clerk:grapevine.local"]}},
        areas={"file": str(areas)},
    ) as bw:
        yield bw


async def control_room(bw: BotWorld) -> str:
    ada = bw.world.user("ada", "Ada")
    room = bw.world.create_room(ada, name="Council office")
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def setup(bw: BotWorld, room: str, area: str, who: str = ADMIN) -> list[str]:
    """Run !rooms setup and wait for the build; returns what the bot said."""
    before = len(bw.world.messages(room, sender=bw.bot))
    await bw.say(who, room, f"!rooms setup area={area}")
    await builder_for(bw.app).idle()
    await bw.deliver()
    return bw.world.messages(room, sender=bw.bot)[before:]


def state_events(bw: BotWorld) -> int:
    return sum(1 for room in bw.world.rooms.values() for e in room.timeline if "state_key" in e)


def content(bw: BotWorld, room_id: str, kind: str, key: str = "") -> dict[str, Any]:
    return dict(bw.world.room(room_id).state[(kind, key)]["content"])


async def every_room_is_linked_into_its_space(bw: BotWorld) -> bool:
    async with bw.app.db.transaction() as session:
        recorded = await tree.all_rooms(session)
    return all(
        ("m.space.child", row.room_id) in bw.world.room(recorded[row.parent_key].room_id).state
        and ("m.space.parent", recorded[row.parent_key].room_id) in bw.world.room(row.room_id).state
        for row in recorded.values() if row.parent_key
    )


# -- the plan (pure) --------------------------------------------------------------------


def test_the_plan_has_a_space_per_area_with_areas_inside_a_room_per_locality_and_theme(
    tmp_path: Path,
) -> None:
    areas = AreaIndex.load(write_test_areas(tmp_path / "a.csv"))
    themes = load_themes()
    rooms = plan.full_plan(areas, themes)
    spaces = [r.alias for r in rooms if r.kind == plan.SPACE]
    localities = [r.alias for r in rooms if r.kind == plan.LOCALITY]
    assert spaces == ["testshire", "fenmarsh", "hillside"]
    assert localities == ["fenmarsh-wisby", "fenmarsh-march-end", "fenmarsh-upton",
                          "hillside-upton"]
    assert "fenmarsh-food" in {r.alias for r in rooms if r.kind == plan.THEME}
    assert len(rooms) == 3 + 4 + 2 * len(themes)
    keys = [r.key for r in rooms]
    assert all(keys.index(r.parent_key) < keys.index(r.key) for r in rooms if r.parent_key)


def test_a_locality_needs_only_its_ancestors_spaces_and_its_own_room(tmp_path: Path) -> None:
    areas = AreaIndex.load(write_test_areas(tmp_path / "a.csv"))
    rooms = plan.plan_for(areas, load_themes(), "E04900001")
    assert [r.alias for r in rooms] == ["testshire", "fenmarsh", "fenmarsh-wisby"]


def test_shipped_county_aliases_read_like_the_place(tmp_path: Path) -> None:
    areas = AreaIndex.load()
    rooms = plan.full_plan(areas, load_themes())
    aliases = {r.alias for r in rooms}
    assert {"fenland-wisbech", "fenland-food", "cambridge-abbey"} <= aliases
    assert len(aliases) == len(rooms)


def test_power_levels_change_only_when_a_moderator_is_missing_or_revoked() -> None:
    create = {"type": "m.room.create", "sender": "@bot:x", "content": {"room_version": "12"}}
    levels = {"users": {"@mod:x": 50, "@chair:x": 100}, "users_default": 0}
    assert plan.power_change(create, levels, ["@mod:x", "@chair:x"]) is None
    added = plan.power_change(create, levels, ["@mod:x", "@new:x", "@bot:x"])
    assert added is not None and added["users"] == {"@mod:x": 50, "@chair:x": 100, "@new:x": 50}
    removed = plan.power_change(create, levels, [], previous_moderators=["@mod:x", "@chair:x"])
    assert removed is not None and removed["users"] == {"@chair:x": 100}


# -- the commands -----------------------------------------------------------------------


async def test_setup_builds_the_tree_and_a_second_run_changes_nothing(county: BotWorld) -> None:
    room = await control_room(county)
    said = await setup(county, room, "Fenmarsh")
    assert said == [
        "Making 20 rooms and spaces for Fenmarsh; I'll say here when they're ready.",
        "Rooms for Fenmarsh: made 20.\n"
        "!rooms area=E07900001 lists them.",
    ]
    server = county.world.server_name
    fenmarsh = county.world.aliases[f"#fenmarsh:{server}"]
    wisby = county.world.aliases[f"#fenmarsh-wisby:{server}"]
    food = county.world.aliases[f"#fenmarsh-food:{server}"]
    top = county.world.aliases[f"#testshire:{server}"]
    assert f"#hillside:{server}" not in county.world.aliases  # only that area's part
    assert content(county, wisby, "m.space.parent", fenmarsh)["via"] == [server]
    assert content(county, fenmarsh, "m.space.child", wisby)["via"] == [server]
    assert content(county, fenmarsh, "m.space.child", food)["via"] == [server]
    assert content(county, top, "m.space.child", fenmarsh)["via"] == [server]
    assert content(county, wisby, "m.room.join_rules") == {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": fenmarsh}]}
    assert content(county, top, "m.room.join_rules") == {"join_rule": "public"}
    # The Wisby clerk moderates Wisby's room only; the bot stays creator, unlisted.
    assert content(county, wisby, "m.room.power_levels")["users"] == {
        "@wisby.clerk:grapevine.local": 50}
    assert content(county, food, "m.room.power_levels")["users"] == {}

    before, rooms_before = state_events(county), len(county.world.rooms)
    again = await setup(county, room, "E07900001")
    assert again == ["Rooms for Fenmarsh: nothing to change; all 20 rooms and spaces are in "
                     "place.\n!rooms area=E07900001 lists them."]
    assert (state_events(county), len(county.world.rooms)) == (before, rooms_before)


async def test_a_moderator_granted_later_gets_power_in_every_room_of_their_area(
    county: BotWorld,
) -> None:
    room = await control_room(county)
    await setup(county, room, "Fenmarsh")
    mo = "@mo:grapevine.local"
    await county.say(ADMIN, room, f"!role grant {mo} moderator area=Fenmarsh")
    await builder_for(county.app).idle()
    server = county.world.server_name
    for alias in ("fenmarsh", "fenmarsh-wisby", "fenmarsh-food", "fenmarsh-upton"):
        room_id = county.world.aliases[f"#{alias}:{server}"]
        assert content(county, room_id, "m.room.power_levels")["users"].get(mo) == 50
    top = county.world.aliases[f"#testshire:{server}"]
    assert mo not in content(county, top, "m.room.power_levels")["users"]

    await county.say(ADMIN, room, f"!role revoke {mo} moderator area=Fenmarsh")
    await builder_for(county.app).idle()
    wisby = county.world.aliases[f"#fenmarsh-wisby:{server}"]
    assert content(county, wisby, "m.room.power_levels")["users"] == {
        "@wisby.clerk:grapevine.local": 50}


async def test_only_admins_and_coordinators_may_set_up_rooms(county: BotWorld) -> None:
    room = await control_room(county)
    mo = county.world.user("mo", "Mo")
    await county.world.join(mo, room)
    [reply] = await county.say(mo, room, "!rooms setup area=all")
    assert "needs the admin or coordinator role" in reply
    assert len(county.world.rooms) == 1


async def test_a_bad_area_gets_one_line_and_an_ambiguous_one_a_choice(county: BotWorld) -> None:
    room = await control_room(county)
    [bad] = await county.say(ADMIN, room, "!rooms setup area=Atlantis")
    assert "not an area I know" in bad and len(bad.splitlines()) == 1
    [choice] = await county.say(ADMIN, room, "!rooms setup area=Upton")
    assert "Upton (Fenmarsh)" in choice and "Upton (Hillside)" in choice
    await county.say(ADMIN, room, "2")
    await builder_for(county.app).idle()
    await county.deliver()
    assert f"#hillside-upton:{county.world.server_name}" in county.world.aliases
    assert f"#fenmarsh-upton:{county.world.server_name}" not in county.world.aliases


async def test_rooms_lists_aliases_spaces_first_and_says_how_many_more(county: BotWorld) -> None:
    room = await control_room(county)
    [none_yet] = await county.say(ADMIN, room, "!rooms")
    assert "no rooms" in none_yet and "!rooms setup" in none_yet
    await setup(county, room, "all")
    [listing] = await county.say(ADMIN, room, "!rooms area=Wisby")
    lines = listing.splitlines()
    assert len(lines) == 12 and lines[-2].startswith("...and ")
    assert lines[-1] == JOIN_HINT
    assert lines[0] == f"Wisby: #fenmarsh-wisby:{county.world.server_name}"
    assert f"Fenmarsh food: #fenmarsh-food:{county.world.server_name}" in lines
    [food] = await county.say(ADMIN, room, "!rooms theme=food")
    assert food.splitlines() == [f"Fenmarsh food: #fenmarsh-food:{county.world.server_name}",
                                 f"Hillside food: #hillside-food:{county.world.server_name}",
                                 JOIN_HINT]


async def test_rooms_join_invites_only_the_people_entitled_and_says_why(
    county: BotWorld,
) -> None:
    room = await control_room(county)
    await setup(county, room, "Fenmarsh")
    world, server = county.world, county.world.server_name
    wisby = world.aliases[f"#fenmarsh-wisby:{server}"]
    clerk, gwen, nobody = "@wisby.clerk:grapevine.local", "@gwen:grapevine.local", \
        "@nobody:grapevine.local"
    for person in (clerk, gwen, nobody):
        await world.join(person, room)

    [moderator] = await county.say(clerk, room, "!rooms join wisby")
    assert moderator == (f"I've invited you to Wisby (#fenmarsh-wisby:{server}), because you "
                         "moderate Wisby: accept the invite in your Matrix client.")
    assert clerk in world.room(wisby).members("invite")

    [refused] = await county.say(nobody, room, f"!rooms join #fenmarsh-wisby:{server}")
    assert refused.startswith("Wisby is for its area's moderators, coordinators and the "
                              "admins of groups registered there; ask a moderator")
    assert nobody not in world.room(wisby).members("invite")
    [unknown] = await county.say(nobody, room, "!rooms join #nowhere:elsewhere")
    assert unknown == ("There is no room for #nowhere:elsewhere yet; !rooms lists the rooms "
                       "there are.")

    # Gwen runs a group registered in Wisby: its room's admins are entitled.
    group_room = world.create_room(gwen, name="Wisby Pantry")
    await world.join(county.bot, group_room)
    async with county.app.db.transaction() as session:
        session.add(Group(room_id=group_room, name="Wisby Pantry", type="charity",
                          area_code="E04900001", themes=[], size="small", registered_by=gwen,
                          registered_at=world.now()))
    [admin] = await county.say(gwen, room, "!rooms join wisby")
    assert admin.endswith("because you are an admin of Wisby Pantry (G1): accept the invite "
                          "in your Matrix client.")
    assert gwen in world.room(wisby).members("invite")


async def test_a_setup_that_hits_an_error_says_how_far_it_got_and_carries_on_when_rerun(
    county: BotWorld,
) -> None:
    room = await control_room(county)
    transport = county.transport
    real_create = transport.create_room
    made: list[str] = []

    async def crash_after_five(spec: RoomSpec) -> str:
        if len(made) == 5:
            raise ConnectionResetError("the bot's host went away")
        made.append(await real_create(spec))
        return made[-1]

    transport.create_room = crash_after_five  # type: ignore[method-assign]
    said = await setup(county, room, "Fenmarsh")
    assert "stopped after" in said[-1] and "again to carry on" in said[-1]
    transport.create_room = real_create  # type: ignore[method-assign]
    said = await setup(county, room, "Fenmarsh")
    assert "made" in said[-1]
    async with county.app.db.transaction() as session:
        recorded = await tree.all_rooms(session)
    fenmarsh = [r for r in recorded.values() if r.area_code != "E10900001"]
    assert len(fenmarsh) == 1 + 3 + len(county.app.themes)
    assert len(county.world.rooms) == 1 + len(recorded)  # nothing made twice
    assert await every_room_is_linked_into_its_space(county)


async def test_without_a_rate_limit_override_the_build_paces_and_reports_progress(
    county: BotWorld,
) -> None:
    room = await control_room(county)
    transport = county.transport
    real_create = transport.create_room
    calls = 0

    async def limited(spec: RoomSpec) -> str:
        nonlocal calls
        calls += 1
        if calls % 4 == 0:
            raise RateLimited(10, "too many rooms")
        return await real_create(spec)

    builder = builder_for(county.app)
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    builder.sleep = no_sleep
    transport.create_room = limited  # type: ignore[method-assign]
    import bot.features.tree_build as build

    original = build.PROGRESS_EVERY
    build.PROGRESS_EVERY = 0
    try:
        said = await setup(county, room, "Fenmarsh")
    finally:
        build.PROGRESS_EVERY = original
    await county.deliver()
    everything = county.world.messages(room, sender=county.bot)
    assert waits and all(w == 0.05 for w in waits)
    assert any("done. The server limits how fast" in m for m in everything)
    assert "made" in said[-1]


async def test_a_setup_killed_half_way_resumes_where_it_stopped(county: BotWorld) -> None:
    room = await control_room(county)
    transport = county.transport
    real_create = transport.create_room
    made: list[str] = []

    async def killed_after_five(spec: RoomSpec) -> str:
        if len(made) == 5:
            builder_for(county.app).cancel()
            await asyncio.sleep(0)
        made.append(await real_create(spec))
        return made[-1]

    transport.create_room = killed_after_five  # type: ignore[method-assign]
    await setup(county, room, "Fenmarsh")
    async with county.app.db.transaction() as session:
        assert len(await tree.unfinished_runs(session)) == 1
        assert 0 < len(await tree.all_rooms(session)) < 20
    transport.create_room = real_create  # type: ignore[method-assign]
    # What the restarted bot does at start-up (and every few minutes).
    builder_for(county.app).resume()
    await builder_for(county.app).idle()
    await county.deliver()
    assert "nothing to change" not in county.world.messages(room, sender=county.bot)[-1]
    assert len(county.world.rooms) == 1 + 2 + 3 + len(county.app.themes)  # none twice
    assert await every_room_is_linked_into_its_space(county)


async def test_tree_rooms_and_setup_runs_are_kept_on_each_database(database: Database) -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    async with database.transaction() as session:
        run = await tree.start_run(session, area_code="E07900001", requested_by="@ada:x",
                                   at=now, report_room="!office:x")
        await tree.record_room(session, tree.TreeRoom(
            key="space:E07900001", room_id="!space:x", alias="#fenmarsh:x", kind="space",
            area_code="E07900001", theme=None, name="Fenmarsh", parent_key=None,
            moderators=["@clerk:x"], created_at=now,
        ))
    async with database.transaction() as session:
        assert [r.id for r in await tree.unfinished_runs(session)] == [run.id]
        assert (await tree.all_rooms(session))["space:E07900001"].moderators == ["@clerk:x"]
        await tree.set_moderators(session, "space:E07900001", ["@zed:x", "@bea:x"])
        finished = await tree.get_run(session, run.id)
        assert finished is not None
        finished.finished_at = now
    async with database.transaction() as session:
        assert (await tree.all_rooms(session))["space:E07900001"].moderators == [
            "@bea:x", "@zed:x"]
        assert await tree.unfinished_runs(session) == []


async def test_closing_the_app_ends_a_tree_pass_mid_transaction_and_lets_go_of_sqlite(
    county: BotWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop while the builder's pass sits inside its transaction: the app's close ends
    the pass (rolled back, connection returned), no wake after it starts another, and a
    fresh start on the same file gets SQLite's write lock at once (the in-process restart
    that once failed with "database is locked")."""
    inside = asyncio.Event()
    real_unfinished = tree.unfinished_runs

    async def stuck(session: Any) -> Any:
        runs = await real_unfinished(session)
        inside.set()
        await asyncio.Event().wait()  # until cancelled
        return runs

    monkeypatch.setattr(tree, "unfinished_runs", stuck)
    builder = builder_for(county.app)
    builder.resume()
    await asyncio.wait_for(inside.wait(), 5)
    assert county.app.db.checked_out() == ["room-tree"]

    await county.app.close()
    assert county.app.db.checked_out() == []
    builder.resume()  # a commit's wake after the close: nothing starts
    await asyncio.sleep(0)
    assert county.app.db.checked_out() == []

    # What the next start's first transaction does, on the same file, without waiting.
    again = sqlite3.connect(tmp_path / "grapevine.db", timeout=0.1, isolation_level=None)
    try:
        again.execute("BEGIN IMMEDIATE")
        again.execute("ROLLBACK")
    finally:
        again.close()
