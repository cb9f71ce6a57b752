"""Funding feeds served by a local web server: items held once, politely fetched, failures shown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.features import funding_feeds as feeds
from bot.features import funding_jobs
from bot.ratelimit import RateLimiter
from storage import funding
from storage.engine import Database
from storage.funding import FundingNotice
from tests.botworld import BotWorld, bot_world

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
CORA, FEN, MO = "@cora:grapevine.local", "@fen:grapevine.local", "@mo:grapevine.local"


def long_feed(items: int, size: int) -> bytes:
    """An RSS feed of ``items`` open grants, padded to about ``size`` bytes in all."""
    pad = "Grants for community groups in the Fens. " * max(1, size // items // 42)
    body = "".join(
        f"<item><title>Community Grant {i}</title>"
        f"<link>https://fens-funder.example.org/grants/{i}</link><guid>grant-{i}</guid>"
        f"<description>{pad}</description></item>" for i in range(1, items + 1))
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            "<title>Fens Funder - open grants</title><link>https://fens-funder.example.org/</link>"
            f"{body}</channel></rss>").encode()


class FeedServer:
    """Serves the sample feeds with ETags, and remembers what each request asked.

    Names in ``chunked`` are sent with chunked transfer encoding, 16 KB at a time with a
    pause between, as a slow funder's server would: a reader that takes only what has
    arrived so far gets part of the feed.
    """

    def __init__(self) -> None:
        self.files = {
            "rss": (FEEDS / "community-foundation-rss2.xml").read_bytes(),
            "atom": (FEEDS / "national-lottery-atom.xml").read_bytes(),
            "broken": (FEEDS / "broken-feed.xml").read_bytes(),
        }
        self.requests: list[tuple[str, str | None, str | None]] = []
        self.slow = False
        self.chunked: set[str] = set()
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append((name, request.headers.get("If-None-Match"),
                              request.headers.get("If-Modified-Since")))
        if name == "down":
            return web.Response(status=503, text="maintenance")
        if name == "slow" or self.slow:
            await asyncio.sleep(2)
        data = self.files.get(name)
        if data is None:
            return web.Response(status=404)
        etag = f'"{hash(data) & 0xFFFFFFFF:x}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        if name in self.chunked:
            return await self.trickle(request, data, etag)
        return web.Response(body=data, content_type="application/rss+xml",
                            headers={"ETag": etag,
                                     "Last-Modified": "Fri, 20 Nov 2026 09:12:44 GMT"})

    async def trickle(self, request: web.Request, data: bytes, etag: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml",
                                               "ETag": etag})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 16 * 1024):
            await response.write(data[start:start + 16 * 1024])
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    async def __aenter__(self) -> FeedServer:
        app = web.Application()
        app.router.add_get("/{name}.xml", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}.xml"


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as running:
        yield running


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    roles = {"coordinators": [CORA], "moderators": {"fenland": [FEN]}}
    async with bot_world(tmp_path, roles=roles) as bw:
        for name in ("cora", "fen", "mo"):
            bw.world.user(name, name.title())
        bw.app.limiter = RateLimiter(10_000)
        yield bw


async def lobby(bw: BotWorld) -> str:
    room = bw.world.create_room(CORA, name="Coordinators", members=[FEN, MO])
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def held(bw: BotWorld) -> list[FundingNotice]:
    async with bw.app.db.transaction() as session:
        return await funding.notices(session, funding.HELD)


async def poll(bw: BotWorld) -> int:
    found = await funding_jobs.poll_feeds(bw.app, bw.clock.now())
    await bw.deliver()
    return found


async def test_new_feed_items_are_held_once_and_approvers_are_told(
    town: BotWorld, server: FeedServer
) -> None:
    room = await lobby(town)
    await town.say(CORA, room, f"!funding source add {server.url('rss')} areas=fenland")
    await town.say(CORA, room, f"!funding source add {server.url('atom')}")
    assert await poll(town) == 5  # the closed harvest grant is left out
    titles = sorted(n.title for n in await held(town))
    assert titles == ["Awards for All – England", "Community Transport Fund",
                      "Digital Inclusion Grants", "Small Grants for Youth Clubs",
                      "Warm Spaces Fund 2026/27"]
    warm = next(n for n in await held(town) if n.title.startswith("Warm"))
    assert (warm.funder, warm.award_min, warm.award_max) == (
        "Fens Community Foundation", 500, 5000)
    assert warm.areas == ["E07000010"] and warm.source == "S1"
    # One message each for the whole poll: Fenland's moderator hears of the Fenland items
    # only, the coordinator of all five.
    [fen] = town.dms(FEN)
    [cora] = town.dms(CORA)
    assert fen.splitlines()[0] == "3 funding notices wait for approval:"
    assert cora.splitlines()[0] == "5 funding notices wait for approval:"
    assert sorted(line.split()[0] for line in cora.splitlines()[1:6]) == [
        n.ref for n in sorted(await held(town), key=lambda n: n.id)]
    assert cora.splitlines()[-1].startswith("For each: !funding show F1, then !funding approve")

    # Polled again when due: the server says nothing changed, and nothing is held twice.
    town.clock.advance(minutes=31)
    assert await poll(town) == 0
    assert all(etag for name, etag, _ in server.requests[-2:])
    assert len(await held(town)) == 5

    # A changed feed with a new item: only the new one is held.
    server.files["rss"] = server.files["rss"].replace(
        b"<item>", b"<item><title>Food Resilience Grants</title>"
        b"<link>https://fenscf.example.org/grants/food/</link>"
        b"<description>Up to \xc2\xa33,000. Deadline: 20 January 2027</description></item><item>",
        1,
    )
    town.clock.advance(minutes=31)
    assert await poll(town) == 1
    replies = await town.say(FEN, room, f"!funding approve {warm.ref}")
    assert replies[-1] == f"{warm.ref} approved: going to 0 rooms now."


async def test_a_broken_feed_is_reported_backs_off_and_the_bot_carries_on(
    town: BotWorld, server: FeedServer
) -> None:
    room = await lobby(town)
    for name in ("broken", "down", "rss"):
        await town.say(CORA, room, f"!funding source add {server.url(name)}")
    assert await poll(town) == 3
    [report] = await town.say(CORA, room, "!funding sources")
    lines = report.splitlines()
    assert lines[0].endswith("failing (1x): not a readable RSS or Atom feed (:8:2: mismatched tag)")
    assert lines[1].endswith("failing (1x): HTTP 503 Service Unavailable")
    assert lines[2].endswith("ok, 3 items held so far")

    # Backing off: a failing feed waits 1 h, then 2 h, ... but never more than a day.
    waits = []
    for _ in range(8):
        async with town.app.db.transaction() as session:
            src = await funding.source(session, 2)
            assert src is not None
            town.clock.current = src.next_poll_at
        before = len(server.requests)
        await poll(town)
        assert "down" in [n for n, *_ in server.requests[before:]]
        async with town.app.db.transaction() as session:
            src = await funding.source(session, 2)
            assert src is not None
            waits.append(src.next_poll_at - town.clock.now())
    assert waits[:3] == [timedelta(hours=2), timedelta(hours=4), timedelta(hours=8)]
    assert waits[-1] == timedelta(hours=24)
    # Commands still work.
    assert (await town.say(MO, room, "!funding"))[0] == "No open funding notices match."


async def test_a_feed_that_does_not_answer_in_time_is_a_failure_not_a_hang(
    town: BotWorld, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "TIMEOUT_SECONDS", 0.3)
    room = await lobby(town)
    await town.say(CORA, room, f"!funding source add {server.url('slow')}")
    await poll(town)
    [report] = await town.say(CORA, room, "!funding sources")
    assert report.endswith("failing (1x): no answer within 0.3 s")


async def test_a_long_feed_sent_slowly_in_chunks_is_read_to_the_end(
    town: BotWorld, server: FeedServer
) -> None:
    server.files["long"] = long_feed(400, 500_000)
    server.chunked.add("long")
    assert len(server.files["long"]) > 500_000
    room = await lobby(town)
    await town.say(CORA, room, f"!funding source add {server.url('long')}")
    assert await poll(town) == 400  # every item, not what had arrived at the first read
    assert {n.title for n in await held(town)} == {f"Community Grant {i}" for i in range(1, 401)}
    [told] = town.dms(CORA)  # one message for the batch, not four hundred
    assert told.splitlines()[0] == "400 funding notices wait for approval:"
    assert told.splitlines()[11] == "and 390 more: !funding list shows them all"
    [report] = await town.say(CORA, room, "!funding sources")
    assert report.endswith("ok, 400 items held so far")


async def test_a_feed_over_the_size_cap_is_reported_and_its_etag_not_kept(
    town: BotWorld, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "MAX_BYTES", 200_000)
    server.files["long"] = long_feed(400, 500_000)
    server.chunked.add("long")
    room = await lobby(town)
    await town.say(CORA, room, f"!funding source add {server.url('long')}")
    assert await poll(town) == 0
    [report] = await town.say(CORA, room, "!funding sources")
    assert report.endswith("failing (1x): feed is too large (over 0.2 MB), so none of it was read")
    assert await held(town) == []
    async with town.app.db.transaction() as session:
        src = await funding.source(session, 1)
        assert src is not None and src.etag is None and src.last_modified is None
        town.clock.current = src.next_poll_at
    await poll(town)  # asked again in full: no ETag said "you have this already"
    assert [etag for name, etag, _ in server.requests if name == "long"] == [None, None]


async def test_the_database_refuses_the_same_item_twice(database: Database) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, tzinfo=UTC)
    async with database.transaction() as session:
        src = await funding.add_source(session, url="https://x.example/feed", areas=[],
                                       themes=[], added_by=CORA, added_at=now, next_poll_at=now,
                                       failures=0, items_seen=0)
        fields = dict(title="T", funder="F", url="https://x.example/1", areas=[], themes=[],
                      applicant_types=[], sizes=[], source="S1", source_id=src.id,
                      item_key="guid-1", status=funding.HELD, created_at=now)
        await funding.add_notice(session, **fields)
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await funding.add_notice(session, **fields)
        count = await session.scalar(select(func.count()).select_from(FundingNotice))
        assert count == 1


def test_item_keys_prefer_guid_then_link_then_a_hash() -> None:
    assert feeds.item_key({"id": "g1", "link": "https://a"}) == "g1"
    assert feeds.item_key({"link": "https://a"}) == "https://a"
    hashed = feeds.item_key({"title": "T", "summary": "S"})
    assert hashed.startswith("sha256:") and hashed == feeds.item_key({"title": "T",
                                                                       "summary": "S"})
