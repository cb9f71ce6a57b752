"""Venues, hubs and parish councils on a real Synapse: venues added and found by area and
capacity, a hub in the reach graph the reach commands build, and a locality room whose
topic names the parish council that registered for it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from botfixture import BotFactory, bring_bot_in
from conftest import PersonFactory
from people import Person
from sqlalchemy import func, select
from test_rooms import alias_room

from bot.features import hub_sheets, reach_network
from bot.features.reach_network import hub_key
from reach.graph import ARC_KINDS
from storage.models import OutboxMessage
from tests.small_county import write_test_areas

WISBY = "E04900001"
WAIT = 60


async def answer(person: Person, room: str, bot_id: str, text: str,
                 expect: str) -> dict[str, Any]:
    await person.send(room, text)
    event: dict[str, Any] = await person.wait_for_message(room, sender=bot_id, contains=expect,
                                                          timeout=WAIT)
    return event


async def said(person: Person, room: str, bot_id: str, text: str, expect: str) -> str:
    return str((await answer(person, room, bot_id, text, expect))["content"]["body"])


async def topic_of(person: Person, room: str, contains: str) -> str:
    """The room's topic as a member reads it, once it contains ``contains``."""
    topic = ""
    for _ in range(WAIT * 4):
        topic = str((await person.state(room, "m.room.topic") or {}).get("topic", ""))
        if contains in topic:
            return topic
        await asyncio.sleep(0.25)
    raise AssertionError(f"topic never said {contains!r}; last: {topic!r}")


