"""What a room costs the bot on a real Synapse: state is kept from sync, not downloaded.

Busy and bridged rooms churn members all day and chat all the time; neither
may cost the bot a request to the homeserver, and a restart must not read
each room's state again.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import pytest
from botfixture import BotFactory, RunningBot
from conftest import PersonFactory
from httpcount import counting
from people import Person
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Grapevine
from bot.homeserver import EmbeddedSynapse
from bot.runtime.outbox_worker import OutboxWorker
from bot.service import Service
from storage import outbox, rooms
from storage.engine import Database
from storage.models import OutboxMessage

CHURNERS = 10
ROUNDS = 5  # each churner joins and leaves this often: 2 * 10 * 5 = 100 member changes


async def group_room(alice: Person, bot: RunningBot, name: str = "Busy group") -> str:
    room = await alice.create_room(name=name, invite=[bot.user_id], public=True)
    await alice.wait_for_message(room, sender=bot.user_id, contains="never what anyone writes",
                                 timeout=30)
    return room


async def about(person: Person, room: str, bot: RunningBot) -> None:
    await person.send(room, "!about")
    await person.wait_for_message(room, sender=bot.user_id, timeout=30)


async def test_member_churn_and_chat_cost_no_request_and_no_transaction(
    bot_factory: BotFactory, person_factory: PersonFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await bot_factory()
    alice = await person_factory("Alice", e2e=False)
    room = await group_room(alice, bot)
    churners = [await person_factory(f"Churner {i}", e2e=False) for i in range(CHURNERS)]
    await about(alice, room, bot)  # the room is known and its power levels read
    # Transactions opened on hearing an event (not the sync token's, the outbox's or
    # the flow records' batch): one database serves the sync loop, the app and the worker.
    on_events: list[str] = []
    db = bot.app.db
    begin = db.transaction

    def transaction() -> AbstractAsyncContextManager[AsyncSession]:
        callers = {frame.name for frame in traceback.extract_stack()}
        hearing = callers & {"on_state", "on_message", "on_reaction", "on_joined"}
        if hearing:
            on_events.append(" < ".join(sorted(hearing)))
        return begin()

    monkeypatch.setattr(db, "transaction", transaction)
    with counting(monkeypatch, bot.user_id) as requests:
        for _ in range(ROUNDS):
            for person in churners:
                await person.join(room)
            for person in churners:
                await person.leave(room)
        for n in range(20):
            await alice.send(room, f"ordinary chat {n}")
        await about(alice, room, bot)
    # One request: the answer to !about. No state, members or history read.
    assert requests.besides_sync() == {"send": 1}, requests.paths
    # The command's transaction, and reading once which questions are open (for chat
    # that might answer one): none for the 100 member changes or the 20 messages.
    assert len(on_events) <= 2, on_events


async def test_power_changes_come_from_sync_and_a_restart_reads_no_room_state(
    bot_factory: BotFactory, person_factory: PersonFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await bot_factory()
    alice = await person_factory("Alice", e2e=False)
    bob = await person_factory("Bob", e2e=False)
    rooms = [await group_room(alice, bot, f"Group {i}") for i in range(3)]
    room = rooms[0]
    await bob.join(room)
    with counting(monkeypatch, bot.user_id) as requests:
        await bob.send(room, "!funding unsubscribe")
        refused = await bob.wait_for_message(room, sender=bot.user_id, timeout=30)
        assert "needs the group admin role" in refused["content"]["body"]
        await alice.set_power_level(room, bob.user_id, 50)
        await bob.send(room, "!funding unsubscribe")
        answered = await bob.wait_for_message(room, sender=bot.user_id, timeout=30)
        assert "no funding subscription" in answered["content"]["body"]
        assert requests.besides_sync() == {"send": 2}, requests.paths

        requests.reset()
        await bot.restart()
        for each in rooms:
            await about(alice, each, bot)
    # No room's state, state event or members read, nothing joined again. (History may be
    # read once: a gap before the first answer, or the outbox looking for its own send.)
    read = {k: n for k, n in requests.counts.items()
            if k in {"room state", "state event", "members", "join"}}
    assert read == {}, requests.paths
    assert requests.counts["history"] <= 1, requests.paths
    assert requests.counts["send"] == len(rooms)


# -- a mass join -----------------------------------------------------------------------

JOINED_AT_ONCE = 12


async def test_rooms_joined_in_one_batch_are_recorded_together_and_survive_a_crash(
    bot_factory: BotFactory, person_factory: PersonFactory, synapse: EmbeddedSynapse,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve rooms joined while the bot was down come down one sync beside a person's
    command: the command is answered once, every room is recorded in one transaction and
    greeted once, though the first start died while recording them."""
    bot = await bot_factory()
    alice = await person_factory("Alice", e2e=False)
    help_desk = await group_room(alice, bot, "Help desk")
    await bot.stop()
    groups = [await alice.create_room(name=f"Group {i}", invite=[bot.user_id], public=True)
              for i in range(JOINED_AT_ONCE)]
    as_bot = await Person.connect(bot.setup.user, synapse.base_url)  # the bot's account
    for room in groups:
        await as_bot.join(room)
    await as_bot.close()
    asked = await alice.send(help_desk, "!about")

    # The first start answers the command, then dies while recording the rooms (nothing
    # of them committed)...
    record, hand_over = Grapevine.on_joined_many, OutboxWorker.send_now
    dying = asyncio.Event()

    async def dies(self: Grapevine, joins: Sequence[tuple[str, bool]]) -> None:
        while not await answers_queued(self.db, help_desk):  # the command, decided first
            await asyncio.sleep(0.05)
        dying.set()
        await asyncio.Event().wait()  # until the process is killed

    monkeypatch.setattr(Grapevine, "on_joined_many", dies)
    # ...and the answer it committed (leased to its worker for a minute) never left.
    monkeypatch.setattr(OutboxWorker, "send_now", lambda self, rows: None)
    bot.service = Service(bot.setup.settings(), clock=bot.clock)
    await bot.service.start()
    await asyncio.wait_for(dying.wait(), 30)
    await bot.stop()
    monkeypatch.setattr(OutboxWorker, "send_now", hand_over)
    monkeypatch.setattr(Grapevine, "on_joined_many", record)

    opened: list[int] = []
    begin = Database.transaction

    def transaction(self: Database) -> AbstractAsyncContextManager[AsyncSession]:
        if "joined_many" in {frame.name for frame in traceback.extract_stack()}:
            opened.append(1)
        return begin(self)

    monkeypatch.setattr(Database, "transaction", transaction)
    await bot.start()
    # The restart sends the dead run's answer at once, not when its lease (60 s) runs out.
    await alice.wait_for_message(
        help_desk, sender=bot.user_id, timeout=30,
        predicate=lambda e: (e["content"].get("m.relates_to") or {}).get(
            "m.in_reply_to", {}).get("event_id") == asked)
    for room in groups:
        await alice.wait_for_message(room, sender=bot.user_id,
                                     contains="never what anyone writes", timeout=60)

    async with bot.app.db.transaction() as session:
        known = {room.room_id for room in await rooms.active(session)}
    assert set(groups) <= known
    assert opened == [1], "one transaction records the batch, not one a room"
    for room in [help_desk, *groups]:
        said = [e for e in await alice.messages(room) if e["sender"] == bot.user_id
                and e["type"] == "m.room.message"]
        greetings = [e for e in said if e["content"]["body"].startswith("Hello, I'm Grapevine")]
        answers = [e for e in said if (e["content"].get("m.relates_to") or {}).get(
            "m.in_reply_to", {}).get("event_id") == asked]
        assert len(greetings) == 1, (room, said)
        assert len(answers) == (1 if room == help_desk else 0), said


