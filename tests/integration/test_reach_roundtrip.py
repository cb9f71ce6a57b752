"""The reach model on a real Synapse: intake keeps no message text anywhere, and a notice's
whole round trip (posted, replied to, reacted to, read, passed on) ends in `!reach report`
showing observed against predicted, with a chart."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botfixture import BotFactory, RunningBot, free_port
from people import Person
from sqlalchemy import func, select

from bot.features import intake, reach_network
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from storage import funding, groups
from storage.flow import FlowEvent, FlowReceipts
from tests.at_rest import stored_bytes

WISBECH, CHATTERIS, ABBEY = "E04001668", "E04012516", "E05013050"
WAIT = 30.0
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SYNAPSE_PREVIEW = "Synapse (bot; +https://github.com/matrix-org/synapse)"  # its URL previewer
POST = ('!funding post https://example.org/food title="Food Fund" funder="Trust" '
        "deadline=+30d areas=fenland themes=food")


@pytest.fixture
async def people(person_factory: Any, synapse: EmbeddedSynapse,
                 synapse_admin: RegisteredUser) -> dict[str, Person]:
    made = {}
    for name in ("Ada", "Mo", "Bea", "Cora"):
        person: Person = await person_factory(name, e2e=False)
        await synapse.override_ratelimit(person.user_id, synapse_admin.access_token)
        made[name] = person
    return made


async def group_room(ada: Person, others: list[Person], bot: RunningBot, name: str) -> str:
    room = await ada.create_room(name=name, invite=[bot.user_id, *(p.user_id for p in others)])
    for person in others:
        await person.join(room)
    await ada.wait_for_message(room, sender=bot.user_id, contains="never what anyone writes",
                               timeout=WAIT)
    return room


async def open_dm(person: Person, bot: RunningBot) -> str:
    room = await person.create_dm(bot.user_id, encrypted=False)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = await person.state(room, "m.room.member", bot.user_id)
        if state and state.get("membership") == "join":
            return room
        await asyncio.sleep(0.25)
    raise AssertionError("the bot did not join the DM")


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def flow_count(bot: RunningBot, model: Any) -> int:
    async with bot.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_intake_keeps_no_message_text_in_the_database_or_the_logs(
    bot: RunningBot, people: dict[str, Person], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # production's level (nio's debug log is off there too)
    for name in ("bot", "grapevine", "storage", "reach"):
        caplog.set_level(logging.DEBUG, logger=name)
    ada, mo = people["Ada"], people["Mo"]
    room = await group_room(ada, [mo], bot, "Wisbech Pantry")
    marker = f"marker-{uuid.uuid4().hex}"
    first = await mo.send(room, f"Anyone free Saturday? {marker}")
    await ada.send(room, f"Yes! {marker}", reply_to=first)
    await ada.react(room, first, "👍")
    dm = await open_dm(mo, bot)
    await mo.send(dm, f"a private word {marker}")

    async def recorded() -> bool:
        return await flow_count(bot, FlowEvent) >= 3

    await until(recorded, "three flow records")
    async with bot.app.db.transaction() as session:
        kinds = [(e.room_id, e.kind) for e in await session.scalars(
            select(FlowEvent).order_by(FlowEvent.at, FlowEvent.id))]
    assert kinds == [(room, "message"), (room, "reply"), (room, "reaction")]
    data_dir: Path = bot.setup.data_dir
    await intake.stop(bot.app)
    on_sqlite = bot.app.db.dialect == "sqlite"
    if not on_sqlite:  # the tables, where the SQLite engine's data is in the data directory
        assert marker.encode() not in await stored_bytes(bot.app.db)
    await bot.stop()  # checkpoints SQLite's write-ahead log into the file
    stored = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "grapevine.db" for p in stored) == on_sqlite
    assert not [p for p in stored if marker.encode() in p.read_bytes()]
    assert caplog.records and marker not in caplog.text


async def test_a_notice_round_trip_ends_in_a_report_of_observed_against_predicted(
    bot_factory: BotFactory, people: dict[str, Person],
) -> None:
    ada, mo, bea, cora = (people[n] for n in ("Ada", "Mo", "Bea", "Cora"))
    port = free_port()
    bot = await bot_factory(roles={"coordinators": [cora.user_id]},
                            web={"listen": f"127.0.0.1:{port}",
                                 "base_url": f"http://127.0.0.1:{port}"})
    rooms = {}
    for name, area in (("Wisbech Pantry", WISBECH), ("Chatteris Larder", CHATTERIS),
                       ("Abbey Kitchen", ABBEY)):
        rooms[name] = await group_room(ada, [mo, bea], bot, name)
        async with bot.app.db.transaction() as session:
            session.add(groups.Group(room_id=rooms[name], name=name, type="charity",
                                     area_code=area, themes=["food"], size="small",
                                     registered_by=ada.user_id, registered_at=bot.app.clock.now()))
    for room in rooms.values():
        await mo.send(room, "morning all")
    dm = await open_dm(cora, bot)
    await cora.send(dm, POST)
    await cora.wait_for_message(dm, sender=bot.user_id, contains="F1 published", timeout=WAIT)
    # The Fenland rooms get it. In Wisbech people reply, react, read it and open its link
    # (twice: one visit); in Chatteris only link previewers fetch it, which is no one's trace.
    # Someone passes it on to Abbey.
    posts = {name: await mo.wait_for_message(rooms[name], sender=bot.user_id,
                                             contains="Funding F1", timeout=WAIT)
             for name in ("Wisbech Pantry", "Chatteris Larder")}
    wisbech = posts["Wisbech Pantry"]
    await mo.send(rooms["Wisbech Pantry"], "We should apply", reply_to=wisbech["event_id"])
    await bea.react(rooms["Wisbech Pantry"], wisbech["event_id"], "🎉")
    await bea.read_receipt(rooms["Wisbech Pantry"], wisbech["event_id"])
    links = {name: str(post["content"]["body"]).splitlines()[-1] for name, post in posts.items()}
    async with aiohttp.ClientSession() as http:
        for name, agent, method in (
                ("Wisbech Pantry", FIREFOX, "GET"), ("Wisbech Pantry", FIREFOX, "GET"),
                ("Wisbech Pantry", SYNAPSE_PREVIEW, "GET"),
                ("Chatteris Larder", SYNAPSE_PREVIEW, "GET"),
                ("Chatteris Larder", "WhatsApp/2.23.20.0", "GET"),
                ("Chatteris Larder", FIREFOX, "HEAD")):
            async with http.request(method, links[name], headers={"User-Agent": agent},
                                    allow_redirects=False) as response:
                assert response.status == 302
    await bea.send(rooms["Abbey Kitchen"], "F1 is open to Fenland groups, pass it on")

    async def observed() -> bool:
        return (await flow_count(bot, FlowEvent) >= 3 + 3
                and await flow_count(bot, FlowReceipts) >= 1)

    await until(observed, "the reply, reaction, receipt and the forward in the flow records")
    async with bot.app.db.transaction() as session:
        opens = {d.room_id: d.opens for d in await funding.deliveries(session, 1)}
        signals = await reach_network.signals(session, 1)
    assert opens == {rooms["Wisbech Pantry"]: 1, rooms["Chatteris Larder"]: 0}
    # What the report counts: rooms with a person's trace. Wisbech and Abbey, not Chatteris.
    assert {s.room for s in signals if s.any} == {rooms["Wisbech Pantry"], rooms["Abbey Kitchen"]}
    await cora.send(dm, "!reach report F1")
    chart = await cora.wait_for_message(dm, sender=bot.user_id, contains="Reached = a room",
                                        timeout=WAIT)
    assert chart["content"]["msgtype"] == "m.image"
    assert chart["content"]["info"]["mimetype"] == "image/png"
    assert str(chart["content"]["url"]).startswith("mxc://")
    text = chart["content"]["body"]
    assert text.startswith("F1: Reached = a room that got the notice")
    assert "(link previews and repeat opens are not counted)" in text
    total = next(line for line in text.splitlines() if line.startswith("All rooms:"))
    # Few rooms: the interval says the chance it holds when no interval holds just 90%.
    assert total.startswith("All rooms: predicted <5 (<5-<5, 90% interval")
    assert total.endswith("), observed <5")
    assert "Fenland: predicted <5" in text and "Districts inside their intervals at" in text
    async with bot.app.db.transaction() as session:
        reads = list(await session.scalars(select(FlowReceipts)))
    assert [r.count for r in reads] == [1]
    # Stamped by the bot's clock when the receipts were counted, not by the wall's.
    now = bot.app.clock.now()
    assert all(now - timedelta(minutes=10) < r.last_at <= now for r in reads)


async def test_the_report_reads_per_imd_band_and_says_whether_the_model_held_lately(
    bot_factory: BotFactory, people: dict[str, Person],
) -> None:
    """Five food groups in Wisbech (IMD 3) and one in Chatteris (IMD 5) get F1; someone
    reacts in every Wisbech room and no one in Chatteris. The report's IMD bands say so;
    F2's report checks F1's interval (forecast from what was known before F1) against it."""
    ada, mo, cora = (people[n] for n in ("Ada", "Mo", "Cora"))
    bot = await bot_factory(roles={"coordinators": [cora.user_id]})
    rooms = {}
    for name, area in [(f"Wisbech Larder {i}", WISBECH) for i in range(1, 6)] + [
            ("Chatteris Larder", CHATTERIS)]:
        rooms[name] = await group_room(ada, [mo], bot, name)
        async with bot.app.db.transaction() as session:
            session.add(groups.Group(room_id=rooms[name], name=name, type="charity",
                                     area_code=area, themes=["food"], size="small",
                                     registered_by=ada.user_id, registered_at=bot.app.clock.now()))
    dm = await open_dm(cora, bot)
    await cora.send(dm, POST)
    await cora.wait_for_message(dm, sender=bot.user_id, contains="F1 published", timeout=WAIT)
    for name, room in rooms.items():
        post = await mo.wait_for_message(room, sender=bot.user_id, contains="Funding F1",
                                         timeout=WAIT)
        if name.startswith("Wisbech"):
            await mo.react(room, post["event_id"], "👍")

    async def reacted() -> bool:
        return await flow_count(bot, FlowEvent) >= 5

    await until(reacted, "the five reactions in the flow records")
    await cora.send(dm, "!reach report F1")
    report = await cora.wait_for_message(dm, sender=bot.user_id, contains="Reached = a room",
                                         timeout=WAIT)
    lines = str(report["content"]["body"]).splitlines()
    [bands] = [line for line in lines if line.startswith("By deprivation")]
    # Wisbech's five rooms all left a trace; Chatteris's one did not. Nothing else is banded.
    # With nothing known yet (the prior) any count of Wisbech's five is as likely (1 in 6):
    # no interval holds 90%, the nearest leaves one count out (83%), and the report says so.
    # Chatteris's one room is 0 or 1, half and half: a 90% range must hold both.
    assert "IMD 1-3: predicted <5 (<5-5, 83% chance), observed 5 [in]" in bands
    assert "IMD 4-7: predicted <5 (<5-<5, over 99% chance), observed <5 [in]" in bands
    assert "IMD 8-10" not in bands
    assert lines[-1] == "No earlier notices yet to check the model's 90% interval against."
    await cora.send(dm, POST.replace("Food Fund", "Food Fund Two").replace("/food", "/food-two"))
    await cora.wait_for_message(dm, sender=bot.user_id, contains="F2 published", timeout=WAIT)
    await cora.send(dm, "!reach report F2")
    second = await cora.wait_for_message(dm, sender=bot.user_id, contains="F2: Reached = a room",
                                         timeout=WAIT)
    # Before F1 nothing was known (the prior): its interval for six rooms held the five.
    assert str(second["content"]["body"]).splitlines()[-1] == (
        "The model's 90% interval held in 1 of the last 1 notice(s); a right model would hold "
        "in about 1.")
