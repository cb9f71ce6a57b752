"""Venues and hubs, parish councils as nodes, reach in targeting, introductions as evidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.features import councils, hub_sheets, reach_network
from bot.features import funding_targeting as targeting
from bot.features.reach_network import hub_key
from bot.features.tree_build import builder_for
from config.areas import AreaIndex
from reach.graph import ARC_KINDS
from storage import tree
from storage.outbox import OutboxMessage
from storage.venues import Venue
from tests.botworld import BotWorld, bot_world
from tests.small_county import write_test_areas
from tests.unit.test_groups import group_room, office_of, registered_room

ADMIN = "@ada:grapevine.local"
COORDINATOR = "@cora:grapevine.local"
CLERK = "@clerk:grapevine.local"  # moderates Wisby
WARDEN = "@warden:grapevine.local"
HALL = ("!venue add name=\"Wisby Village Hall\" area=Wisby capacity=80 price=free "
        "accessible=yes contact=#wisbyhall:grapevine.local")
# Monday 30 November 2026, 10:00 UK time.
MONDAY = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path,
        roles={"admins": [ADMIN], "coordinators": [COORDINATOR],
               "moderators": {"E04900001": [CLERK]}},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv"))},
    ) as bw:
        bw.clock.current = MONDAY
        yield bw


async def venue_rows(bw: BotWorld) -> list[Venue]:
    async with bw.app.db.transaction() as session:
        return list(await session.scalars(select(Venue).order_by(Venue.id)))


# -- venues -----------------------------------------------------------------------------


async def test_a_moderator_adds_venues_and_anyone_finds_them_by_area_and_capacity(
    county: BotWorld,
) -> None:
    office = await office_of(county, CLERK)
    [added] = await county.say(CLERK, office, HALL)
    assert added == "Added P1 Wisby Village Hall (Wisby): 80 people, free, step-free."
    await county.say(CLERK, office, '!venue add name="Church room" area=Wisby capacity=20 '
                                    "price=low")
    coord = await office_of(county, COORDINATOR)
    await county.say(COORDINATOR, coord, '!venue add name="Upton Barn" area=E04900004 '
                                         "capacity=200 price=standard")
    mo = county.world.user("mo", "Mo")
    room = await office_of(county, mo)
    [found] = await county.say(mo, room, "!venue find area=Fenmarsh")
    assert found.splitlines() == [
        "P1 Wisby Village Hall (Wisby): 80 people, free, step-free; "
        "book: #wisbyhall:grapevine.local",
        "P2 Church room (Wisby): 20 people, low cost",
    ]
    [big] = await county.say(mo, room, "!venue find area=all capacity=50")
    assert [line.split(" (")[0] for line in big.splitlines()] == [
        "P1 Wisby Village Hall", "P3 Upton Barn"]
    [none] = await county.say(mo, room, "!venue find area=Wisby capacity=500")
    assert none.startswith("No venue in Wisby fits")


async def test_bad_input_gets_a_clear_reply_and_lists_nothing(county: BotWorld) -> None:
    office = await office_of(county, CLERK)
    replies = [
        (await county.say(CLERK, office, HALL.replace("price=free", "price=cheapish")))[0],
        (await county.say(CLERK, office, HALL.replace("capacity=80", "capacity=lots")))[0],
        (await county.say(CLERK, office, HALL.replace("contact=#wisbyhall:grapevine.local",
                                                      "contact=ring-the-vicar")))[0],
        (await county.say(CLERK, office, HALL + " open=whenever"))[0],
        (await county.say(CLERK, office, HALL.replace("area=Wisby", "area=Fenmarsh")
                          + " hub=yes"))[0],
    ]
    assert "should be one of free, low, standard" in replies[0]
    assert "whole number" in replies[1]
    assert replies[2].startswith("contact: 'ring-the-vicar' is not a way to book")
    assert replies[3].startswith("open: 'whenever' is not a time I know")
    # Fenmarsh is a district: only its clerk's Wisby is theirs, so the clerk is refused first.
    assert "Venues are listed by a moderator of Fenmarsh" in replies[4]
    coord = await office_of(county, COORDINATOR)
    [district_hub] = await county.say(COORDINATOR, coord,
                                      HALL.replace("area=Wisby", "area=Fenmarsh") + " hub=yes")
    assert district_hub.startswith("A hub is the node of one parish or ward")
    assert await venue_rows(county) == []


async def test_only_moderators_coordinators_and_verified_groups_add_venues(
    county: BotWorld,
) -> None:
    room, gail, mo = await group_room(county)
    [member] = await county.say(mo, room, HALL)
    assert member.startswith("Venues are listed by a moderator of Wisby, a coordinator, or a "
                             "verified group for its own premises")
    await county.say(gail, room, '!group register name="Wisby Scouts" type=club area=Wisby '
                                 "themes=youth size=small")
    [unverified] = await county.say(gail, room, HALL)
    assert unverified.startswith("G1 is not verified yet")
    assert await venue_rows(county) == []
    office = await office_of(county, CLERK)
    await county.say(CLERK, office, "!group verify G1")
    [elsewhere] = await county.say(gail, room, HALL.replace("area=Wisby", "area=E04900004"))
    assert elsewhere.startswith("G1 works in Wisby")
    [own] = await county.say(gail, room, HALL.replace("Village Hall", "Scout Hut"))
    assert own.startswith("Added P1 Wisby Scout Hut")
    [row] = await venue_rows(county)
    assert (row.group_id, row.added_by) == (1, gail)
    [shown] = await county.say(mo, room, "!venue show P1")
    assert "Premises of G1 Wisby Scouts." in shown.splitlines()


async def test_the_same_venue_twice_is_refused(county: BotWorld) -> None:
    office = await office_of(county, CLERK)
    await county.say(CLERK, office, HALL)
    [again] = await county.say(CLERK, office, HALL.replace("Village Hall", "village  hall."))
    assert again.startswith("P1 Wisby Village Hall (Wisby): 80 people, free, step-free is "
                            "already listed")
    assert len(await venue_rows(county)) == 1


async def test_find_by_when_keeps_venues_open_then_and_counts_those_that_never_said(
    county: BotWorld,
) -> None:
    office = await office_of(county, CLERK)
    await county.say(CLERK, office, HALL + " open=weekends")
    await county.say(CLERK, office, '!venue add name="Wisby School" area=Wisby capacity=300 '
                                    "price=standard open=weekday-evenings")
    await county.say(CLERK, office, '!venue add name="Wisby Pub" area=Wisby capacity=40 '
                                    "price=standard")
    [saturday] = await county.say(CLERK, office, '!venue find area=Wisby when="sat 10am-1pm"')
    assert saturday.splitlines() == [
        "P1 Wisby Village Hall (Wisby): 80 people, free, step-free; "
        "book: #wisbyhall:grapevine.local",
        "1 more has not said when they open: ask them.",
    ]
    [evening] = await county.say(CLERK, office, '!venue find area=Wisby when="wed 7pm-9pm"')
    assert evening.splitlines()[0].startswith("P2 Wisby School")
    [tuesday] = await county.say(CLERK, office, '!venue find area=Wisby capacity=30 '
                                                'when="tue 10am-11am"')
    assert tuesday.startswith("No venue in Wisby fits (1 more has not said when they open)")
    [shown] = await county.say(CLERK, office, "!venue show P1")
    assert "Open: weekends." in shown.splitlines()


async def test_a_venue_is_removed_by_who_may_list_it_and_no_one_else(county: BotWorld) -> None:
    office = await office_of(county, CLERK)
    await county.say(CLERK, office, HALL)
    mo = county.world.user("mo", "Mo")
    room = await office_of(county, mo)
    [refused] = await county.say(mo, room, "!venue remove P1")
    assert refused.startswith("Only whoever listed P1")
    [missing] = await county.say(mo, room, "!venue show P9")
    assert missing == "There is no venue P9; !venue find area=... lists them."
    coord = await office_of(county, COORDINATOR)
    [removed] = await county.say(COORDINATOR, coord, "!venue remove P1")
    assert removed == "P1 Wisby Village Hall removed from the venue list."
    [gone] = await county.say(mo, room, "!venue find area=Wisby")
    assert gone.startswith("No venue in Wisby fits")
    [not_found] = await county.say(mo, room, "!venue show P1")
    assert not_found == "There is no venue P1; !venue find area=... lists them."
    [row] = await venue_rows(county)
    assert row.removed_by == COORDINATOR


# -- hubs -------------------------------------------------------------------------------


async def test_a_hub_gets_its_localitys_notice_sheet_by_dm_once_a_week_and_in_show(
    county: BotWorld,
) -> None:
    office = await office_of(county, CLERK)
    county.world.user("warden", "Warden")
    [added] = await county.say(CLERK, office, '!venue add name="Wisby Community Centre" '
                               f"area=Wisby capacity=120 price=low hub=yes contact={WARDEN}")
    assert added.splitlines()[1:] == [
        "As a hub it is tied to Wisby's groups in the reach graph and gets its funding notice "
        "sheet (!venue show P1).",
        f"{WARDEN} gets it by direct message now and every Monday.",
    ]
    [dm] = county.dms(WARDEN)
    assert dm == ("This week's funding notice sheet for Wisby, for P1 Wisby Community Centre "
                  "to print and pin up: 0 open notices.")
    async with county.app.db.transaction() as session:
        [row] = await session.scalars(select(OutboxMessage).where(OutboxMessage.to_user == WARDEN))
    assert (row.file_mime, row.file_name) == ("application/pdf", "funding-wisby-2026-11-30.pdf")
    async with county.app.db.transaction() as session:
        [hub] = await session.scalars(select(Venue))
        attachment, count = await hub_sheets.sheet_attachment(county.app, session, hub,
                                                              county.clock.now())
    assert attachment.data.startswith(b"%PDF") and count == 0
    assert await hub_sheets.send_weekly(county.app) == 0  # this week's is already sent
    county.clock.current = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert await hub_sheets.send_weekly(county.app) == 1
    await county.deliver()
    assert len(county.dms(WARDEN)) == 2
    [shown] = await county.say(CLERK, office, "!venue show P1")
    assert shown.splitlines()[-1] == ("Community hub: the notice sheet for Wisby (0 open notices) "
                                      "is attached, to print and pin up.")
    async with county.app.db.transaction() as session:
        [reply] = await session.scalars(select(OutboxMessage).where(
            OutboxMessage.room_id == office, OutboxMessage.file_name.is_not(None)))
    assert (reply.file_name, reply.file_mime) == ("funding-wisby-2026-12-07.pdf",
                                                  "application/pdf")


async def test_a_hub_is_an_offline_node_tied_to_its_localitys_groups_in_the_reach_graph(
    county: BotWorld,
) -> None:
    food, gail, _ = await group_room(county)
    await county.say(gail, food, '!group register name="Wisby Food Bank" type=charity '
                                 "area=Wisby themes=food size=small")
    other = await registered_room(county, gail, "upton", 'name="Upton Youth" type=club '
                                  "area=E04900004 themes=youth size=micro")
    office = await office_of(county, CLERK)
    await county.say(CLERK, office, '!venue add name="Wisby Community Centre" area=Wisby '
                                    "capacity=120 price=low hub=yes")
    async with county.app.db.transaction() as session:
        records = await reach_network.load_records(session)
    net = reach_network.build(records, county.app.areas)
    graph = net.graph
    hub = graph.index[hub_key(1)]
    ties = {graph.keys[int(t)] for t, k in zip(
        graph.indices[graph.indptr[hub]:graph.indptr[hub + 1]],
        graph.arc_kind[graph.indptr[hub]:graph.indptr[hub + 1]], strict=True)
        if ARC_KINDS[int(k)] == "offline"}
    assert food in ties and other not in ties
    assert net.labels[hub_key(1)] == "P1 Wisby Community Centre"
    assert net.group_rooms["P1"] == hub_key(1)
    await county.say(CLERK, office, "!venue remove P1")
    async with county.app.db.transaction() as session:
        records = await reach_network.load_records(session)
    assert hub_key(1) not in {r.room_id for r in records.rooms}


# -- parish councils as nodes -----------------------------------------------------------


async def test_a_locality_rooms_topic_names_its_council_and_stops_when_it_leaves(
    county: BotWorld,
) -> None:
    office = await office_of(county, ADMIN)
    await county.say(ADMIN, office, "!rooms setup area=Wisby")
    await builder_for(county.app).idle()
    async with county.app.db.transaction() as session:
        locality = (await tree.all_rooms(session))["locality:E04900001"]

    def topic() -> str | None:
        event = county.world.room(locality.room_id).state.get(("m.room.topic", ""))
        return None if event is None else str(event["content"]["topic"])

    assert topic() is None
    council, clerk_admin, _ = await group_room(county, "Wisby PC")
    await county.say(clerk_admin, council, '!group register name="Wisby Parish Council" '
                                           "type=parish-council area=Wisby themes=community "
                                           "size=small")
    assert topic() == ("Wisby: coordination room of Wisby Parish Council (G1), with the groups' "
                       "representatives.")
    assert await councils.sync_topics(county.app) == 0  # in line: nothing sent again
    await county.say(clerk_admin, council, '!group set name="Wisby Town Council"')
    assert "Wisby Town Council (G1)" in (topic() or "")
    await county.say(clerk_admin, council, "!group unregister")
    assert topic() == ("Wisby: coordination room for the groups' representatives. No parish "
                       "council has registered yet (!group register type=parish-council).")


async def test_the_sweep_sets_a_topic_a_crash_missed() -> None:
    assert councils.wanted_topic("Wisby", [], None) is None
    named = councils.wanted_topic("Wisby", [("G3", "Wisby PC")], None)
    assert named == "Wisby: coordination room of Wisby PC (G3), with the groups' representatives."
    assert councils.wanted_topic("Wisby", [("G3", "Wisby PC")], named) is None
    assert (councils.wanted_topic("Wisby", [], named) or "").startswith("Wisby: coordination "
                                                                        "room for the groups'")


# -- reach in targeting -----------------------------------------------------------------


def test_a_wider_reach_makes_a_group_eligible_for_notices_anywhere_it_works(
    tmp_path: Path,
) -> None:
    areas = AreaIndex.load(write_test_areas(tmp_path / "areas.csv"))
    wisby, march, hill_upton = "E04900001", "E04900002", "E04900004"

    def fits(reach: str, notice_area: str) -> bool:
        group = targeting.GroupFacts(1, "!g:x", wisby, ("food",), "charity", "small",
                                     reach_area=targeting.reach_area(areas, wisby, reach))
        return targeting.group_fits(targeting.NoticeFacts(areas=(notice_area,)), group,
                                    areas.contains)

    assert [fits("locality", a) for a in (wisby, march, hill_upton)] == [True, False, False]
    assert [fits("district", a) for a in (wisby, march, hill_upton)] == [True, True, False]
    assert [fits("county", a) for a in (wisby, march, hill_upton)] == [True, True, True]
    assert targeting.reach_area(areas, wisby, "county") == "E10900001"
    assert targeting.reach_area(areas, wisby, "district") == "E07900001"


async def test_a_county_wide_group_gets_a_notice_for_one_of_its_localities(
    county: BotWorld,
) -> None:
    food, gail, _ = await group_room(county)
    await county.say(gail, food, '!group register name="Testshire Food Network" type=charity '
                                 "area=Wisby themes=food size=medium reach=county")
    coord = await office_of(county, COORDINATOR)
    [posted] = await county.say(
        COORDINATOR, coord, '!funding post title="Hillside pantry fund" funder="Hill Trust" '
        "deadline=2026-12-20 areas=E04900004 themes=food url=https://hill.example/fund")
    assert "F1" in posted
    await county.deliver()
    assert any("Hillside pantry fund" in m
               for m in county.world.messages(food, sender=county.bot))


# -- introductions as collaboration evidence --------------------------------------------


async def test_an_accepted_introduction_counts_in_collab_impact(county: BotWorld) -> None:
    food, gail, _ = await group_room(county)
    await county.say(gail, food, '!group register name="Wisby Food Bank" type=charity '
                                 "area=Wisby themes=food size=small")
    youth = await registered_room(county, gail, "youth", 'name="Wisby Youth Club" type=club '
                                  "area=Wisby themes=youth size=micro")
    [before] = await county.say(gail, food, "!collab impact")
    assert before.startswith("No collaboration recorded")
    await county.say(gail, food, '!directory contact G2 message="Share a van?"')
    await county.say(gail, youth, "!directory accept I1")
    [after] = await county.say(gail, food, "!collab impact")
    assert after.splitlines()[:2] == [
        "Collaboration in Testshire: 1 records between 2 groups.",
        "Introductions accepted 1.",
    ]
