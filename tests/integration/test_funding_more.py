"""Funding on a real Synapse, the parts the in-process world alone had shown: a malformed
feed is reported and harms nothing, a daily digest arrives the next morning once, and bad
input typed in a room gets one clear line and changes no row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import test_funding
from aiohttp import web
from aiohttp.test_utils import TestServer
from botfixture import BotFactory, RunningBot
from people import Person
from sqlalchemy import func, select
from test_funding import FEEDS, FENLAND_FOOD, WAIT, command, group_rooms, notices, said_in

from bot.features import funding_jobs
from storage.funding import FundingDelivery, FundingNotice, FundingSource, FundingSubscription
from tests.clocks import ManualClock, next_london
from tests.unit.test_funding_feeds import FeedServer, long_feed

people = test_funding.people  # Ada runs the group rooms, Cora coordinates
ROWS = (FundingNotice, FundingSubscription, FundingSource, FundingDelivery)


@pytest.fixture
async def broken_feed() -> AsyncIterator[str]:
    """A feed address that answers 200 with an nginx error page in place of RSS."""
    data = (FEEDS / "broken-feed.xml").read_bytes()

    async def serve(request: web.Request) -> web.Response:
        response = web.Response(body=data, content_type="application/rss+xml")
        response.force_close()  # no idle keep-alive to wait for when the server stops
        return response

    app = web.Application()
    app.router.add_get("/feed.xml", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/feed.xml"))
    await server.close()


async def start(bot_factory: BotFactory, people: tuple[Person, Person],
                rooms: int) -> tuple[RunningBot, Person, Person, list[str]]:
    """A bot, Ada (admin of ``rooms`` group rooms) and Cora (a coordinator, member of each)."""
    bot = await bot_factory()
    organiser, cora = people
    bot.app.settings.roles.coordinators.append(cora.user_id)
    return bot, organiser, cora, await group_rooms(organiser, cora, bot, rooms)


async def row_counts(bot: RunningBot) -> list[int]:
    async with bot.app.db.transaction() as session:
        return [int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in ROWS]


async def bot_lines(person: Person, room: str, bot: RunningBot, since: str) -> list[str]:
    """Bodies of the bot's messages in the room after the event ``since``."""
    events = await person.messages(room, limit=100)
    start = next(i for i, e in enumerate(events) if e.get("event_id") == since)
    return [str(e["content"]["body"]) for e in events[start + 1:]
            if e.get("type") == "m.room.message" and e.get("sender") == bot.user_id]


async def test_a_malformed_feed_is_reported_in_one_line_and_the_bot_carries_on(
    bot_factory: BotFactory, people: tuple[Person, Person], broken_feed: str
) -> None:
    bot, _, cora, [lobby] = await start(bot_factory, people, 1)
    await command(cora, lobby, bot, f"!funding source add {broken_feed}", "S1 added")

    assert await funding_jobs.poll_feeds(bot.app, bot.app.clock.now()) == 0
    report = await command(cora, lobby, bot, "!funding sources", "S1")
    assert report.startswith(f"S1 {broken_feed}: failing (1x): not a readable RSS or Atom feed")
    assert "\n" not in report
    assert (await row_counts(bot))[0] == 0  # no notice came of it
    listed = await command(cora, lobby, bot, "!funding list", "No open funding notices")
    assert listed == "No open funding notices match."


async def test_a_daily_digest_names_the_notice_the_next_morning_once(
    bot_factory: BotFactory, people: tuple[Person, Person], wall: datetime
) -> None:
    bot = await bot_factory(clock=ManualClock(wall, ticking=True))
    organiser, cora = people
    bot.app.settings.roles.coordinators.append(cora.user_id)
    group, lobby = await group_rooms(organiser, cora, bot, 2)
    afternoon = next_london(wall, 14)
    bot.advance_to(afternoon)
    await command(organiser, group, bot, "!funding subscribe digest=daily", "Subscribed")
    published = await command(cora, lobby, bot, FENLAND_FOOD, "F1 published")
    assert published == "F1 published: going to 0 rooms now, 1 digests."

    async def digests_at(moment: datetime, expect: int) -> list[str]:
        bot.advance_to(moment)
        await funding_jobs.sweep(bot.app)
        bot.app.queued()
        return await said_in(organiser, group, "Funding digest", expect)

    assert await digests_at(afternoon + timedelta(minutes=5), 0) == []
    assert await notices(organiser, group, "F1") == []  # nothing at once, either
    morning = next_london(afternoon, 8)  # the digest hour, London time
    assert await digests_at(morning - timedelta(minutes=1), 0) == []
    [digest] = await digests_at(morning, 1)
    assert digest.splitlines()[0] == "Funding digest: 1 new notices"
    assert digest.splitlines()[1].startswith("F1 Food Fund (Trust)")
    assert len(await digests_at(morning + timedelta(minutes=5), 1)) == 1


