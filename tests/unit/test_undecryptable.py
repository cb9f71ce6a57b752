"""Unreadable messages: opened when their key comes, else one plain notice per sender and room;
the waiting list and who was told survive a restart (on both engines), holding no content."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import nio
import pytest
from sqlalchemy import select

from bot.features import retention
from bot.runtime.sync import NotKept, SyncLoop
from bot.runtime.undecryptable import GRACE, NOTICE, Undecryptable
from bot.transport.base import NETWORK, TransportError
from config.settings import load_settings
from storage.engine import Database
from storage.undecryptable import KEEP, UndecryptableEvent
from tests.clocks import ManualClock


class Keys:
    """A stand-in for nio's client: sessions it holds keys for, and key requests made."""

    def __init__(self) -> None:
        self.olm = object()
        self.sessions: set[str] = set()
        self.requested: list[str] = []

    def decrypt_event(self, event: nio.MegolmEvent) -> dict[str, Any]:
        if event.session_id not in self.sessions:
            raise nio.EncryptionError("no session")
        return {"event_id": event.event_id, "room_id": event.room_id}

    async def request_room_key(self, event: nio.MegolmEvent) -> None:
        self.requested.append(event.session_id)


class Server:
    """A stand-in for the transport: what was sent, and the events GET /event finds."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str | None]] = []
        self.events: dict[str, dict[str, Any]] = {}
        self.fetched: list[str] = []
        self.failing: TransportError | None = None

    async def send(self, room_id: str, content: dict[str, Any], *, txn_id: str | None = None
                   ) -> str:
        self.messages.append((room_id, content["body"], txn_id))
        return "$sent"

    async def request(self, method: str, path: str) -> dict[str, Any]:
        assert method == "GET"
        event_id = path.rsplit("/", 1)[1].replace("%24", "$")
        self.fetched.append(event_id)
        if self.failing is not None:
            raise self.failing
        if event_id not in self.events:
            raise TransportError("M_NOT_FOUND", "no such event", status=404)
        return self.events[event_id]


def megolm_source(event_id: str, sender: str, session: str, room: str = "!r") -> dict[str, Any]:
    return {"event_id": event_id, "sender": sender, "origin_server_ts": 0,
            "type": "m.room.encrypted", "room_id": room,
            "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x",
                        "sender_key": "k", "device_id": "D", "session_id": session}}


def megolm(event_id: str, sender: str, session: str, room: str = "!r") -> nio.MegolmEvent:
    return nio.MegolmEvent.from_dict(megolm_source(event_id, sender, session, room))


class Bot:
    """One run of the bot's waiting list; :meth:`restart` is a new process, same database."""

    def __init__(self, db: Database, clock: ManualClock, keys: Keys | None = None,
                 server: Server | None = None) -> None:
        self.db, self.clock = db, clock
        self.keys = keys or Keys()
        self.server = server or Server()
        self.waiting = Undecryptable(cast(Any, self.keys), cast(Any, self.server), db, clock)
        self.open_work: set[int] = set()

    async def restart(self) -> Bot:
        bot = Bot(self.db, self.clock, Keys(), self.server)
        bot.keys.sessions = set(self.keys.sessions)
        await bot.waiting.load()
        return bot

    async def after_sync(self, *, work_done: bool = True) -> list[tuple[str, Any]]:
        """What the sync loop does after each sync; the handed work finishes or not."""
        opened = await self.waiting.retry()
        self.waiting.handed([event["event_id"] for _, event in opened], 1)
        if not work_done and opened:
            self.open_work.add(0)
        await self.waiting.settle(lambda position: not self.open_work)
        await self.waiting.tell_overdue()
        return opened


async def kept(db: Database) -> list[tuple[str, str, str, bool]]:
    async with db.transaction() as session:
        return [(r.event_id, r.room_id, r.sender, r.told_at is not None)
                for r in await session.scalars(
                    select(UndecryptableEvent).order_by(UndecryptableEvent.event_id))]


