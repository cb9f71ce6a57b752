"""Element's own crypto (matrix-js-sdk + Rust crypto) with "exclude insecure devices" on.

Each reply must decrypt in js-sdk and come from a device js-sdk sees as signed by
its owner (no "not verified by its owner" shield): otherwise Element would not even
have sent the bot the room key.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from botfixture import (
    BotDatabases,
    BotFactory,
    BotProcess,
    RunningBot,
    bring_bot_in,
    make_bot_setup,
)
from conftest import PersonFactory
from jsperson import JsPerson, log_in_again
from test_volunteers import register_group

from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.runtime.undecryptable import GRACE, NOTICE
from tests.clocks import START, ManualClock

UNSIGNED_DEVICE = 2  # EventShieldReason.UNSIGNED_DEVICE
UNKNOWN_DEVICE = 3

JsFactory = Callable[..., Awaitable[JsPerson]]


@pytest.fixture
async def js_person(synapse: EmbeddedSynapse, tmp_path: Path) -> AsyncIterator[JsFactory]:
    started: list[JsPerson] = []

    async def start(user: RegisteredUser | None = None, name: str = "Erin") -> JsPerson:
        first_device = user is None
        if user is None:
            user = await synapse.register(f"{name.lower()}.{uuid.uuid4().hex[:8]}",
                                          displayname=name)
        person = await JsPerson.start(synapse, user, tmp_path / f"js-{len(started)}.log",
                                      bootstrap=first_device)
        started.append(person)
        return person

    yield start
    for person in started:
        await person.close()


def assert_trusted(reply: dict[str, Any], bot_user: str) -> None:
    """Decrypted, from the bot's device, which its owner has cross-signed."""
    assert reply["sender"] == bot_user
    assert reply["encrypted"] and not reply["decryption_failure"], reply
    assert reply["signed_by_owner"] is True, reply
    assert reply["shield_reason"] not in (UNSIGNED_DEVICE, UNKNOWN_DEVICE), reply


async def test_an_element_dm_is_answered_at_once_on_every_device_and_after_restarts(
    synapse: EmbeddedSynapse, bot_factory: BotFactory, js_person: JsFactory,
    person_factory: PersonFactory,
) -> None:
    bot = await bot_factory()
    erin = await js_person()
    dm = await erin.create_dm(bot.user_id)
    await erin.send(dm, "!help")  # at once: the bot has not joined yet

    assert_trusted(await erin.wait_message(dm, bot.user_id, contains="!about:"), bot.user_id)
    await erin.send(dm, "!volunteer register skills=driving area=Wisbech "
                        "availability=weekends over18=yes")
    assert_trusted(await erin.wait_message(dm, bot.user_id, contains="Welcome to the volunteer"),
                   bot.user_id)

    # A group asks for a driver: the bot writes to Erin first, in her encrypted DM.
    host = await person_factory("Hana", e2e=False)
    room = await bring_bot_in(host, bot, "Wisbech Food Bank")
    await register_group(bot, room, host.user_id)
    await host.send(room, '!volunteer need 1 role="Driver" when="sat 10am-1pm" area=Wisbech')
    await host.wait_for_message(room, sender=bot.user_id, contains="V1:", timeout=60)
    assert_trusted(await erin.wait_message(dm, bot.user_id, contains="needs 1 x Driver"),
                   bot.user_id)

    # A new device of the same person gets the bot's next reply too. (Until the person
    # verifies it, Element will not let that device send with insecure devices excluded.)
    laptop = await js_person(await log_in_again(synapse, erin.user))
    await erin.send(dm, "!about")
    assert_trusted(await laptop.wait_message(dm, bot.user_id, contains="Opt out with"),
                   bot.user_id)

    # The bot's crypto store is lost: a new device, signed again on start, trusted at once.
    await bot.stop()
    shutil.rmtree(bot.setup.data_dir / "crypto")
    await bot.start()
    await erin.send(dm, "!help")
    assert_trusted(await erin.wait_message(dm, bot.user_id, contains="!about:"), bot.user_id)


async def test_a_bot_stopped_with_sigterm_still_answers_after_restart(
    bot_factory: BotFactory, js_person: JsFactory
) -> None:
    bot: RunningBot = await bot_factory()
    await bot.stop()
    process = BotProcess(bot.setup, clock=bot.clock)
    process.start()
    try:
        await process.wait_ready()
        erin = await js_person()
        dm = await erin.create_dm(bot.user_id)
        await erin.send(dm, "!help")
        assert_trusted(await erin.wait_message(dm, bot.user_id, contains="!about:"),
                       bot.user_id)

        assert process.terminate() == 0
        process.start()
        await process.wait_ready()
        await erin.send(dm, "!about")
        assert_trusted(await erin.wait_message(dm, bot.user_id, contains="Opt out with"),
                       bot.user_id)
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.kill()