# Each bad input, who types it, and the phrase its one-line answer must contain.
BAD_INPUTS = [
    ("cora", FENLAND_FOOD.replace("+30d", "2026-02-30"), "deadline: There is no 30 February"),
    ("cora", FENLAND_FOOD.replace("https://example.org/food", "example"),
     "url: should be a web link"),
    ("cora", FENLAND_FOOD + " colour=red", "colour= is not an option of !funding post"),
    ("cora", FENLAND_FOOD.replace("500-5000", "lots"), "amount: should be an amount or a range"),
    ("cora", "!funding approve F99", "There is no notice F99"),
    ("ada", "!funding approve F1", "needs the coordinator or moderator role"),
    ("ada", "!funding subscribe digest=hourly", "digest: should be one of instant, daily, weekly"),
    ("ada", "!funding subscribe min=5000 max=100", "min is more than max"),
]


async def test_bad_funding_input_typed_in_a_room_gets_one_clear_line_and_changes_nothing(
    bot_factory: BotFactory, people: tuple[Person, Person]
) -> None:
    bot, organiser, cora, [group] = await start(bot_factory, people, 1)
    held = await command(organiser, group, bot, FENLAND_FOOD, "F1 is held")
    assert held.startswith("F1 is held for approval")
    await command(organiser, group, bot, "!funding subscribe", "Subscribed")
    before = await row_counts(bot)
    assert before[:2] == [1, 1]

    by_name = {"ada": organiser, "cora": cora}
    first = ""
    for who, text, says in BAD_INPUTS:
        sent = await by_name[who].send(group, text)
        first = first or sent
        await by_name[who].wait_for_message(group, sender=bot.user_id, contains=says,
                                            timeout=WAIT)
    await asyncio.sleep(1.0)  # a second answer to anything would have arrived by now
    replies = await bot_lines(organiser, group, bot, first)
    assert len(replies) == len(BAD_INPUTS), replies
    for reply, (_, _, says) in zip(replies, BAD_INPUTS, strict=True):
        assert says in reply and "\n" not in reply, reply
    assert await row_counts(bot) == before


async def test_a_long_chunked_feed_is_read_whole_into_held_notices(
    bot_factory: BotFactory, people: tuple[Person, Person]
) -> None:
    bot, _, cora, [lobby] = await start(bot_factory, people, 1)
    async with FeedServer() as server:
        server.files["long"] = long_feed(400, 500_000)
        server.chunked.add("long")
        await command(cora, lobby, bot, f"!funding source add {server.url('long')}", "S1 added")
        assert await funding_jobs.poll_feeds(bot.app, bot.app.clock.now()) == 400
    report = await command(cora, lobby, bot, "!funding sources", "S1")
    assert report.endswith("ok, 400 items held so far")
    async with bot.app.db.transaction() as session:
        held = await session.scalars(select(FundingNotice.title))
        assert {str(t) for t in held} == {f"Community Grant {i}" for i in range(1, 401)}
    # Cora approves: one direct message for the batch, not four hundred.
    dm = await cora.wait_for_invite(joined=True)
    told = await cora.wait_for_message(dm, sender=bot.user_id, contains="wait for approval",
                                       since=0, timeout=WAIT)
    assert str(told["content"]["body"]).startswith("400 funding notices wait for approval:")
    await asyncio.sleep(1.0)  # a second message would have arrived by now
    assert len([e for e in await cora.messages(dm, limit=50)
                if e.get("type") == "m.room.message" and e.get("sender") == bot.user_id]) == 1
