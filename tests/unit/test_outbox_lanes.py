"""Outbox lanes: a person's answer never waits behind the bot's own posts, and those
posts go out paced on the bot's clock (issue 20)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.runtime.outbox_worker import OutboxWorker, lease
from storage import outbox
from storage.engine import Database
from storage.models import OutboxMessage
from tests.botworld import bot_world
from tests.clocks import ManualClock as Clock
from tests.unit.test_outbox_worker import FakeRoomServer

HALL = "!hall:localhost"


class TimedServer(FakeRoomServer):
    """Keeps the bot's clock reading at each send, and can stop the worker after some."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[datetime] = []
        self.stop_after: int | None = None
        self.worker: OutboxWorker | None = None

    async def send(self, room_id: str, content: Mapping[str, Any], *, txn_id: str | None = None,
                   event_type: str = "m.room.message") -> str:
        event_id = await super().send(room_id, content, txn_id=txn_id, event_type=event_type)
        self.at.append(self.clock.now())
        if self.stop_after is not None and len(self.sends) >= self.stop_after:
            assert self.worker is not None
            self.worker.stop()
        return event_id


async def greetings(db: Database, clock: Clock, count: int) -> None:
    async with db.transaction() as session:
        for n in range(count):
            await outbox.enqueue(session, now=clock.now(), room_id=f"!group{n}:localhost",
                                 kind="greeting", body=f"Hello group {n}")


async def ask(db: Database, clock: Clock, body: str, **where: Any) -> int:
    async with db.transaction() as session:
        row = await outbox.enqueue(session, now=clock.now(), body=body, **(where or {
            "room_id": HALL, "kind": "reply"}))
        assert row is not None
        return row.id


async def test_a_reply_queued_after_1000_greetings_goes_first(
    sqlite_database: Database, clock: Clock
) -> None:
    await greetings(sqlite_database, clock, 1000)
    clock.advance(seconds=1)  # queued a second after the last greeting, so it is due later
    await ask(sqlite_database, clock, "Here is the help you asked for")
    await ask(sqlite_database, clock, "Your profile", to_user="@ada:localhost", kind="private")
    server = TimedServer(clock)
    waits: list[float] = []

    async def pace(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)

    worker = OutboxWorker(sqlite_database, server, clock, pace=pace)
    server.worker = worker
    server.stop_after = 4
    await worker.drain()

    assert [content["body"] for _, _, content in server.sends] == [
        "Here is the help you asked for", "Your profile", "Hello group 0", "Hello group 1"]
    async with sqlite_database.transaction() as session:
        waiting = await outbox.pending_by_lane(session)
    assert waiting == {outbox.ANSWERS: 0, outbox.POSTS: 998}
    # The greetings the stopped pass had picked are not counted as tried.
    async with sqlite_database.transaction() as session:
        untried = await session.get(OutboxMessage, 3)
        assert untried is not None and untried.attempts == 0


async def test_posts_are_paced_on_the_bots_clock(sqlite_database: Database, clock: Clock) -> None:
    await greetings(sqlite_database, clock, 4)
    server = TimedServer(clock)
    waits: list[float] = []

    async def pace(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)

    assert await OutboxWorker(sqlite_database, server, clock, post_gap=0.5,
                              pace=pace).drain() == 4

    start = server.at[0]
    assert [(at - start).total_seconds() for at in server.at] == [0.0, 0.5, 1.0, 1.5]
    assert waits == [0.5, 0.5, 0.5]


async def test_a_gap_already_passed_on_the_clock_is_not_waited_again(
    sqlite_database: Database, clock: Clock
) -> None:
    await greetings(sqlite_database, clock, 2)
    waits: list[float] = []

    async def pace(seconds: float) -> None:
        waits.append(seconds)

    class SlowServer(TimedServer):
        async def send(self, room_id: str, content: Mapping[str, Any], **kw: Any) -> str:
            clock.advance(seconds=0.3)  # the homeserver took longer than the gap
            return await super().send(room_id, content, **kw)

    server = SlowServer(clock)
    await OutboxWorker(sqlite_database, server, clock, post_gap=0.2, pace=pace).drain()

    assert len(server.sends) == 2 and waits == []


async def test_an_answer_queued_while_posts_go_out_takes_the_next_turn(
    sqlite_database: Database, clock: Clock
) -> None:
    await greetings(sqlite_database, clock, 3)
    server = TimedServer(clock)
    worker: OutboxWorker

    async def pace(seconds: float) -> None:
        clock.advance(seconds=seconds)
        if len(server.sends) == 1:  # a person asks while the first gap is waited out
            await ask(sqlite_database, clock, "Answer to Ada")
            worker.wake()

    worker = OutboxWorker(sqlite_database, server, clock, pace=pace)
    assert await worker.drain() == 4

    assert [content["body"] for _, _, content in server.sends] == [
        "Hello group 0", "Answer to Ada", "Hello group 1", "Hello group 2"]
    # The answer did not wait out the posts' gap: it went as soon as it was seen.
    assert server.at[1] == server.at[0] + timedelta(seconds=0.2)


async def test_a_commands_own_posts_are_not_handed_past_the_lane(
    sqlite_database: Database, clock: Clock
) -> None:
    async with sqlite_database.transaction() as session:
        reply = await outbox.enqueue(session, now=clock.now(), room_id=HALL, body="Published F1")
        notice = await outbox.enqueue(session, now=clock.now(), room_id="!group:localhost",
                                      kind="notice", body="F1: warm spaces", own_post=True)
        dm = await outbox.enqueue(session, now=clock.now(), to_user="@ada:localhost",
                                  kind="notice", body="Your case room is ready")
        assert reply and notice and dm
        handed = [row.body for row in (reply, notice, dm) if lease(row, clock.now())]

    assert handed == ["Published F1", "Your case room is ready"]
    assert [outbox.lane_of(r) for r in (reply, notice, dm)] == [
        outbox.ANSWERS, outbox.POSTS, outbox.ANSWERS]


async def test_status_shows_each_lanes_queue_and_how_long_the_last_sync_took(
    tmp_path: Path,
) -> None:
    async with bot_world(tmp_path, roles={"admins": ["@ada:grapevine.local"]}) as bw:
        ada = bw.world.user("ada", "Ada")
        room = bw.world.create_room(ada, name="Help desk")
        await bw.world.join(bw.bot, room)
        await bw.deliver()
        later = bw.clock.now() + timedelta(hours=1)
        async with bw.app.db.transaction() as session:
            for n in range(3):  # greetings a mass join spread out, not yet due
                await outbox.enqueue(session, now=bw.clock.now(), room_id=f"!g{n}:localhost",
                                     kind="greeting", body="Hello", not_before=later)
            await outbox.enqueue(session, now=bw.clock.now(), to_user="@bob:localhost",
                                 kind="dm", body="Your offer", not_before=later)
        bw.app.sync_status = lambda: bw.clock.now() - timedelta(seconds=4)
        bw.app.sync_took = lambda: 2.5

        [reply] = await bw.say(ada, room, "!status")

    assert "Outbox: 1 answer and 3 posts waiting. Last sync: 4s ago, handled in 2.5s." in reply
