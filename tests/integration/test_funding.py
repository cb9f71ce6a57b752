"""Funding notices on a real Synapse: forty rooms hear exactly what they should, once, even
when the bot dies in the middle of a broadcast; a feed item is held, approved and delivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botfixture import BotFactory, RunningBot, free_port
from people import Person

from bot.features import funding_jobs
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from storage import funding, groups
from storage.tree import TreeRoom
from tests.clocks import ManualClock, london

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
WISBECH, CHATTERIS, ABBEY, FENLAND, CAMBRIDGE = (
    "E04001668", "E04012516", "E05013050", "E07000010", "E07000008")
FENLAND_FOOD = ('!funding post https://example.org/food title="Food Fund" funder="Trust" '
                "deadline=+30d amount=500-5000 areas=fenland themes=food "
                "eligibility=charity,unregistered-group size=micro,small")
WAIT = 30.0


@pytest.fixture
async def people(person_factory: Any, synapse: EmbeddedSynapse,
                 synapse_admin: RegisteredUser) -> tuple[Person, Person]:
    """Ada runs many groups' rooms and Cora coordinates; Synapse lets them join forty quickly."""
    made: list[Person] = []
    for name in ("Ada", "Cora"):
        person: Person = await person_factory(name, e2e=False)
        await synapse.override_ratelimit(person.user_id, synapse_admin.access_token)
        made.append(person)
    return made[0], made[1]


async def group_rooms(ada: Person, member: Person, bot: RunningBot, count: int) -> list[str]:
    """Rooms Ada created (so she is their admin) with the bot and one more member in each."""
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with gate:
            room = await ada.create_room(name=f"Group {i}", invite=[bot.user_id, member.user_id])
            await member.join(room)
            return room

    rooms = list(await asyncio.gather(*(one(i) for i in range(count))))
    for room in rooms:
        await ada.wait_for_message(room, sender=bot.user_id, contains="never what anyone writes",
                                   timeout=WAIT)
    return rooms


async def command(person: Person, room: str, bot: RunningBot, text: str, expect: str) -> str:
    await person.send(room, text)
    event = await person.wait_for_message(room, sender=bot.user_id, contains=expect, timeout=WAIT)
    return str(event["content"]["body"])


async def notices(person: Person, room: str, ref: str) -> list[dict[str, Any]]:
    return [e for e in await person.messages(room, limit=100)
            if e.get("type") == "m.room.message"
            and str(e["content"].get("body", "")).startswith(f"Funding {ref}:")]


async def said_in(person: Person, room: str, start: str, expect: int) -> list[str]:
    """Bodies starting with ``start`` in the room once ``expect`` have come (polled up to
    WAIT), and a second more, so that one too many (or one early) would show."""

    async def bodies() -> list[str]:
        return [str(e["content"]["body"]) for e in await person.messages(room, limit=50)
                if str(e.get("content", {}).get("body", "")).startswith(start)]

    deadline = time.monotonic() + WAIT
    found = await bodies()
    while len(found) < expect and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await bodies()
    await asyncio.sleep(1.0)
    return await bodies()


