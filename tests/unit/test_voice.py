"""The bot's own posts in group rooms: a daily cap, a digest for the rest, quiet nights."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import voice
from bot.commands.context import Context, Sender
from bot.events import Incoming
from storage.groups import Group
from tests.botworld import BotWorld, bot_world

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path) as bw:
        yield bw


async def group_room(bw: BotWorld, *, max_posts: int | None = None) -> str:
    ada = bw.world.user("ada", "Ada")
    mo = bw.world.user("mo", "Mo")
    room = bw.world.create_room(ada, name="Wisbech Food Bank", members=[mo])
    await bw.world.join(bw.bot, room)
    if max_posts is not None:
        async with bw.app.db.transaction() as session:
            session.add(Group(room_id=room, name="Wisbech Food Bank", type="community-group",
                              area_code="E04001668", themes=[], size="small",
                              registered_by=ada, registered_at=bw.clock.now(),
                              max_posts=max_posts))
    await bw.deliver()
    return room


async def bot_posts(bw: BotWorld, room: str, body: str) -> bool:
    """The bot posts on its own, as a feature's handler or sweep does (Context.post)."""
    async with bw.app.db.transaction() as session:
        message = Incoming("$cause", room, "@ada:grapevine.local", "", bw.clock.now())
        context = await bw.app.room_context(room)
        ctx = Context(bw.app, session, message, context, Sender("@ada:grapevine.local"),
                      bw.clock.now())
        queued = await ctx.post(room, body)
    await bw.deliver()
    return queued


def own_posts(bw: BotWorld, room: str) -> list[str]:
    return [m for m in bw.world.messages(room, sender=bw.bot)
            if "never what anyone writes" not in m]


async def test_a_room_gets_three_posts_a_day_and_the_rest_next_morning_in_one_digest(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    for n in range(1, 6):
        assert await bot_posts(town, room, f"Notice {n}\nhttps://example.org/{n}")
    assert own_posts(town, room) == [f"Notice {n}\nhttps://example.org/{n}" for n in (1, 2, 3)]

    town.clock.advance(hours=20)  # 06:00 the next day: still night
    assert await voice.send_digests(town.app, town.clock.now()) == 0
    town.clock.advance(hours=2)  # 08:00
    assert await voice.send_digests(town.app, town.clock.now()) == 1
    await town.deliver()
    digest = own_posts(town, room)[3:]
    assert digest == ["Digest: 2 posts held back to keep this room quiet.\n"
                      "- Notice 4 · https://example.org/4\n"
                      "- Notice 5 · https://example.org/5"]
    assert await voice.send_digests(town.app, town.clock.now()) == 0


async def test_digest_is_not_made_before_its_morning(town: BotWorld) -> None:
    room = await group_room(town, max_posts=1)
    await bot_posts(town, room, "First")
    await bot_posts(town, room, "Second")
    town.clock.advance(hours=10)  # 20:00 the same day
    assert await voice.send_digests(town.app, town.clock.now()) == 0
    town.clock.advance(hours=12)  # 08:00 the next day
    assert await voice.send_digests(town.app, town.clock.now()) == 1
    await town.deliver()
    assert own_posts(town, room) == ["First", "Digest: 1 post held back to keep this room "
                                               "quiet.\n- Second"]


async def test_the_rooms_admins_set_the_cap_and_zero_means_digest_only(town: BotWorld) -> None:
    room = await group_room(town, max_posts=0)
    await bot_posts(town, room, "Only in the digest")
    assert own_posts(town, room) == []
    town.clock.advance(hours=22)
    await voice.send_digests(town.app, town.clock.now())
    await town.deliver()
    assert own_posts(town, room) == ["Digest: 1 post held back to keep this room quiet.\n"
                                     "- Only in the digest"]


async def test_a_post_at_ten_at_night_waits_until_eight(town: BotWorld) -> None:
    room = await group_room(town)
    town.clock.advance(hours=12)  # 22:00 London (GMT in November)
    await bot_posts(town, room, "Warm spaces grant")
    assert own_posts(town, room) == []
    town.clock.advance(hours=9, minutes=59)  # 07:59
    await town.deliver()
    assert own_posts(town, room) == []
    town.clock.advance(minutes=1)
    await town.deliver()
    assert own_posts(town, room) == ["Warm spaces grant"]


async def test_replies_to_commands_are_never_capped_nor_held_for_the_night(
    town: BotWorld,
) -> None:
    room = await group_room(town, max_posts=1)
    await bot_posts(town, room, "The day's one post")
    town.clock.advance(hours=13)  # 23:00
    replies = await town.say("@mo:grapevine.local", room, "!about")
    assert len(replies) == 1 and "Grapevine" in replies[0]


async def test_direct_message_rooms_are_not_capped(town: BotWorld) -> None:
    mo = town.world.user("mo", "Mo")
    dm = town.world.create_room(mo, direct=True)
    await town.world.join(town.bot, dm)
    for n in range(5):
        await bot_posts(town, dm, f"Offer {n}")
    assert len(town.world.messages(dm, sender=town.bot)) == 5


async def test_a_duplicate_post_is_neither_sent_nor_folded(town: BotWorld) -> None:
    room = await group_room(town, max_posts=1)
    async with town.app.db.transaction() as session:
        first = await voice.enqueue_own_post(session, now=town.clock.now(), tz=LONDON,
                                             room_id=room, body="A", dedupe_key="k")
        again = await voice.enqueue_own_post(session, now=town.clock.now(), tz=LONDON,
                                             room_id=room, body="A", dedupe_key="k")
        assert first is not None and again is None
        assert await voice.held(session, room) == []


@pytest.mark.parametrize(("utc", "expected"), [
    # Noon and a minute before nine at night: at once.
    (datetime(2026, 11, 20, 12, 0, tzinfo=UTC), datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
    (datetime(2026, 11, 20, 20, 59, tzinfo=UTC), datetime(2026, 11, 20, 20, 59, tzinfo=UTC)),
    # 21:00 GMT and 03:00 GMT: 08:00 GMT.
    (datetime(2026, 11, 20, 21, 0, tzinfo=UTC), datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
    (datetime(2026, 11, 21, 3, 0, tzinfo=UTC), datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
    # 22:00 BST on the night the clocks go back: 08:00 GMT.
    (datetime(2026, 10, 24, 21, 0, tzinfo=UTC), datetime(2026, 10, 25, 8, 0, tzinfo=UTC)),
    # 22:00 GMT on the night the clocks go forward: 08:00 BST, which is 07:00 UTC.
    (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
    # 07:30 BST (06:30 UTC) in summer: 08:00 BST.
    (datetime(2026, 7, 1, 6, 30, tzinfo=UTC), datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),
])
def test_night_hours_follow_local_time_across_clock_changes(
    utc: datetime, expected: datetime,
) -> None:
    assert voice.allowed_from(utc, LONDON) == expected


def test_a_local_day_is_counted_in_local_time() -> None:
    start, end = voice.day_bounds(datetime(2026, 10, 25).date(), LONDON)
    assert (end - start).total_seconds() == 25 * 3600
    assert start == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
