"""Good manners on a real Synapse: questions, a quiet voice, no loops, no leaks."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botfixture import BotFactory, RunningBot, bring_bot_in
from conftest import PersonFactory
from cryptography.fernet import Fernet
from people import Person
from test_mediation import ask, database_bytes, register_group

from bot import voice
from bot.features import encrypted
from bot.logfilter import RedactBodies
from storage import mediation as cases
from storage.models import OutboxMessage
from tests.clocks import ManualClock, next_london

GREETING = "never what anyone writes"


ClockedFactory = Callable[[datetime], Awaitable[RunningBot]]


@pytest.fixture
def clocked_bot(bot_factory: BotFactory) -> ClockedFactory:
    """A bot whose clock starts at the moment given; the test moves it on."""

    async def make(start: datetime) -> RunningBot:
        return await bot_factory(clock=ManualClock(start, ticking=True),
                                 bot={"commands_per_minute": 1000})

    return make


def said_by(events: list[dict[str, Any]], user_id: str) -> list[str]:
    return [e["content"].get("body", "") for e in events
            if e.get("sender") == user_id and e.get("type") == "m.room.message"]


async def bot_joined(person: Person, room: str, bot: RunningBot) -> None:
    await person.wait_for_message(room, sender=bot.user_id, event_type="m.room.member",
                                  predicate=lambda e: e.get("state_key") == bot.user_id,
                                  timeout=30)


# -- forgiving input ------------------------------------------------------------------------


async def test_a_missing_option_is_asked_for_then_answered_and_another_is_cancelled(
    bot: RunningBot, person_factory: PersonFactory,
) -> None:
    ann, bea = await person_factory("Ann", e2e=False), await person_factory("Bea", e2e=False)
    food = await bring_bot_in(ann, bot, "Wisbech Food Bank")
    youth = await bring_bot_in(bea, bot, "Wisbech Youth Club")
    options = "type=community-group area=Wisbech themes=food size=small"

    question = await ask(ann, food, f"!Group register {options}.", bot, "called")
    assert question == "What is the group called? (or !cancel)"
    done = await ask(ann, food, "Wisbech Food Bank", bot, "Registered")
    assert done.startswith("Registered G1 Wisbech Food Bank")

    await ask(bea, youth, f"!group register {options}", bot, "called")
    assert await ask(bea, youth, "!cancel", bot, "Cancelled") == "Cancelled; nothing was changed."
    await bea.send(youth, "Wisbech Youth Club")
    await asyncio.sleep(2)
    await bea.sync(timeout=0.5)
    assert not any("Registered" in b for b in said_by(await bea.messages(youth), bot.user_id))
    assert await ask(bea, youth, "!group", bot, "register") != ""


async def test_a_relayed_command_counts_as_a_members_whatever_the_relays_power(
    bot: RunningBot, person_factory: PersonFactory,
) -> None:
    ann, relay = await person_factory("Ann", e2e=False), await person_factory("Relay", e2e=False)
    room = await bring_bot_in(ann, bot, "Bridged group")
    await ann.invite(room, relay.user_id)
    await relay.join(room)
    await ann.set_power_level(room, relay.user_id, 100)
    options = "name=\"Chatteris Walkers\" type=community-group area=Chatteris themes=health " \
              "size=small"
    refused = await ask(relay, room, f"Ann: !group register {options}", bot, "role")
    assert "relayed through another account count as a member's" in refused
    registered = await ask(relay, room, f"!group register {options}", bot, "Registered")
    assert registered.startswith("Registered G1 Chatteris Walkers")


# -- a quiet voice --------------------------------------------------------------------------


async def test_posts_over_a_rooms_cap_come_next_morning_in_one_digest(
    clocked_bot: ClockedFactory, person_factory: PersonFactory, wall: datetime,
) -> None:
    bot = await clocked_bot(wall)
    ann = await person_factory("Ann", e2e=False)
    room = await bring_bot_in(ann, bot)
    bot.advance_to(next_london(wall, 10))
    async with bot.app.db.transaction() as session:
        for n in range(1, 6):
            await voice.enqueue_own_post(session, now=bot.clock.now(), tz=bot.app.settings.bot.tz,
                                         room_id=room, body=f"Notice {n}")
    bot.app.queued()
    await ann.wait_for_message(room, sender=bot.user_id, contains="Notice 3", timeout=30)
    await asyncio.sleep(1)

    bot.advance_to(next_london(bot.clock.now(), 8))
    # The scheduler's digest job (on its next look at the clock) or this call folds the two held
    # posts, whichever comes first; the other finds nothing left, so the room gets one digest.
    assert await voice.send_digests(bot.app, bot.clock.now()) in (0, 1)
    bot.app.queued()
    await ann.wait_for_message(room, sender=bot.user_id, contains="Digest", timeout=30)
    bodies = [b for b in said_by(await ann.messages(room), bot.user_id) if GREETING not in b]
    assert bodies == ["Notice 1", "Notice 2", "Notice 3",
                      "Digest: 2 posts held back to keep this room quiet.\n"
                      "- Notice 4\n- Notice 5"]


async def test_a_post_made_at_ten_at_night_waits_until_eight(
    clocked_bot: ClockedFactory, person_factory: PersonFactory, wall: datetime,
) -> None:
    bot = await clocked_bot(wall)
    ann = await person_factory("Ann", e2e=False)
    room = await bring_bot_in(ann, bot)  # the greeting is not a post of its own: at once
    ten_pm = next_london(wall, 22)
    bot.advance_to(ten_pm)
    async with bot.app.db.transaction() as session:
        row = await voice.enqueue_own_post(session, now=bot.clock.now(),
                                           tz=bot.app.settings.bot.tz, room_id=room,
                                           body="Warm spaces grant")
        assert row is not None
        row_id = row.id
    bot.app.queued()
    eight = next_london(ten_pm, 8)
    async with bot.app.db.transaction() as session:
        queued = await session.get(OutboxMessage, row_id)
        assert queued is not None
        assert queued.not_before == eight
    await asyncio.sleep(2)
    assert "Warm spaces grant" not in said_by(await ann.messages(room), bot.user_id)

    bot.advance_to(eight)
    await ann.wait_for_message(room, sender=bot.user_id, contains="Warm spaces grant",
                               timeout=30)


async def test_an_unverified_groups_request_reaches_only_its_own_volunteers(
    clocked_bot: ClockedFactory, person_factory: PersonFactory,
) -> None:
    bot = await clocked_bot(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    hana, vic, wes = [await person_factory(n, e2e=False) for n in ("Hana", "Vic", "Wes")]
    choir = await bring_bot_in(hana, bot, "New Choir")
    g1 = await register_group(bot, choir, "New Choir", hana.user_id)  # not verified
    dms = {}
    for person, via in ((vic, f" group=G{g1}"), (wes, "")):
        dms[person.user_id] = dm = await person.create_dm(bot.user_id, encrypted=False)
        await bot_joined(person, dm, bot)
        await ask(person, dm, "!volunteer register skills=driving,communication area=Wisbech "
                  f"availability=weekends over18=yes{via}", bot, "Welcome")
    reply = await ask(hana, choir, '!volunteer need 1 role="Singer" '
                      'when="2026-12-05 10:00-13:00" area=Wisbech', bot, "V1")
    assert "Offered to 1 " in reply, reply
    assert "an unverified group reaches only its own volunteers" in reply, reply
    # Offers come to the direct room Vic opened with the bot.
    await vic.wait_for_message(dms[vic.user_id], sender=bot.user_id, contains="O1", timeout=30)
    await asyncio.sleep(2)
    await wes.sync(timeout=0.5)
    assert not wes.invites
    assert not any(b.startswith("O") for b in said_by(await wes.messages(dms[wes.user_id]),
                                                      bot.user_id))


# -- no loops, encrypted DMs ----------------------------------------------------------------


async def test_two_bots_in_one_room_answer_people_and_not_each_other(
    bot_factory: BotFactory, person_factory: PersonFactory,
) -> None:
    first = await bot_factory(bot={"commands_per_minute": 1000})
    second = await bot_factory(bot={"commands_per_minute": 1000})
    ann = await person_factory("Ann", e2e=False)
    room = await ann.create_room(name="Two bots", invite=[first.user_id, second.user_id])
    for bot in (first, second):
        await ann.wait_for_message(room, sender=bot.user_id, contains=GREETING, timeout=30)
    for command in ("!help", "!fundng", "!about", "!more"):
        await ann.send(room, command)
    await asyncio.sleep(4)  # a loop would be well under way by now

    def counts(events: list[dict[str, Any]]) -> tuple[int, int]:
        return len(said_by(events, first.user_id)), len(said_by(events, second.user_id))

    settled = counts(await ann.messages(room, limit=200))
    await asyncio.sleep(3)
    events = await ann.messages(room, limit=200)
    assert counts(events) == settled
    # Each bot: its greeting and one answer to each of Ann's four commands, none to the other.
    assert settled == (5, 5)
    answered = {e["event_id"]: e["sender"] for e in events}
    for event in events:
        target = event.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {})
        if target:
            assert answered.get(target["event_id"]) == ann.user_id, event


async def test_an_encrypted_direct_message_gets_an_answer(
    bot: RunningBot, person_factory: PersonFactory,
) -> None:
    eve = await person_factory("Eve", e2e=True)
    dm = await eve.create_dm(bot.user_id, encrypted=True)
    await bot_joined(eve, dm, bot)
    answer = await ask(eve, dm, "!about", bot, "Grapevine")
    assert answer


async def test_without_encryption_the_bot_says_once_that_it_cannot_read_an_encrypted_room(
    bot_factory: BotFactory, person_factory: PersonFactory,
) -> None:
    bot = await bot_factory(matrix={"encryption": False})
    eve = await person_factory("Eve", e2e=True)
    room = await eve.create_room(name="Secret", invite=[bot.user_id], encrypted=True)
    await eve.wait_for_message(room, sender=bot.user_id, contains="can't read", timeout=30)
    await eve.send(room, "!about")
    await asyncio.sleep(3)
    said = said_by(await eve.messages(room), bot.user_id)
    assert [b for b in said if "can't read" in b] == [encrypted.CANNOT_READ]
    assert not any("Grapevine links" in b for b in said)


# -- no leaks -------------------------------------------------------------------------------


class Recorder(logging.Handler):
    """What the bot's log file would hold: INFO and up, nio at WARNING, as the CLI sets it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.addFilter(RedactBodies())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def bot_log() -> Iterator[Recorder]:
    root, nio_logger = logging.getLogger(), logging.getLogger("nio")
    levels = root.level, nio_logger.level
    recorder = Recorder()
    root.addHandler(recorder)
    root.setLevel(logging.INFO)
    nio_logger.setLevel(logging.WARNING)
    yield recorder
    root.removeHandler(recorder)
    root.setLevel(levels[0])
    nio_logger.setLevel(levels[1])