async def until_delivered(bot: RunningBot, notice_id: int, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        await funding_jobs.sweep(bot.app)
        async with bot.app.db.transaction() as session:
            sent = [d for d in await funding.deliveries(session, notice_id) if d.event_id]
        if len(sent) >= count:
            return
        assert time.monotonic() < deadline, f"{len(sent)} of {count} delivered"
        await asyncio.sleep(0.2)


async def setup_forty(bot: RunningBot, ada: Person, rooms: list[str]) -> set[int]:
    """Mixed subscriptions (some typed, some stored), profiles and tree rooms; who should hear."""
    typed = {0: "", 1: "areas=wisbech", 3: "themes=food,youth", 7: "themes=arts",
             8: "min=10000", 36: "digest=daily"}
    for index, options in typed.items():
        await command(ada, rooms[index], bot, f"!funding subscribe {options}".strip(),
                      "Subscribed")
    stored: dict[int, dict[str, Any]] = {2: {}, 4: {"min_award": 1000}, 5: {"max_award": 10_000},
              6: {"areas": [CAMBRIDGE]}, 9: {"sizes": ["large"]}}
    now = bot.app.clock.now()
    async with bot.app.db.transaction() as session:
        for index, fields in stored.items():
            await funding.subscribe(session, rooms[index], **{
                "areas": [], "themes": [], "sizes": [], "digest": "instant", "reminders": True,
                "created_by": ada.user_id, "created_at": now, **fields})
        profiles = {10: (WISBECH, ["food"], "charity", "small", True),
                    11: (CHATTERIS, ["food"], "unregistered-group", "micro", True),
                    12: (ABBEY, ["food"], "charity", "small", True),
                    13: (WISBECH, ["arts"], "charity", "small", True),
                    14: (WISBECH, ["food"], "cic", "small", True),
                    15: (WISBECH, ["food"], "charity", "large", True),
                    16: (WISBECH, ["food"], "charity", "small", False),
                    7: (WISBECH, ["food"], "charity", "small", True)}
        for index, (area, themes, kind, size, contact) in profiles.items():
            session.add(groups.Group(room_id=rooms[index], name=f"G{index}", type=kind,
                                     area_code=area, themes=themes, size=size, contact=contact,
                                     registered_by=ada.user_id, registered_at=now))
        tree = {30: (WISBECH, None, "locality"), 31: (ABBEY, None, "locality"),
                32: ("E47000008", "food", "function"), 33: ("E47000008", "arts", "function"),
                34: (CAMBRIDGE, "food", "function")}
        for index, (area, theme, kind) in tree.items():
            session.add(TreeRoom(key=f"k{index}", room_id=rooms[index], alias=f"#k{index}:x",
                                 kind=kind, area_code=area, theme=theme, name=f"T{index}",
                                 created_at=now))
    return {0, 1, 2, 3, 4, 5, 7, 10, 11, 30, 32}


async def test_forty_rooms_get_the_right_notice_once_and_its_link_counts_opens(
    bot_factory: BotFactory, people: tuple[Person, Person]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = await bot_factory(web={"listen": f"127.0.0.1:{port}", "base_url": base})
    organiser, cora = people
    bot.app.settings.roles.coordinators.append(cora.user_id)
    rooms = await group_rooms(organiser, cora, bot, 40)
    expected = await setup_forty(bot, organiser, rooms)

    reply = await command(cora, rooms[39], bot, FENLAND_FOOD, "F1 published")
    assert reply == f"F1 published: going to {len(expected)} rooms now, 1 digests."
    await until_delivered(bot, 1, len(expected))
    await asyncio.sleep(1.0)  # anything extra would have arrived by now
    for index, room in enumerate(rooms):
        got = await notices(organiser, room, "F1")
        assert len(got) == (1 if index in expected else 0), (index, got)
        if got:
            assert got[0]["content"]["msgtype"] == "m.text"

    # The link in room 0 goes through the bot's web server and counts one open there.
    [event] = await notices(organiser, rooms[0], "F1")
    link = event["content"]["body"].splitlines()[-1]
    assert link.startswith(f"{base}/n/F1/")
    async with aiohttp.ClientSession() as http, http.get(link, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "https://example.org/food"
    async with bot.app.db.transaction() as session:
        opens = {d.room_id: d.opens for d in await funding.deliveries(session, 1)}
    assert opens[rooms[0]] == 1 and sum(opens.values()) == 1


async def test_a_bot_killed_mid_broadcast_delivers_the_rest_after_restart_without_duplicates(
    bot_factory: BotFactory, people: tuple[Person, Person]
) -> None:
    bot = await bot_factory()
    organiser, cora = people
    bot.app.settings.roles.coordinators.append(cora.user_id)
    rooms = await group_rooms(organiser, cora, bot, 12)
    now = bot.app.clock.now()
    async with bot.app.db.transaction() as session:
        for room in rooms:
            await funding.subscribe(session, room, areas=[], themes=[], sizes=[],
                                    digest="instant", reminders=True,
                                    created_by=organiser.user_id, created_at=now)
    assert bot.service is not None and bot.service.worker is not None
    transport: Any = bot.service.worker.transport
    real_send = transport.send
    sent: list[str] = []

    async def dying_send(room_id: str, content: Any, **kw: Any) -> str:
        event_id: str = await real_send(room_id, content, **kw)
        if str(content.get("body", "")).startswith("Funding F1"):
            sent.append(room_id)
            if len(sent) == 5:
                # Sent, but the process freezes before recording it, and is then stopped.
                await asyncio.Event().wait()
        return event_id

    transport.send = dying_send
    await cora.send(rooms[0], FENLAND_FOOD.replace(" eligibility=charity,unregistered-group "
                                                   "size=micro,small", ""))
    deadline = time.monotonic() + WAIT
    while len(sent) < 5:
        assert time.monotonic() < deadline, "the broadcast never started"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    delivered_before = [r for r in rooms if await notices(organiser, r, "F1")]
    assert len(delivered_before) == 5

    await bot.restart()
    await until_delivered(bot, 1, len(rooms))
    await asyncio.sleep(1.0)
    for room in rooms:
        assert len(await notices(organiser, room, "F1")) == 1, room


@pytest.fixture
async def feed_server() -> AsyncIterator[str]:
    app = web.Application()
    data = (FEEDS / "community-foundation-rss2.xml").read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="application/rss+xml")

    app.router.add_get("/feed.xml", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/feed.xml"
    await runner.cleanup()


async def test_a_feed_item_is_held_approved_and_delivered(
    bot_factory: BotFactory, people: tuple[Person, Person], feed_server: str
) -> None:
    bot = await bot_factory()
    organiser, cora = people
    bot.app.settings.roles.coordinators.append(cora.user_id)
    [lobby, group] = await group_rooms(organiser, cora, bot, 2)
    await command(cora, lobby, bot, f"!funding source add {feed_server} areas=fenland "
                  "themes=food", "S1 added")
    await command(organiser, group, bot, "!funding subscribe areas=wisbech", "Subscribed")
    assert await funding_jobs.poll_feeds(bot.app, bot.app.clock.now()) == 3
    waiting = await command(cora, lobby, bot, "!funding list", "Waiting for your approval")
    assert waiting.endswith("Waiting for your approval: F1, F2, F3")
    refused = await command(organiser, lobby, bot, "!funding approve F1", "needs the")
    assert "coordinator or moderator role" in refused
    await command(cora, lobby, bot, "!funding approve F1", "F1 approved")
    notice = await organiser.wait_for_message(group, sender=bot.user_id, contains="Funding F1",
                                              timeout=WAIT)
    assert notice["content"]["body"].splitlines()[0] == (
        "Funding F1: Warm Spaces Fund 2026/27 (Fens Community Foundation)")
    sources = await command(cora, lobby, bot, "!funding sources", "S1")
    assert sources.endswith("ok, 3 items held so far")


@pytest.mark.parametrize("change", [date(2026, 3, 29), date(2026, 10, 25)],
                         ids=["spring-forward", "fall-back"])
async def test_reminders_reach_the_room_at_nine_london_time_across_the_clock_change(
    bot_factory: BotFactory, people: tuple[Person, Person], change: date
) -> None:
    # The week's reminder falls before the clocks change, the last day's after.
    deadline = change + timedelta(days=5)
    week_before, day_before = (london(deadline - timedelta(days=n), 9) for n in (7, 1))
    assert week_before.hour != day_before.hour  # 09:00 London is a different UTC hour
    bot = await bot_factory(clock=ManualClock(london(deadline - timedelta(days=29), 10),
                                              ticking=True))
    organiser, cora = people
    bot.app.settings.roles.coordinators.append(cora.user_id)
    [group] = await group_rooms(organiser, cora, bot, 1)
    await command(organiser, group, bot, "!funding subscribe", "Subscribed")
    await command(cora, group, bot, FENLAND_FOOD.replace("+30d", deadline.isoformat()),
                  "F1 published")

    async def reminders_at(moment: datetime, expect: int) -> list[str]:
        """The reminders in the room once ``expect`` have arrived (or WAIT has passed)."""
        bot.advance_to(moment)
        await funding_jobs.sweep(bot.app)
        bot.app.queued()
        return await said_in(organiser, group, "Reminder", expect)

    minute = timedelta(minutes=1)
    assert await reminders_at(week_before - minute, 0) == []
    [week] = await reminders_at(week_before, 1)
    assert f"closes in 7 days ({deadline:%a} {deadline.day} {deadline:%b %Y})" in week
    assert len(await reminders_at(day_before - minute, 1)) == 1
    [_, day] = await reminders_at(day_before, 2)
    assert "closes tomorrow" in day
