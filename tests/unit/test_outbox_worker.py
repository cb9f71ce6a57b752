"""The outbox worker: every queued message reaches its room once, whatever fails on the way."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.features import sealing
from bot.runtime.handoff import hand_over, lease_replies
from bot.runtime.outbox_worker import JOIN_WAIT, MARKER, OutboxWorker, lease
from bot.transport.base import RateLimited, TransportError
from storage import outbox, state
from storage.engine import Database
from storage.models import OutboxMessage
from tests.clocks import ManualClock as Clock

BOT = "@grapevine:localhost"


class Crash(BaseException):
    """The process dying between the send and recording it."""


class FakeRoomServer:
    """Rooms that keep what the bot sent, with scripted refusals per room."""

    def __init__(self) -> None:
        self.timelines: dict[str, list[dict[str, Any]]] = {}
        self.sends: list[tuple[str, str | None, dict[str, Any]]] = []
        self.failures: dict[str, list[BaseException]] = {}
        self.forbidden: set[str] = set()
        self.crash_after_send = False
        self.dm_rooms: dict[str, str] = {}
        self.uploads: list[tuple[str, str]] = []
        self.not_joined: set[str] = set()  # people who have not accepted their DM invite
        self.remember_in: Database | None = None  # where a DM room made is remembered

    @property
    def user_id(self) -> str:
        return BOT

    async def send(
        self,
        room_id: str,
        content: Mapping[str, Any],
        *,
        txn_id: str | None = None,
        event_type: str = "m.room.message",
    ) -> str:
        if room_id in self.forbidden:
            raise TransportError("M_FORBIDDEN", "only admins may post here", status=403)
        queued = self.failures.get(room_id)
        if queued:
            raise queued.pop(0)
        self.sends.append((room_id, txn_id, dict(content)))
        event_id = f"$event{len(self.sends)}"
        event = {"event_id": event_id, "sender": BOT, "type": event_type, "content": dict(content)}
        self.timelines.setdefault(room_id, []).insert(0, event)
        if self.crash_after_send:
            raise Crash()
        return event_id

    async def upload(self, data: bytes, mime: str, filename: str, *, room_id: str | None = None
                     ) -> dict[str, Any]:
        self.uploads.append((mime, filename))
        return {"url": f"mxc://localhost/{len(self.uploads)}"}

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.timelines.get(room_id, [])[:limit]

    async def direct_room(self, user_id: str) -> str:
        room_id = self.dm_rooms.setdefault(user_id, f"!dm-{len(self.dm_rooms)}:localhost")
        if self.remember_in is not None:  # as the Matrix transport does
            async with self.remember_in.transaction() as session:
                await state.set_value(session, state.DIRECT_ROOM_KEY + user_id, room_id)
        return room_id

    async def members(self, room_id: str) -> dict[str, str | None]:
        people = [u for u, r in self.dm_rooms.items() if r == room_id and u not in self.not_joined]
        return dict.fromkeys([BOT, *people])

    def bodies(self, room_id: str) -> list[str]:
        return [c["body"] for r, _, c in self.sends if r == room_id]


@pytest.fixture
def server() -> FakeRoomServer:
    return FakeRoomServer()


def worker_for(db: Database, server: FakeRoomServer, clock: Clock, **kw: Any) -> OutboxWorker:
    return OutboxWorker(db, server, clock, **kw)


async def queue(db: Database, clock: Clock, body: str, **kw: Any) -> int:
    async with db.transaction() as session:
        row = await outbox.enqueue(session, now=clock.now(), body=body, **kw)
        assert row is not None
        return row.id


async def row(db: Database, message_id: int) -> OutboxMessage:
    async with db.transaction() as session:
        found = await session.get(OutboxMessage, message_id)
        assert found is not None
        return found


async def test_a_reply_goes_out_tagged_with_its_outbox_id_and_a_stable_txn_id(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    message_id = await queue(
        database,
        clock,
        "Thanks, noted",
        html="<b>Thanks</b>, noted",
        room_id="!hall:localhost",
        extra={"m.relates_to": {"m.in_reply_to": {"event_id": "$ask"}}},
    )

    assert await worker_for(database, server, clock).drain() == 1

    [(room_id, txn, content)] = server.sends
    assert (room_id, txn) == ("!hall:localhost", f"grapevine-{message_id}")
    assert content["body"] == "Thanks, noted"
    assert content["msgtype"] == "m.text"
    assert content["formatted_body"] == "<b>Thanks</b>, noted"
    assert content[MARKER] == message_id
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$ask"}}
    sent = await row(database, message_id)
    assert sent.event_id == "$event1" and sent.sent_at == clock.now() and sent.attempts == 1


async def test_a_crash_between_send_and_record_does_not_post_twice(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    message_id = await queue(database, clock, "Funding notice", room_id="!hall:localhost")
    server.crash_after_send = True
    with pytest.raises(Crash):
        await worker_for(database, server, clock).drain()
    server.crash_after_send = False

    # The restarted bot (a new worker on the same database) finds its own event.
    clock.advance(minutes=1)
    await worker_for(database, server, clock).drain()

    assert server.bodies("!hall:localhost") == ["Funding notice"]
    assert (await row(database, message_id)).event_id == "$event1"


async def test_an_attempt_that_never_arrived_is_sent_again_with_the_same_txn_id(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    message_id = await queue(sqlite_database, clock, "Reminder", room_id="!hall:localhost")
    async with sqlite_database.transaction() as session:
        await outbox.mark_attempt(session, message_id, clock.now())

    await worker_for(sqlite_database, server, clock).drain()

    assert [(r, t) for r, t, _ in server.sends] == [("!hall:localhost", f"grapevine-{message_id}")]
    assert (await row(sqlite_database, message_id)).attempts == 2


async def test_a_rate_limit_is_waited_out_and_the_same_message_sent(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    await queue(sqlite_database, clock, "first", room_id="!hall:localhost")
    await queue(sqlite_database, clock, "second", room_id="!hall:localhost")
    server.failures["!hall:localhost"] = [RateLimited(1500)]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    assert await worker_for(sqlite_database, server, clock, sleep=sleep).drain() == 2

    assert waits == [1.5]
    assert server.bodies("!hall:localhost") == ["first", "second"]


async def test_a_room_where_the_bot_may_not_post_does_not_hold_up_other_rooms(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    announce_only = "!whatsapp-announcements:localhost"
    server.forbidden.add(announce_only)
    refused = await queue(sqlite_database, clock, "notice", room_id=announce_only)
    await queue(sqlite_database, clock, "notice", room_id="!hall:localhost")
    await queue(sqlite_database, clock, "notice", room_id="!garden:localhost")

    assert await worker_for(sqlite_database, server, clock).drain() == 2

    assert [r for r, _, _ in server.sends] == ["!hall:localhost", "!garden:localhost"]
    given_up = await row(sqlite_database, refused)
    assert given_up.failed_at == clock.now() and given_up.sent_at is None
    assert "M_FORBIDDEN" in (given_up.last_error or "")
    async with sqlite_database.transaction() as session:
        assert await outbox.pending_count(session) == 0


async def test_a_failing_send_is_retried_with_growing_delays_then_given_up_after_eight(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    message_id = await queue(sqlite_database, clock, "hello", room_id="!down:localhost")
    server.failures["!down:localhost"] = [TransportError("M_UNKNOWN", "boom")] * 9
    worker = worker_for(sqlite_database, server, clock)

    delays = []
    for _ in range(10):
        before = clock.now()
        await worker.drain()
        current = await row(sqlite_database, message_id)
        if current.failed_at is None:
            delays.append(current.not_before - before)
            clock.current = current.not_before

    failed = await row(sqlite_database, message_id)
    assert failed.attempts == 8 and failed.failed_at is not None and failed.sent_at is None
    assert len(delays) == 7 and delays == sorted(delays) and delays[0] < delays[-1]
    assert server.sends == []


async def test_messages_waiting_behind_a_failed_send_keep_their_attempts(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    first = await queue(sqlite_database, clock, "one", room_id="!busy:localhost")
    behind = [await queue(sqlite_database, clock, f"reply {i}", room_id="!busy:localhost")
              for i in range(3)]
    server.failures["!busy:localhost"] = [TransportError("HTTP_502", "bad gateway", status=502)]
    worker = worker_for(sqlite_database, server, clock)
    assert await worker.drain() == 0
    assert (await row(sqlite_database, first)).attempts == 1
    # Waiting is not failing: untried rows would otherwise run up backoff and be given up.
    assert [(await row(sqlite_database, i)).attempts for i in behind] == [0, 0, 0]
    assert await worker.drain() == 3
    clock.current = (await row(sqlite_database, first)).not_before
    assert await worker.drain() == 1
    assert sorted(server.bodies("!busy:localhost")) == ["one", "reply 0", "reply 1", "reply 2"]


async def test_a_direct_message_goes_to_the_users_dm_room(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    message_id = await queue(sqlite_database, clock, "Your shift is tomorrow", to_user="@ann:hs")

    await worker_for(sqlite_database, server, clock).drain()

    dm = server.dm_rooms["@ann:hs"]
    assert server.bodies(dm) == ["Your shift is tomorrow"]
    assert (await row(sqlite_database, message_id)).room_id == dm


async def test_the_worker_keeps_no_turn_for_people_it_has_finished_writing_to(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    worker = worker_for(sqlite_database, server, clock)
    for n in range(3):  # by a pass, then handed over by a command
        await queue(sqlite_database, clock, "Your shift is tomorrow", to_user=f"@p{n}:hs")
    await worker.drain()
    for n in range(3):
        await handed(sqlite_database, clock, worker, "And your badge", to_user=f"@p{n}:hs")
    await worker.idle()
    assert [server.bodies(server.dm_rooms[f"@p{n}:hs"]) for n in range(3)] == \
        [["Your shift is tomorrow", "And your badge"]] * 3
    assert worker.people_in_turn() == []


async def test_a_file_is_uploaded_and_posted_with_the_marker(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    message_id = await queue(
        sqlite_database,
        clock,
        "Notice sheet",
        room_id="!hall:localhost",
        attachment=outbox.Attachment("sheet.pdf", "application/pdf", b"%PDF-1.4"),
    )

    await worker_for(sqlite_database, server, clock).drain()

    [(_, _, content)] = server.sends
    assert server.uploads == [("application/pdf", "sheet.pdf")]
    assert content["msgtype"] == "m.file" and content["url"] == "mxc://localhost/1"
    assert content["info"] == {"mimetype": "application/pdf", "size": 8}
    assert content[MARKER] == message_id


async def test_wake_sends_at_once_and_stop_ends_the_worker(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    worker = worker_for(sqlite_database, server, clock, idle_seconds=30)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)

    await queue(sqlite_database, clock, "right away", room_id="!hall:localhost")
    worker.wake()
    for _ in range(100):
        if server.sends:
            break
        await asyncio.sleep(0.01)
    assert server.bodies("!hall:localhost") == ["right away"]

    worker.stop()
    await asyncio.wait_for(task, timeout=2)


async def test_text_for_a_whatsapp_room_is_flattened_and_a_dm_leaves_no_copy(
    sqlite_database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    from storage import rooms

    async with sqlite_database.transaction() as session:
        room = await rooms.joined(session, "!wa:localhost", clock.now())
        room.network = "whatsapp"
    await queue(sqlite_database, clock, "**F3** Warm spaces fund", room_id="!wa:localhost",
                html="<b>F3</b> Warm spaces fund")
    await queue(sqlite_database, clock, "**F3** Warm spaces fund", room_id="!plain:localhost",
                html="<b>F3</b> Warm spaces fund")
    dm = await queue(sqlite_database, clock, "Your DBS re-check is due 2027-01-10",
                     to_user="@ann:hs")

    await worker_for(sqlite_database, server, clock).drain()

    whatsapp = [c for r, _, c in server.sends if r == "!wa:localhost"]
    plain = [c for r, _, c in server.sends if r == "!plain:localhost"]
    assert whatsapp[0]["body"] == "F3 Warm spaces fund" and "formatted_body" not in whatsapp[0]
    assert plain[0]["formatted_body"] == "<b>F3</b> Warm spaces fund"
    assert server.bodies(server.dm_rooms["@ann:hs"]) == ["Your DBS re-check is due 2027-01-10"]
    sent = await row(sqlite_database, dm)
    assert sent.sent_at is not None and sent.body == ""


async def test_a_sealed_row_is_opened_only_as_it_is_sent_and_never_sent_sealed(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    key = SecretStr(Fernet.generate_key().decode())
    sealed = sealing.seal_text(key, "1. 20 Nov: keys worry")
    opened = await queue(database, clock, sealed, kind=outbox.SEALED_KIND, to_user="@mia:x")
    assert await worker_for(database, server, clock, opener=sealing.opener(key)).drain() == 1
    [(_, _, content)] = server.sends
    assert content["body"] == "1. 20 Nov: keys worry"
    assert (await row(database, opened)).body == ""  # sent: not even the ciphertext stays

    # A worker without the key (rotated, or not configured) gives the row up: it never
    # posts the ciphertext, and another try would not open it either.
    stuck = await queue(database, clock, sealed, kind=outbox.SEALED_KIND, to_user="@mia:x")
    other_key = SecretStr(Fernet.generate_key().decode())
    assert await worker_for(database, server, clock, opener=sealing.opener(other_key)
                            ).drain() == 0
    assert len(server.sends) == 1
    given_up = await row(database, stuck)
    assert given_up.failed_at is not None and given_up.last_error is not None
    assert given_up.last_error.startswith("GV_UNSEALABLE")


async def test_a_first_dm_waits_for_the_person_to_join_and_what_follows_waits_behind_it(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    server.not_joined.add("@ann:away")
    first = await queue(database, clock, "Welcome to the pool", to_user="@ann:away")
    worker = worker_for(database, server, clock)

    assert await worker.drain() == 0
    dm = server.dm_rooms["@ann:away"]
    await queue(database, clock, "An offer for you", to_user="@ann:away")
    await queue(database, clock, "Elsewhere", room_id="!hall:home")
    assert await worker.drain() == 1
    assert server.bodies(dm) == [] and server.bodies("!hall:home") == ["Elsewhere"]
    held = await row(database, first)
    assert held.room_id == dm and held.join_wait_until == clock.now() + JOIN_WAIT

    server.not_joined.discard("@ann:away")
    async with database.transaction() as session:  # her join came down the sync
        assert await outbox.release_joined(session, dm) == 1
    assert await worker.drain() == 2
    assert server.bodies(dm) == ["Welcome to the pool", "An offer for you"]


async def handed(db: Database, clock: Clock, worker: OutboxWorker, body: str,
                 **kw: Any) -> int:
    """A command's reply: queued and leased in its transaction, then handed to the worker."""
    async with db.transaction() as session:
        queued = await outbox.enqueue(session, now=clock.now(), body=body, **kw)
        assert queued is not None and lease(queued, clock.now())
    queued.attempts = 0  # the count before this try, as the app hands it over
    worker.send_now([queued])
    return queued.id


