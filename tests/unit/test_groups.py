"""Group profiles and the directory, as group admins, moderators and members meet them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import groups, rooms
from storage.engine import Database
from storage.groups import Group
from tests.botworld import BotWorld, bot_world
from tests.small_county import write_test_areas

COORDINATOR = "@cora:grapevine.local"
WISBY_CLERK = "@clerk:grapevine.local"
ALIAS = "#wisbyfood:grapevine.local"
REGISTER = ('!group register name="Wisby Food Bank" type=charity area=Wisby '
            "themes=food,advice size=small")


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path,
        roles={"coordinators": [COORDINATOR], "moderators": {"E04900001": [WISBY_CLERK]}},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv"))},
    ) as bw:
        yield bw


async def group_room(bw: BotWorld, name: str = "Wisby Food Bank chat") -> tuple[str, str, str]:
    """A group's own room: its admin (power 50) and a member; the bot joins."""
    admin = bw.world.user("gail", "Gail")
    member = bw.world.user("mo", "Mo")
    room = bw.world.create_room(admin, name=name, members=[member], power={admin: 50})
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room, admin, member


async def registered_room(bw: BotWorld, admin: str, name: str, profile: str) -> str:
    """Another room of the admin's, registered as a group with the given profile."""
    room = bw.world.create_room(admin, name=name, power={admin: 50})
    await bw.world.join(bw.bot, room)
    await bw.say(admin, room, f"!group register {profile}")
    return room


async def office_of(bw: BotWorld, user: str) -> str:
    """A room of the user's own with the bot, for commands that need no group room."""
    room = bw.world.create_room(user, name="Office")
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def test_a_group_admin_registers_the_room_and_gets_an_unverified_g_number(
    county: BotWorld,
) -> None:
    room, admin, _ = await group_room(county)
    [reply] = await county.say(admin, room, REGISTER)
    assert reply.startswith("Registered G1 Wisby Food Bank (charity, Wisby), unverified")
    async with county.app.db.transaction() as session:
        group = await groups.by_room(session, room)
    assert group is not None
    assert (group.themes, group.size, group.listed, group.contact) == (
        ["food", "advice"], "small", True, True)


async def test_a_second_registration_of_the_same_room_gets_one_clear_line(
    county: BotWorld,
) -> None:
    room, admin, _ = await group_room(county)
    await county.say(admin, room, REGISTER)
    [reply] = await county.say(admin, room, REGISTER.replace("Wisby Food", "Other"))
    assert reply == ("This room is already G1 Wisby Food Bank (charity, Wisby): change it with "
                     "!group set, or !group unregister it first.")


async def test_a_member_who_is_not_an_admin_cannot_register(county: BotWorld) -> None:
    room, _, member = await group_room(county)
    [reply] = await county.say(member, room, REGISTER)
    assert len(reply.splitlines()) == 1 and "role" in reply and "group admin" in reply
    async with county.app.db.transaction() as session:
        assert await groups.active(session) == []


async def test_type_aliases_and_an_ambiguous_area_get_a_choice(county: BotWorld) -> None:
    room, admin, _ = await group_room(county)
    [choice] = await county.say(
        admin, room, '!group register name="Upton Youth" type=club area=Upton themes=youth '
        "size=micro")
    assert "Upton (Fenmarsh)" in choice and "Upton (Hillside)" in choice
    [reply] = await county.say(admin, room, "2")
    assert reply.startswith("Registered G1 Upton Youth (sports-club, Upton (Hillside))")


async def test_a_bad_area_is_refused_in_one_line(county: BotWorld) -> None:
    room, admin, _ = await group_room(county)
    [reply] = await county.say(admin, room, REGISTER.replace("area=Wisby", "area=E04999999"))
    assert len(reply.splitlines()) == 1 and "not an area I know" in reply


async def test_a_coordinator_registers_a_group_not_on_chat_by_email(county: BotWorld) -> None:
    office = await office_of(county, COORDINATOR)
    [asked] = await county.say(COORDINATOR, office, REGISTER + " room=none")
    assert "email" in asked
    [reply] = await county.say(COORDINATOR, office, "food@wisby.example")
    assert reply.startswith("Registered G1")
    [again] = await county.say(COORDINATOR, office, REGISTER + " room=none email=x@y.example")
    assert again == "G1 Wisby Food Bank (charity, Wisby) is already registered."
    [listed] = await county.say(COORDINATOR, office, "!directory food bank")
    assert listed == ("G1 Wisby Food Bank (charity, Wisby) unverified; food, advice: "
                      "not on chat; ask via !directory contact G1")


