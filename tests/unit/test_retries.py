"""A command whose preparation hits a server failure is tried again and answered once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.events import Incoming
from bot.runtime.backoff import Backoff
from bot.transport.base import NETWORK, RoomInfo, TransportError
from storage.models import KnownRoom
from tests.botworld import BotWorld, bot_world

ADA, MO = "@ada:grapevine.local", "@mo:grapevine.local"


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path) as bw:
        bw.world.user("ada", "Ada")
        bw.world.user("mo", "Mo")
        bw.app.retry_backoff = lambda: Backoff(initial=0.0, cap=0.0)
        yield bw


def failing_room_info(bw: BotWorld, failures: int, status: int | None = None) -> list[str]:
    """The next ``failures`` room reads fail as a dropped connection (or ``status``)."""
    calls: list[str] = []
    real = bw.transport.room_info

    async def room_info(room_id: str) -> RoomInfo:
        calls.append(room_id)
        if len(calls) <= failures:
            raise TransportError(f"HTTP_{status}" if status else NETWORK, "reset", status=status)
        return await real(room_id)

    bw.transport.room_info = room_info  # type: ignore[method-assign]
    return calls


async def new_room(bw: BotWorld) -> str:
    room = bw.world.create_room(ADA, name="Wisbech Food Bank", members=[MO])
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    # The next command must read the room from the server (room state is kept from sync,
    # so only a room the bot has no record of is read): forget the record and the cache.
    async with bw.app.db.transaction() as session:
        known = await session.get(KnownRoom, room)
        if known is not None:
            await session.delete(known)
    bw.app.forget_room_context(room)
    return room


async def test_a_command_is_answered_once_after_the_server_failed_twice(town: BotWorld) -> None:
    room = await new_room(town)
    calls = failing_room_info(town, failures=2, status=502)
    replies = await town.say(MO, room, "!about")
    assert len(calls) == 3
    assert len(replies) == 1 and "Grapevine" in replies[0]


async def test_a_server_that_keeps_failing_gets_one_apology_and_a_replay_nothing_more(
    town: BotWorld,
) -> None:
    room = await new_room(town)
    calls = failing_room_info(town, failures=1000)
    replies = await town.say(MO, room, "!about")
    assert len(calls) == town.app.retry_tries
    assert len(replies) == 1 and "Please send it again" in replies[0]
    [event] = [e for e in town.world.room(room).timeline
               if e["sender"] == MO and e["type"] == "m.room.message"]
    await town.app.on_message(Incoming(event["event_id"], room, MO, "!about", town.clock.now()))
    await town.deliver()
    assert len(town.world.messages(room, sender=town.bot)) == 2  # the greeting and the apology


async def test_a_refusal_that_will_not_change_is_not_retried(town: BotWorld) -> None:
    room = await new_room(town)
    calls = failing_room_info(town, failures=1000, status=403)
    with pytest.raises(TransportError):
        await town.world.say(MO, room, "!about")
    assert len(calls) == 1