async def test_a_late_key_gets_the_command_answered_and_a_withheld_one_one_plain_notice(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, tmp_path: Path,
    js_person: JsFactory, bot_databases: BotDatabases,
) -> None:
    clock = ManualClock(START)  # frozen: only the test moves it past the key's grace
    setup = await make_bot_setup(synapse, synapse_admin, tmp_path / "clocked", bot_databases,
                                 matrix={"sync_timeout_ms": 500})
    bot = await RunningBot(setup, clock).start()
    try:
        erin = await js_person()
        dm = await erin.create_dm(bot.user_id)
        await erin.send(dm, "!help")
        await erin.wait_message(dm, bot.user_id, contains="!about:")
        waiting = bot.service.sync.undecryptable  # type: ignore[union-attr]

        # A late key: the message waits, then is answered once the key arrives.
        await erin.call("rotate", room_id=dm)
        await erin.call("hold_keys")
        await erin.send(dm, "!about")
        await until(lambda: waiting.waiting == 1, "the bot to wait for the key")
        assert (await erin.call("release_keys"))["released"] >= 1
        assert_trusted(await erin.wait_message(dm, bot.user_id, contains="Opt out with"),
                       bot.user_id)

        # Keys withheld: one plain notice, however many messages cannot be read.
        await erin.call("rotate", room_id=dm)
        await erin.call("hold_keys")
        for command in ("!help", "!privacy"):
            await erin.send(dm, command)
            await until(lambda: waiting.waiting == 1, "the bot to wait for the key")
            clock.advance(seconds=GRACE.total_seconds() + 1)
            await until(lambda: waiting.waiting == 0, "the bot to give up on the key")
        notice = await erin.wait_message(dm, bot.user_id, contains="couldn't read")
        assert_trusted(notice, bot.user_id)
        assert notice["body"] == NOTICE

        await erin.call("rotate", room_id=dm)
        await erin.call("release_keys")  # keys flow again
        await erin.send(dm, "!about")
        await erin.wait_message(dm, bot.user_id, contains="Opt out with")
        bodies = (await erin.call("bodies", room_id=dm, sender=bot.user_id))["bodies"]
        assert [b for b in bodies if "couldn't read" in b] == [NOTICE]
        assert len([b for b in bodies if "Opt out with" in b]) == 2  # the late one, once
    finally:
        await bot.stop()


async def test_a_message_waiting_for_its_key_is_answered_once_after_a_restart(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, tmp_path: Path,
    js_person: JsFactory, bot_databases: BotDatabases,
) -> None:
    """The sync position is past the message before its key comes: the waiting list is
    what a restart must not lose (and it keeps ids only, so the event is fetched again)."""
    clock = ManualClock(START)  # frozen: the grace never runs out here
    setup = await make_bot_setup(synapse, synapse_admin, tmp_path / "restarted", bot_databases,
                                 matrix={"sync_timeout_ms": 500})
    bot = await RunningBot(setup, clock).start()
    try:
        erin = await js_person()
        dm = await erin.create_dm(bot.user_id)
        await erin.send(dm, "!help")
        await erin.wait_message(dm, bot.user_id, contains="!about:")

        await erin.call("rotate", room_id=dm)
        await erin.call("hold_keys")
        await erin.send(dm, "!about")
        await until(lambda: bot.service.sync.undecryptable.waiting == 1,  # type: ignore[union-attr]
                    "the bot to wait for the key")
        await bot.restart()
        assert bot.service.sync.undecryptable.waiting == 1  # type: ignore[union-attr]

        assert (await erin.call("release_keys"))["released"] >= 1
        assert_trusted(await erin.wait_message(dm, bot.user_id, contains="Opt out with"),
                       bot.user_id)
        await until(lambda: bot.service.sync.undecryptable.waiting == 0,  # type: ignore[union-attr]
                    "the bot to stop waiting")

        # Once, and not again after another restart (its waiting row is gone).
        await bot.restart()
        await erin.send(dm, "!help")
        await erin.wait_message(dm, bot.user_id, contains="!about:")
        bodies = (await erin.call("bodies", room_id=dm, sender=bot.user_id))["bodies"]
        assert len([b for b in bodies if "Opt out with" in b]) == 1
        assert not [b for b in bodies if "couldn't read" in b]
    finally:
        await bot.stop()


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