async def test_personal_commands_leave_no_trace_in_the_database_logs_or_room(
    bot_factory: BotFactory, person_factory: PersonFactory, bot_log: Recorder,
) -> None:
    vic, mia, ann = [await person_factory(n) for n in ("Vic", "Mia", "Ann")]
    bot = await bot_factory(bot={"commands_per_minute": 1000},
                            privacy={"notes_key": Fernet.generate_key().decode()})
    marker = uuid.uuid4().hex[:10].upper()
    register = ("!volunteer register skills=driving area=Wisbech availability=weekends "
                "dbs=enhanced dbs_workforce=adult dbs_checked=2025-01-10 update_service=no "
                f"over18=yes\nAbout me: VOL-{marker}")
    note = f'!mediation note M1 "Worried about the keys NOTE-{marker}"'

    vic_dm = await vic.create_dm(bot.user_id)
    await bot_joined(vic, vic_dm, bot)
    registered_event = await vic.send(vic_dm, register)
    await vic.wait_for_message(vic_dm, sender=bot.user_id, contains="Welcome to the volunteer",
                               timeout=30)

    food = await bring_bot_in(ann, bot, "Wisbech Food Bank")
    g1 = await register_group(bot, food, "Wisbech Food Bank", ann.user_id)
    async with bot.app.db.transaction() as session:
        await cases.open_case(session, title="Shared hall", mediator=mia.user_id,
                              opened_by=mia.user_id, at=bot.app.clock.now(),
                              parties=[(g1, "Wisbech Food Bank")], room_key="k")
    mia_dm = await mia.create_dm(bot.user_id)
    await bot_joined(mia, mia_dm, bot)
    note_event = await mia.send(mia_dm, note)
    await mia.wait_for_message(mia_dm, sender=bot.user_id, contains="Note 1", timeout=30)

    stored = await database_bytes(bot)
    for secret in (f"VOL-{marker}", f"NOTE-{marker}", register.splitlines()[0]):
        assert secret.encode() not in stored, secret
    logged = "\n".join(bot_log.lines)
    assert bot_log.lines, "the recorder heard the bot"
    for secret in (marker, "2025-01-10", "dbs_checked", "Worried about the keys"):
        assert secret not in logged, secret
    for person, room, event_id in ((vic, vic_dm, registered_event), (mia, mia_dm, note_event)):
        event = await read_back(person, room, event_id)
        assert event["content"] == {}, event
        assert "redacted_because" in event.get("unsigned", {}), event


async def read_back(person: Person, room: str, event_id: str,
                    timeout: float = 30) -> dict[str, Any]:
    """The event as the server now serves it (the bot redacts after its commit)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = {e.get("event_id"): e for e in await person.messages(room, limit=100)}
        event = events.get(event_id, {})
        if "redacted_because" in event.get("unsigned", {}) or \
                asyncio.get_running_loop().time() > deadline:
            return event
        await asyncio.sleep(0.3)