async def test_a_moderator_verifies_a_group_of_their_area_and_the_group_is_told(
    county: BotWorld,
) -> None:
    room, admin, _ = await group_room(county)
    await county.say(admin, room, REGISTER)
    office = await office_of(county, WISBY_CLERK)
    [reply] = await county.say(WISBY_CLERK, office, "!group verify G1")
    assert reply == "G1 Wisby Food Bank (charity, Wisby) is verified."
    await county.deliver()
    assert "is now verified" in county.world.messages(room, sender=county.bot)[-1]



async def test_a_moderator_of_another_area_cannot_verify(tmp_path: Path) -> None:
    async with bot_world(
        tmp_path,
        roles={"moderators": {"E07900002": ["@hill:grapevine.local"]}},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv"))},
    ) as county:
        room, admin, _ = await group_room(county)
        await county.say(admin, room, REGISTER)
        office = await office_of(county, "@hill:grapevine.local")
        [reply] = await county.say("@hill:grapevine.local", office, "!group verify G1")
        assert "only its moderators or a coordinator can verify it" in reply


async def test_the_group_admin_sees_and_changes_the_profile(county: BotWorld) -> None:
    room, admin, _ = await group_room(county)
    await county.say(admin, room, REGISTER)
    [reply] = await county.say(admin, room, "!group set max_posts=1 quiet=yes listed=no")
    assert reply == "G1 updated: listed no, max_posts 1, quiet yes."
    [profile] = await county.say(admin, room, "!group")
    assert "Listed: no" in profile and "My posts a day: 1; quiet: yes" in profile
    [nothing] = await county.say(admin, room, "!group set")
    assert nothing.startswith("Nothing to change")


async def test_unregistering_and_registering_again_keeps_the_g_number(county: BotWorld) -> None:
    room, admin, _ = await group_room(county)
    await county.say(admin, room, REGISTER)
    [gone] = await county.say(admin, room, "!group unregister")
    assert "is unregistered" in gone
    [back] = await county.say(admin, room, REGISTER)
    assert back.startswith("Registered G1")


async def test_the_directory_finds_listed_groups_by_words_area_theme_and_type(
    county: BotWorld,
) -> None:
    food, gail, _ = await group_room(county, "food")
    await county.say(gail, food, REGISTER)
    await registered_room(county, gail, "youth", 'name="Hillside Youth Club" type=club '
                          "area=E04900004 themes=youth size=micro")
    hidden = county.world.create_room(gail, name="hidden", power={gail: 50})
    await county.world.join(county.bot, hidden)
    await county.say(gail, hidden, '!group register name="Quiet Food Club" type=group '
                                   "area=Wisby themes=food size=micro listed=no")
    await county.deliver()

    [in_fenmarsh] = await county.say(gail, food, "!directory area=Fenmarsh")
    assert in_fenmarsh == ("G1 Wisby Food Bank (charity, Wisby) unverified; food, advice: "
                           "ask via !directory contact G1")
    assert food not in in_fenmarsh
    [youth_only] = await county.say(gail, food, "!directory theme=youth")
    assert youth_only.startswith("G2 Hillside Youth Club")
    [by_words] = await county.say(gail, food, "!directory WISBY food-bank.")
    assert by_words.startswith("G1 Wisby Food Bank")
    [by_type] = await county.say(gail, food, "!directory type=club")
    assert by_type.startswith("G2 ")
    [none] = await county.say(gail, food, "!directory quiet")
    assert none.startswith("No listed groups match")


async def test_listed_groups_and_a_rooms_old_profile_are_found_on_each_database(
    database: Database,
) -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

    def group(name: str, room_id: str | None, **fields: object) -> Group:
        return Group(name=name, room_id=room_id, type="charity", area_code="E04900001",
                     themes=["food"], size="small", registered_by="@gail:x", registered_at=now,
                     **fields)

    async with database.transaction() as session:
        session.add_all([group("Wisby Food Bank", "!a:x"), group("Hidden", "!b:x", listed=False),
                         group("Gone", "!c:x", unregistered_at=now)])
    async with database.transaction() as session:
        assert [g.name for g in await groups.listed(session)] == ["Wisby Food Bank"]
        assert await groups.by_room(session, "!c:x") is None
        old = await groups.by_room_any(session, "!c:x")
        assert old is not None and old.name == "Gone"


def _set_state(bw: BotWorld, room: str, sender: str, kind: str, content: dict[str, str]) -> None:
    """A room admin changes the room's state (its alias, who may join)."""
    bw.world._event(bw.world.room(room), sender, kind, content, "")