async def answers_queued(db: Database, room_id: str) -> int:
    """The bot's messages queued for ``room_id`` besides its greeting."""
    async with db.transaction() as session:
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.room_id == room_id))
    return max(0, (queued or 0) - 1)


# -- outbox lanes ---------------------------------------------------------------------


async def queue_posts(bot: RunningBot, room: str, count: int, word: str = "Notice") -> None:
    """``count`` of the bot's own posts waiting in the room, as after a mass join."""
    async with bot.app.db.transaction() as session:
        for n in range(count):
            await outbox.enqueue(session, now=bot.clock.now(), room_id=room, kind="notice",
                                 own_post=True, body=f"{word} {n}")
    bot.app.queued()


async def test_a_persons_command_is_answered_before_the_posts_already_waiting(
    bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    bot = await bot_factory()
    alice = await person_factory("Alice", e2e=False)
    room = await group_room(alice, bot, "Help desk")
    await queue_posts(bot, room, 60)

    asked = await alice.send(room, "!about")
    answer = await alice.wait_for_message(
        room, sender=bot.user_id, timeout=30,
        predicate=lambda e: (e["content"].get("m.relates_to") or {}).get(
            "m.in_reply_to", {}).get("event_id") == asked)

    assert "never what anyone writes" in answer["content"]["body"]
    async with bot.app.db.transaction() as session:
        waiting = await outbox.pending_by_lane(session)
    # Behind one queue the answer came after all 60; in its lane it overtakes them.
    assert waiting[outbox.POSTS] >= 30, waiting


async def nothing_pending(db: Database, *, within: float) -> bool:
    """Whether the outbox empties within ``within`` seconds (wall time: the test waits on
    Synapse and the bot, never on the bot's clock)."""
    for _ in range(int(within * 10)):
        async with db.transaction() as session:
            if await outbox.pending_count(session) == 0:
                return True
        await asyncio.sleep(0.1)
    return False


async def test_both_lanes_are_sent_exactly_once_across_a_restart(
    bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    bot = await bot_factory()
    alice = await person_factory("Alice", e2e=False)
    room = await group_room(alice, bot, "Help desk")
    async with bot.app.db.transaction() as session:
        for n in range(30):
            await outbox.enqueue(session, now=bot.clock.now(), room_id=room, kind="reply",
                                 body=f"Answer {n}")
    await queue_posts(bot, room, 30)
    # Some of each lane out, the rest still queued (a send may be cut off mid-way).
    await alice.wait_for_message(room, sender=bot.user_id, contains="Notice 2", timeout=60)
    await bot.restart()

    expected = {f"Answer {n}" for n in range(30)} | {f"Notice {n}" for n in range(30)}
    await alice.wait_for_message(room, sender=bot.user_id, contains="Notice 29", timeout=90)
    # Alice can see the last post a moment before the bot has recorded it as sent.
    assert await nothing_pending(bot.app.db, within=10.0)
    said = [e["content"]["body"] for e in await alice.messages(room, limit=200)
            if e["sender"] == bot.user_id and e["type"] == "m.room.message"]
    sent = [body for body in said if body in expected]
    assert sorted(sent) == sorted(expected), [b for b in sent if sent.count(b) > 1]
    # Answers went first: every answer is out before the posts' second half.
    assert max(sent.index(f"Answer {n}") for n in range(30)) < sent.index("Notice 15")