async def test_venues_are_found_a_hub_joins_the_reach_graph_and_the_council_names_its_room(
    bot_factory: BotFactory, person_factory: PersonFactory, tmp_path: Path,
) -> None:
    ada = await person_factory("Ada", e2e=False)
    clerk = await person_factory("Wisby clerk", e2e=False)
    gail = await person_factory("Gail", e2e=False)
    tag = uuid.uuid4().hex[:6]
    bot = await bot_factory(
        roles={"admins": [ada.user_id], "coordinators": [ada.user_id],
               "moderators": {WISBY: [clerk.user_id]}},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv", tag))})
    bot_id = bot.user_id
    office = await bring_bot_in(ada, bot, "Council office")
    await said(ada, office, bot_id, "!rooms setup area=Wisby", "Rooms for Wisby")

    # The clerk's council registers for Wisby: the Wisby room's topic names it.
    council = await bring_bot_in(clerk, bot, "Wisby Parish Council")
    await said(clerk, council, bot_id, '!group register name="Wisby Parish Council" '
               "type=parish-council area=Wisby themes=community size=small", "Registered G1")
    for alias in (f"testshire{tag}", f"fenmarsh{tag}", f"fenmarsh{tag}-wisby"):
        await clerk.join(f"#{alias}:{clerk.server_name}")
    wisby_room = await alias_room(clerk, f"fenmarsh{tag}-wisby")
    topic = await topic_of(clerk, wisby_room, "Wisby Parish Council")
    assert topic == ("Wisby: coordination room of Wisby Parish Council (G1), with the groups' "
                     "representatives.")

    food = await bring_bot_in(gail, bot, "Wisby Food Bank")
    await said(gail, food, bot_id, '!group register name="Wisby Food Bank" type=charity '
               "area=Wisby themes=food size=small", "Registered G2")

    # Venues: the clerk lists Wisby's, the admin elsewhere; bad input changes nothing.
    bad = await said(clerk, council, bot_id, '!venue add name="Wisby Village Hall" area=Wisby '
                     "capacity=eighty price=free", "capacity")
    assert "whole number" in bad
    added = await said(clerk, council, bot_id, '!venue add name="Wisby Village Hall" area=Wisby '
                       "capacity=80 price=free accessible=yes hub=yes", "Added P1")
    assert added.splitlines()[0] == ("Added P1 Wisby Village Hall (Wisby): 80 people, free, "
                                     "step-free, community hub.")
    await said(clerk, council, bot_id, '!venue add name="Church room" area=Wisby capacity=20 '
               "price=low contact=church@wisby.example", "Added P2")
    await said(ada, office, bot_id, '!venue add name="Upton Barn" area=E04900004 capacity=200 '
               "price=standard", "Added P3")
    refused = await said(gail, food, bot_id, '!venue add name="Gail\'s shed" area=Wisby '
                         "capacity=5 price=free", "not verified")
    assert refused.startswith("G2 is not verified yet")

    found = await said(gail, food, bot_id, "!venue find area=Fenmarsh capacity=50", "P1")
    assert found == "P1 Wisby Village Hall (Wisby): 80 people, free, step-free, community hub"
    wisby = await said(gail, food, bot_id, "!venue find area=Wisby", "P2")
    assert wisby.splitlines() == [
        "P1 Wisby Village Hall (Wisby): 80 people, free, step-free, community hub",
        "P2 Church room (Wisby): 20 people, low cost; book: church@wisby.example",
    ]
    everywhere = await said(gail, food, bot_id, "!venue find area=all capacity=100", "P3")
    assert everywhere == "P3 Upton Barn (Upton (Hillside)): 200 people, standard rates"
    shown = (await answer(gail, food, bot_id, "!venue show P1", "Community hub"))["content"]
    assert "the notice sheet for Wisby (0 open notices) is attached" in shown["body"]
    assert shown["msgtype"] == "m.file" and shown["info"]["mimetype"] == "application/pdf"
    assert shown["filename"].startswith("funding-wisby-")

    # The hub is an offline node of the graph the reach commands build, tied to Wisby's groups.
    async with bot.app.db.transaction() as session:
        records = await reach_network.load_records(session)
    graph = reach_network.build(records, bot.app.areas).graph
    hub = graph.index[hub_key(1)]
    span = slice(int(graph.indptr[hub]), int(graph.indptr[hub + 1]))
    tied = {graph.keys[int(t)] for t, k in zip(graph.indices[span], graph.arc_kind[span],
                                               strict=True) if ARC_KINDS[int(k)] == "offline"}
    assert {council, food, wisby_room} <= tied
    assert hub_key(3) not in graph.index  # not a hub: a venue only

    # The council leaves: the room no longer names it.
    await said(clerk, council, bot_id, "!group unregister", "unregistered")
    left = await topic_of(clerk, wisby_room, "No parish council has registered yet")
    assert "Wisby Parish Council" not in left


async def test_a_hub_whose_contact_is_an_email_shows_it_and_its_sheet_and_gets_no_dm(
    bot_factory: BotFactory, person_factory: PersonFactory, tmp_path: Path,
) -> None:
    """A hub booked by email: the email is what people are shown, its locality's notice
    sheet comes with ``!venue show``, and the weekly sheet (a DM, for a Matrix contact only)
    is never aimed at an address that is not a Matrix id."""
    ada = await person_factory("Ada", e2e=False)
    clerk = await person_factory("Wisby clerk", e2e=False)
    bot = await bot_factory(
        roles={"coordinators": [ada.user_id], "moderators": {WISBY: [clerk.user_id]}},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv", uuid.uuid4().hex[:6]))})
    bot_id = bot.user_id
    office = await bring_bot_in(ada, bot, "Council office")
    await said(ada, office, bot_id, '!funding post https://example.org/hall title="Hall Fund" '
               "funder=Trust deadline=+30d amount=500-5000 areas=Wisby", "F1 published")
    council = await bring_bot_in(clerk, bot, "Wisby Parish Council")
    added = await said(clerk, council, bot_id, '!venue add name="Wisby Library" area=Wisby '
                       "capacity=30 price=free hub=yes contact=library@wisby.example",
                       "Added P1")
    assert added.splitlines() == [
        "Added P1 Wisby Library (Wisby): 30 people, free, community hub.",
        "As a hub it is tied to Wisby's groups in the reach graph and gets its funding "
        "notice sheet (!venue show P1).",
    ]
    shown = (await answer(ada, office, bot_id, "!venue show P1", "Community hub"))["content"]
    assert shown["body"].splitlines()[:2] == [
        "P1 Wisby Library (Wisby): 30 people, free, community hub.",
        "Book: library@wisby.example.",
    ]
    assert "the notice sheet for Wisby (1 open notice) is attached" in shown["body"]
    assert shown["msgtype"] == "m.file" and shown["info"]["mimetype"] == "application/pdf"
    found = await said(ada, office, bot_id, "!venue find area=Wisby", "P1")
    assert found == ("P1 Wisby Library (Wisby): 30 people, free, community hub; "
                     "book: library@wisby.example")

    # Monday's run sends sheets to hubs with a Matrix contact: none here, nothing queued.
    assert await hub_sheets.send_weekly(bot.app) == 0
    async with bot.app.db.transaction() as session:
        aimed = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.to_user.is_not(None)))
    assert aimed == 0