async def test_a_late_key_opens_the_message_and_no_one_is_told(database: Database) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    await bot.waiting.add("!r", megolm("$1", "@ann:hs", "s1"))
    assert await bot.after_sync() == [] and bot.keys.requested == ["s1"]
    assert await kept(database) == [("$1", "!r", "@ann:hs", False)]

    bot.keys.sessions.add("s1")
    clock.advance(seconds=5)
    assert await bot.after_sync() == [("!r", {"event_id": "$1", "room_id": "!r"})]
    clock.advance(seconds=GRACE.total_seconds())
    await bot.after_sync()
    assert bot.server.messages == [] and bot.waiting.waiting == 0
    assert await kept(database) == []


async def test_each_sender_is_told_once_per_room_however_many_messages_stay_unreadable(
    database: Database,
) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    waiting, sent = bot.waiting, bot.server.messages
    for n in range(3):
        await waiting.add("!r", megolm(f"$a{n}", "@ann:hs", "s1"))
    await waiting.add("!r", megolm("$b", "@bob:hs", "s2"))
    await waiting.add("!other", megolm("$c", "@ann:hs", "s3", room="!other"))
    clock.advance(seconds=GRACE.total_seconds() - 1)
    await waiting.tell_overdue()
    assert sent == []  # not yet: keys are often late

    clock.advance(seconds=2)
    await waiting.tell_overdue()
    await waiting.add("!r", megolm("$a9", "@ann:hs", "s1"))
    clock.advance(seconds=GRACE.total_seconds() + 1)
    await waiting.tell_overdue()

    assert sorted(room for room, _, _ in sent) == ["!other", "!r", "!r"]
    assert {body for _, body, _ in sent} == {NOTICE}
    assert "$" not in NOTICE and "session" not in NOTICE  # names nothing of the event
    # Only the marks of who was told stay: one per sender and room.
    assert await kept(database) == [("$a0", "!r", "@ann:hs", True), ("$b", "!r", "@bob:hs", True),
                                    ("$c", "!other", "@ann:hs", True)]


async def test_a_message_waiting_at_a_restart_is_fetched_again_and_answered_once(
    database: Database,
) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    bot.server.events["$1"] = megolm_source("$1", "@ann:hs", "s1")
    await bot.waiting.add("!r", megolm("$1", "@ann:hs", "s1"))
    await bot.after_sync()

    bot = await bot.restart()  # the event itself was never stored: only its id
    assert bot.waiting.waiting == 1 and bot.server.fetched == []
    assert await bot.after_sync() == []  # fetched again, key asked for again, still no key
    assert bot.server.fetched == ["$1"] and bot.keys.requested == ["s1"]

    bot.keys.sessions.add("s1")  # the key reaches the restarted bot
    clock.advance(seconds=5)
    assert await bot.after_sync() == [("!r", {"event_id": "$1", "room_id": "!r"})]
    assert await kept(database) == []
    bot = await bot.restart()
    assert bot.waiting.waiting == 0 and await bot.after_sync() == []
    assert bot.server.messages == []


async def test_a_row_stays_until_the_opened_message_has_been_handled(database: Database) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    bot.server.events["$1"] = megolm_source("$1", "@ann:hs", "s1")
    await bot.waiting.add("!r", megolm("$1", "@ann:hs", "s1"))
    bot.keys.sessions.add("s1")
    assert len(await bot.after_sync(work_done=False)) == 1
    assert [event_id for event_id, *_ in await kept(database)] == ["$1"]

    # Stopped before the command's work finished: the next start tries it again (the
    # sync loop then skips it if its handling had committed: the handled-event ids).
    bot = await bot.restart()
    assert len(await bot.after_sync()) == 1
    assert await kept(database) == []


async def test_a_restart_past_the_grace_tells_the_sender_once_and_remembers_it(
    database: Database,
) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    bot.server.events["$1"] = megolm_source("$1", "@ann:hs", "s1")
    await bot.waiting.add("!r", megolm("$1", "@ann:hs", "s1"))
    clock.advance(seconds=GRACE.total_seconds() + 60)  # down longer than the grace

    bot = await bot.restart()
    await bot.after_sync()
    assert bot.server.messages == [("!r", NOTICE, "undecryptable-$1")]
    assert await kept(database) == [("$1", "!r", "@ann:hs", True)]

    # Told once per room, across restarts too.
    bot = await bot.restart()
    await bot.waiting.add("!r", megolm("$2", "@ann:hs", "s2"))
    clock.advance(seconds=GRACE.total_seconds() + 1)
    await bot.after_sync()
    assert len(bot.server.messages) == 1
    assert await kept(database) == [("$1", "!r", "@ann:hs", True)]