async def test_back_to_back_dms_to_someone_new_keep_their_order_while_the_first_waits(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    server.not_joined.add("@vic:away")
    server.remember_in = database
    worker = worker_for(database, server, clock)
    welcome = await handed(database, clock, worker, "Welcome to the pool", to_user="@vic:away")
    profile = await handed(database, clock, worker, "Your profile", to_user="@vic:away")
    await worker.idle()
    dm = server.dm_rooms["@vic:away"]
    assert server.bodies(dm) == []  # the second does not overtake the held first
    waiting = await row(database, profile)
    assert waiting.sent_at is None and waiting.attempts == 0  # waiting is not failing
    # A pass before the join sends neither.
    assert await worker.drain() == 0

    server.not_joined.discard("@vic:away")
    async with database.transaction() as session:  # his join came down the sync
        assert await outbox.release_joined(session, dm) == 1
    # Both go at once: neither waits out the lease the command gave it.
    assert await worker.drain() == 2
    assert server.bodies(dm) == ["Welcome to the pool", "Your profile"]
    assert (await row(database, welcome)).attempts == 1
    # A third one, handed after the join, goes straight out behind them.
    await handed(database, clock, worker, "Offer O1", to_user="@vic:away")
    await worker.idle()
    assert server.bodies(dm) == ["Welcome to the pool", "Your profile", "Offer O1"]


async def test_a_held_message_goes_anyway_once_the_wait_is_over_and_says_so(
    database: Database, server: FakeRoomServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    until = clock.now() + JOIN_WAIT
    await queue(database, clock, "M1: the case room", room_id="!case:home", wait_for_join=until)
    await queue(database, clock, "Session 1 starts", room_id="!case:home")
    worker = worker_for(database, server, clock)
    assert await worker.drain() == 0
    async with database.transaction() as session:
        assert await outbox.next_due_at(session) == until

    clock.advance(minutes=JOIN_WAIT.total_seconds() / 60 - 1)
    assert await worker.drain() == 0
    clock.advance(minutes=1)
    assert await worker.drain() == 2
    assert server.bodies("!case:home") == ["M1: the case room", "Session 1 starts"]
    assert "nobody joined !case:home" in caplog.text


async def test_a_commands_reply_is_handed_to_the_sender_the_moment_it_commits(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    worker = worker_for(database, server, clock)
    async with database.transaction() as session:
        # The command keeps no reference to what it queued: only the session does.
        await outbox.enqueue(session, now=clock.now(), body="Hello", room_id="!hall:localhost")
        await outbox.enqueue(session, now=clock.now(), body="A notice", own_post=True,
                             room_id="!hall:localhost")
        gc.collect()
        handed = await lease_replies(session, clock.now())
    assert [r.body for r in handed] == ["Hello"]  # the bot's own post waits for its lane
    hand_over(handed, worker.send_now)
    await worker.stopped()
    assert server.bodies("!hall:localhost") == ["Hello"]


async def test_a_reply_leased_by_a_run_that_died_goes_out_at_the_next_start_not_a_minute_later(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    async with database.transaction() as session:
        await outbox.enqueue(session, now=clock.now(), body="Hello", room_id="!hall:localhost")
        await outbox.enqueue(session, now=clock.now(), body="Also this",
                             room_id="!desk:localhost")
        handed = await lease_replies(session, clock.now())
    assert len(handed) == 2  # ...and the process dies before handing them over
    server.crash_after_send = True
    with pytest.raises(Crash):  # a second one dies after sending one, before recording it
        await OutboxWorker(database, server, clock)._deliver(handed[1])
    server.crash_after_send = False
    failing = await queue(database, clock, "Retry me", room_id="!busy:localhost")
    server.failures["!busy:localhost"] = [TransportError("M_UNKNOWN", "busy", status=502)]
    await worker_for(database, server, clock).drain()  # in backoff now, error recorded

    restarted = worker_for(database, server, clock)
    assert await restarted.reclaim() == 2  # the two leases, not the row in backoff
    await restarted.drain()

    assert server.bodies("!hall:localhost") == ["Hello"]
    assert server.bodies("!desk:localhost") == ["Also this"]  # found, not sent twice
    assert (await row(database, failing)).sent_at is None  # still waits out its backoff


async def test_dms_handed_at_different_moments_still_go_in_the_order_they_were_queued(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    # The federation race: two commands a second apart, and the hand-off gets to them a
    # second later still. The hold must not make the first due after the second.
    server.not_joined.add("@vic:away")
    server.remember_in = database
    worker = worker_for(database, server, clock)
    await handed(database, clock, worker, "Welcome to the pool", to_user="@vic:away")
    clock.advance(seconds=1)
    await handed(database, clock, worker, "Your profile", to_user="@vic:away")
    clock.advance(seconds=1)
    await worker.idle()
    dm = server.dm_rooms["@vic:away"]
    assert server.bodies(dm) == []

    server.not_joined.discard("@vic:away")
    async with database.transaction() as session:  # his join came down the sync
        await outbox.release_joined(session, dm)
    assert await worker.drain() == 2
    assert server.bodies(dm) == ["Welcome to the pool", "Your profile"]


async def test_a_dm_handed_over_does_not_become_the_first_ahead_of_one_a_pass_will_send(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    # The welcome was queued outside a command (no hand-off): the next pass sends it.
    # The profile is handed over before that pass: it must wait behind the welcome, not
    # open the DM room and hold itself, leaving the welcome to go before Vic has joined.
    server.not_joined.add("@vic:away")
    server.remember_in = database
    worker = worker_for(database, server, clock)
    await queue(database, clock, "Welcome to the pool", to_user="@vic:away")
    await handed(database, clock, worker, "Your profile", to_user="@vic:away")
    await worker.idle()
    await worker.drain()
    dm = server.dm_rooms["@vic:away"]
    assert server.bodies(dm) == []  # nothing before his join: his server is not there yet

    server.not_joined.discard("@vic:away")
    async with database.transaction() as session:
        await outbox.release_joined(session, dm)
    await worker.drain()
    await worker.drain()
    assert server.bodies(dm) == ["Welcome to the pool", "Your profile"]


async def test_a_reply_behind_a_message_held_in_its_room_is_left_to_the_pass(
    database: Database, server: FakeRoomServer, clock: Clock
) -> None:
    # Checked in the command's own transaction, so the worker sends what it is handed
    # with no check of its own.
    until = clock.now() + JOIN_WAIT
    await queue(database, clock, "M1: the case room", room_id="!case:home", wait_for_join=until)
    worker = worker_for(database, server, clock)
    async with database.transaction() as session:
        await outbox.enqueue(session, now=clock.now(), body="Noted", room_id="!case:home")
        await outbox.enqueue(session, now=clock.now(), body="Hello", room_id="!hall:home")
        handed = await lease_replies(session, clock.now())
    assert [r.body for r in handed] == ["Hello"]
    hand_over(handed, worker.send_now)
    await worker.idle()
    assert server.bodies("!hall:home") == ["Hello"] and server.bodies("!case:home") == []
    clock.advance(minutes=JOIN_WAIT.total_seconds() / 60)
    assert await worker.drain() == 2
    assert server.bodies("!case:home") == ["M1: the case room", "Noted"]