async def test_the_directory_gives_matrix_people_a_route_and_never_a_room_id(
    county: BotWorld,
) -> None:
    food, gail, _ = await group_room(county, "food")
    await county.say(gail, food, REGISTER)
    youth = await registered_room(county, gail, "youth", 'name="Wisby Youth Club" type=club '
                                  "area=Wisby themes=youth size=micro")
    _set_state(county, food, gail, "m.room.canonical_alias", {"alias": ALIAS})
    _set_state(county, youth, gail, "m.room.join_rules", {"join_rule": "public"})
    [listed] = await county.say(gail, food, "!directory area=Wisby")
    assert listed.splitlines() == [
        "G1 Wisby Food Bank (charity, Wisby) unverified; food, advice: #wisbyfood:grapevine.local",
        "G2 Wisby Youth Club (sports-club, Wisby) unverified; youth: "
        f"https://matrix.to/#/{youth.replace('!', '%21')}?via=grapevine.local",
    ]


async def test_the_directory_asks_the_server_nothing_however_many_groups_it_lists(
    county: BotWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    food, gail, _ = await group_room(county, "food")
    await county.say(gail, food, REGISTER)
    _set_state(county, food, gail, "m.room.canonical_alias", {"alias": ALIAS})
    for n in range(6):
        room = await registered_room(county, gail, f"club {n}", f'name="Wisby Club {n}" '
                                     "type=club area=Wisby themes=youth size=micro")
        _set_state(county, room, gail, "m.room.join_rules", {"join_rule": "public"})
    calls: list[str] = []
    for name in ("room_state", "get_state", "members", "room_info", "resolve_alias"):
        real = getattr(county.transport, name)

        async def counted(*args: object, _name: str = name, _real: object = real) -> object:
            calls.append(_name)
            return await _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(county.transport, name, counted)
    [listed] = await county.say(gail, food, "!directory area=Wisby")
    lines = listed.splitlines()
    assert [line for line in lines if line.endswith(f"food, advice: {ALIAS}")]
    assert len(lines) == 7 and sum("https://matrix.to/#/" in line for line in lines) == 6
    assert calls == []  # every route from the room state kept from sync: no request per line


async def test_a_service_typed_as_type_is_pointed_to_themes(county: BotWorld) -> None:
    food, gail, _ = await group_room(county, "food")
    [told] = await county.say(gail, food, "!directory type=foodbank")
    assert told.startswith("type: foodbank is a service: themes=food; type is the "
                           "organisation's form: unregistered-group, charity, cic")
    [refused] = await county.say(gail, food, REGISTER.replace("type=charity", "type=foodbank"))
    assert "themes=food" in refused
    async with county.app.db.transaction() as session:
        assert await groups.by_room(session, food) is None


async def test_someone_on_a_bridge_gets_no_matrix_link(county: BotWorld) -> None:
    food, gail, _ = await group_room(county, "food")
    await county.say(gail, food, REGISTER)
    _set_state(county, food, gail, "m.room.canonical_alias", {"alias": ALIAS})
    whatsapp = county.world.create_room(gail, name="WhatsApp group")
    await county.world.join(county.bot, whatsapp)
    await county.deliver()
    async with county.app.db.transaction() as session:
        known = await rooms.get(session, whatsapp)
        assert known is not None
        known.network = "whatsapp"
    county.app.forget_room_context(whatsapp)
    [listed] = await county.say(gail, whatsapp, "!directory food")
    assert listed == ("G1 Wisby Food Bank (charity, Wisby) unverified; food, advice: "
                      "ask via !directory contact G1")


async def test_the_profile_shows_the_capital_each_theme_builds(county: BotWorld) -> None:
    room, admin, _ = await group_room(county)
    await county.say(admin, room, REGISTER)
    [profile] = await county.say(admin, room, "!group")
    assert ("Themes: food (health capital), advice (human capital); size small; reach locality"
            in profile)


async def test_the_directory_lists_groups_by_parish_with_their_council_first(
    county: BotWorld,
) -> None:
    food, gail, _ = await group_room(county, "food")
    await county.say(gail, food, REGISTER)
    await registered_room(county, gail, "hill", 'name="Hillside Allotments" type=group '
                          "area=E04900004 themes=environment size=micro")
    await registered_room(county, gail, "council", 'name="Wisby Parish Council" '
                          "type=parish-council area=Wisby themes=advice size=small")
    [listed] = await county.say(gail, food, "!directory area=all")
    assert [line.split(" (")[0] for line in listed.splitlines()] == [
        "G2 Hillside Allotments", "G3 Wisby Parish Council", "G1 Wisby Food Bank"]