async def test_an_event_the_server_no_longer_gives_is_dropped_a_network_fault_waits(
    database: Database,
) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    await bot.waiting.add("!r", megolm("$gone", "@ann:hs", "s1"))
    await bot.waiting.add("!r", megolm("$1", "@ann:hs", "s1"))
    bot.server.events["$1"] = megolm_source("$1", "@ann:hs", "s1")
    bot = await bot.restart()

    bot.server.failing = TransportError(NETWORK, "reset")
    await bot.after_sync()
    assert bot.waiting.waiting == 2 and len(await kept(database)) == 2

    bot.server.failing = None
    await bot.after_sync()
    assert bot.waiting.waiting == 1
    assert [event_id for event_id, *_ in await kept(database)] == ["$1"]


async def test_no_row_outlives_a_day_and_a_row_holds_no_content(database: Database) -> None:
    clock = ManualClock()
    bot = Bot(database, clock)
    await bot.waiting.add("!r", megolm("$old", "@ann:hs", "s1"))
    clock.advance(seconds=(KEEP - timedelta(hours=1)).total_seconds())
    await bot.waiting.add("!r", megolm("$new", "@bob:hs", "s2"))
    assert {c.name for c in UndecryptableEvent.__table__.columns} == {
        "event_id", "room_id", "sender", "since", "told_at"}

    clock.advance(seconds=3660)
    swept = await retention.sweep(database, clock.now(), load_settings(None).privacy)
    assert swept.unreadable == 1
    assert [event_id for event_id, *_ in await kept(database)] == ["$new"]
    assert timedelta(days=1) >= KEEP + retention.SWEEP_EVERY  # hourly: gone within the day


async def test_a_message_that_cannot_be_kept_fails_its_sync_batch_rather_than_vanish(
    sqlite_database: Database,
) -> None:
    """The sync position would pass it: the batch is tried again instead (same token)."""

    class Unkept(Undecryptable):
        async def add(self, room_id: str, event: nio.MegolmEvent) -> None:
            raise OSError("disk full")

    keys, server, clock = Keys(), Server(), ManualClock()
    keys.user_id = "@grapevine:hs"  # type: ignore[attr-defined]
    waiting = Unkept(cast(Any, keys), cast(Any, server), sqlite_database, clock)
    loop = SyncLoop(cast(Any, keys), cast(Any, server), sqlite_database, cast(Any, None),
                    load_settings(None), clock, undecryptable=waiting)
    with pytest.raises(NotKept):
        await loop._dispatch("!r", megolm("$1", "@ann:hs", "s1"))


class Decrypted:
    """What nio gives for an opened message: its source, as the sync loop reads it."""

    def __init__(self, event_id: str, sender: str, body: str) -> None:
        self.source = {"event_id": event_id, "sender": sender, "type": "m.room.message",
                       "origin_server_ts": 0, "content": {"msgtype": "m.text", "body": body}}


class Sink:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def on_message(self, message: Any) -> None:
        self.messages.append(message.event_id)


async def test_a_waiting_message_delivered_again_with_its_key_is_handed_over_once(
    database: Database,
) -> None:
    """A restart before the batch's token was stored: sync brings the message again, and
    its key has come. It goes to the sink once, and its waiting row goes after."""
    clock = ManualClock()
    await Bot(database, clock).waiting.add("!r", megolm("$1", "@ann:hs", "s1"))

    class Opens(Keys):
        def decrypt_event(self, event: nio.MegolmEvent) -> Any:
            super().decrypt_event(event)
            return Decrypted(event.event_id, event.sender, "!about")

    keys, server, sink = Opens(), Server(), Sink()
    keys.user_id = "@grapevine:hs"  # type: ignore[attr-defined]
    keys.sessions.add("s1")
    waiting = Undecryptable(cast(Any, keys), cast(Any, server), database, clock)
    loop = SyncLoop(cast(Any, keys), cast(Any, server), database, cast(Any, sink),
                    load_settings(None), clock, undecryptable=waiting)
    await waiting.load()
    await loop._dispatch("!r", megolm("$1", "@ann:hs", "s1"))
    await loop._reopen()
    await loop._reopen()
    assert sink.messages == ["$1"] and server.fetched == []
    assert await kept(database) == []
