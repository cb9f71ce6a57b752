"""Claiming imported listings: a room's admin claims L<n>, its area's moderator answers,
and the directory shows unclaimed listings until then."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.features.oruk_import import import_listings, read_listings
from storage import groups, listings
from tests.botworld import BotWorld, bot_world
from tests.small_county import write_test_areas

COORDINATOR = "@cora:grapevine.local"
WISBY_CLERK = "@clerk:grapevine.local"
HILL_CLERK = "@hill:grapevine.local"


def council_service(n: int, name: str, place: str, *terms: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"council-{n}", "name": name, "status": "active",
            "description": f"{name}, as the council lists it",
            "service_areas": [{"id": f"sa-{n}", "name": place}],
            "attributes": [{"id": f"a-{n}-{t}", "taxonomy_term": {
                "id": f"t-{t}", "name": t, "description": "", "taxonomy": "council"}}
                for t in terms], **extra}


FRIDGE = council_service(1, "Wisby Community Fridge", "Wisby", "Food banks", "Befriending",
                         email="fridge@wisby.example", url="https://fridge.example")
CHOIR = council_service(2, "Hillside Choir", "Hillside", "Music")


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path,
        roles={"coordinators": [COORDINATOR],
               "moderators": {"E04900001": [WISBY_CLERK], "E07900002": [HILL_CLERK]}},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv"))},
    ) as bw:
        items = read_listings([FRIDGE, CHOIR], bw.app.areas, bw.app.themes)
        await import_listings(bw.app.db, items, "council.json", bw.clock.now())
        yield bw


async def room_of(bw: BotWorld, user: str, name: str, admin: bool = True) -> str:
    room = bw.world.create_room(user, name=name, power={user: 50} if admin else {})
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def test_unclaimed_listings_are_in_the_directory_marked_unclaimed(county: BotWorld) -> None:
    reader = county.world.user("rita", "Rita")
    room = await room_of(county, reader, "Rita's room", admin=False)
    [reply] = await county.say(reader, room, "!directory area=Wisby")
    assert reply == ("L1 Wisby Community Fridge (Wisby) unclaimed; food, older-people: "
                     "https://fridge.example; its room's admin claims it with "
                     "!group claim L1")
    # "Music" in the council's taxonomy is our arts theme.
    [themed] = await county.say(reader, room, "!directory theme=arts")
    assert themed.startswith("L2 Hillside Choir (Hillside) unclaimed; arts: no route published")


async def test_an_admin_claims_and_the_areas_moderator_confirms(county: BotWorld) -> None:
    gail = county.world.user("gail", "Gail")
    room = await room_of(county, gail, "Fridge chat")
    [asked] = await county.say(gail, room, "!group claim L1")
    assert asked == "What kind of group is it? (" + asked.split("(", 1)[1]
    [asked] = await county.say(gail, room, "charity")
    assert asked == "How big is it? (micro, small, medium or large) (or !cancel)"
    [asked] = await county.say(gail, room, "micro")
    assert asked == ("Claim of L1 Wisby Community Fridge (Wisby) sent; it becomes this room's "
                     "group once a moderator of Wisby or a coordinator runs !group claim L1 "
                     "confirm (or refuse).")
    # Wisby's moderator hears of it by DM; Hillside's does not.
    assert county.dms(WISBY_CLERK) == [
        f"{gail}, a room's admin, claims L1 Wisby Community Fridge (Wisby) for the room: "
        "answer with !group claim L1 confirm (or refuse)."]
    assert county.dms(HILL_CLERK) == []
    # A moderator of another area may not answer it.
    elsewhere = await room_of(county, HILL_CLERK, "Hillside office")
    [refused] = await county.say(HILL_CLERK, elsewhere, "!group claim L1 confirm")
    assert refused == "Only a moderator of Wisby or a coordinator can answer the claim of L1."

    office = await room_of(county, WISBY_CLERK, "Wisby office")
    [done] = await county.say(WISBY_CLERK, office, "!group claim L1 confirm")
    assert done == "Confirmed: L1 is now G1 Wisby Community Fridge (charity, Wisby)."
    told = county.world.messages(room, sender=county.bot)[-1]
    assert told == ("This room's group is now G1 Wisby Community Fridge (charity, Wisby), "
                    "from L1: see it with !group, change it with !group set.")
    async with county.app.db.transaction() as session:
        group = await groups.by_room(session, room)
        listing = await listings.by_id(session, 1)
    assert group is not None and listing is not None
    assert (group.themes, group.size, group.email, group.verified, group.registered_by) == (
        ["food", "older-people"], "micro", "fridge@wisby.example", True, gail)
    assert listing.group_id == group.id
    [listed] = await county.say(gail, room, "!directory area=Wisby")
    assert listed.startswith("G1 Wisby Community Fridge (charity, Wisby); food, older-people")
    assert "unclaimed" not in listed
    # The admin edits it after, as any profile.
    [edited] = await county.say(gail, room, "!group set size=small")
    assert edited == "G1 updated: size small."
    [again] = await county.say(gail, room, "!group claim L1")
    assert again == "L1 is already G1's profile; nothing changed."


async def test_a_claim_merges_into_the_rooms_own_group_which_keeps_its_answers(
    county: BotWorld,
) -> None:
    gail = county.world.user("gail", "Gail")
    room = await room_of(county, gail, "Food chat")
    await county.say(gail, room, '!group register name="Wisby Food Hub" type=cic area=Wisby '
                                 "themes=advice size=medium email=hub@wisby.example")
    [asked] = await county.say(gail, room, "!group claim L1")
    assert "it becomes merged into G1 once a moderator of Wisby" in asked
    await county.say(COORDINATOR, await room_of(county, COORDINATOR, "Cora"),
                     "!group claim L1 confirm")
    async with county.app.db.transaction() as session:
        group = await groups.by_room(session, room)
    assert group is not None
    assert (group.name, group.type, group.size, group.themes, group.email) == (
        "Wisby Food Hub", "cic", "medium", ["advice", "food", "older-people"], "hub@wisby.example")


async def test_a_refusal_clears_the_claim_in_one_line_and_the_room_may_ask_again(
    county: BotWorld,
) -> None:
    gail = county.world.user("gail", "Gail")
    room = await room_of(county, gail, "Fridge chat")
    await county.say(gail, room, "!group claim L1 type=charity size=small")
    other = county.world.user("otto", "Otto")
    rival = await room_of(county, other, "Another room")
    [waiting] = await county.say(other, rival, "!group claim L1 type=charity size=small")
    assert waiting == ("Another room's claim of L1 is waiting for a moderator of Wisby or a "
                       "coordinator; nothing changed.")
    office = await room_of(county, WISBY_CLERK, "Wisby office")
    [refused] = await county.say(WISBY_CLERK, office, "!group claim L1 refuse")
    assert refused == "Refused the claim of L1; the room is told."
    assert county.world.messages(room, sender=county.bot)[-1] == (
        "The claim of L1 Wisby Community Fridge was refused; ask a moderator of Wisby or a "
        "coordinator why, or claim it again.")
    [nothing] = await county.say(WISBY_CLERK, office, "!group claim L1 confirm")
    assert nothing == "Nobody has claimed L1; a room's admin asks with !group claim L1 in its room."
    async with county.app.db.transaction() as session:
        assert await groups.by_room(session, room) is None
    [again] = await county.say(other, rival, "!group claim L1 type=charity size=small")
    assert again.startswith("Claim of L1 Wisby Community Fridge (Wisby) sent")


async def test_only_a_rooms_admin_claims_and_only_for_that_room(county: BotWorld) -> None:
    gail, member = county.world.user("gail", "Gail"), county.world.user("mo", "Mo")
    room = county.world.create_room(gail, name="Fridge chat", members=[member],
                                    power={gail: 50})
    await county.world.join(county.bot, room)
    await county.deliver()
    [refused] = await county.say(member, room, "!group claim L1 type=charity size=small")
    assert refused == ("!group claim needs the coordinator or group admin or moderator role, "
                       "which you don't have here. !roles lists who does.")
    # A coordinator may answer claims but not make one: a claim is a room's, by its admin.
    [dm] = await county.say(COORDINATOR, await county.transport.direct_room(COORDINATOR),
                            "!group claim L1 type=charity size=small")
    assert dm == ("A room's admin claims a listing for that room: run !group claim L1 in "
                  "your group's own room.")
    async with county.app.db.transaction() as session:
        assert await listings.pending_claim(session, 1) is None
    [missing] = await county.say(COORDINATOR, await room_of(county, COORDINATOR, "Cora"),
                                 "!group claim L9")
    assert missing == "There is no listing L9; !directory lists them (marked unclaimed)."
