"""The backbone on a real Synapse: it remembers, never replays, and survives outages."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

from botfixture import (
    REPO,
    BotDatabases,
    BotFactory,
    BotProcess,
    RunningBot,
    bring_bot_in,
    make_bot_setup,
)
from conftest import PersonFactory
from people import Person

from bot.homeserver import EmbeddedSynapse, RegisteredUser


def replies_by_command(events: list[dict], bot_id: str) -> Counter[str]:
    """How many times the bot answered each command event (replies point at it)."""
    counts: Counter[str] = Counter()
    for event in events:
        if event.get("sender") != bot_id or event.get("type") != "m.room.message":
            continue
        target = event["content"].get("m.relates_to", {}).get("m.in_reply_to", {})
        if target.get("event_id"):
            counts[target["event_id"]] += 1
    return counts


async def test_killed_mid_stream_and_restarted_every_command_is_answered_exactly_once(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, person_factory: PersonFactory,
    tmp_path: Path, bot_databases: BotDatabases,
) -> None:
    setup = await make_bot_setup(
        synapse, synapse_admin, tmp_path / "bot", bot_databases,
        bot={"commands_per_minute": 1000},
    )
    process = BotProcess(setup)
    process.start()
    await process.wait_ready()
    alice: Person = await person_factory("Alice", e2e=False)
    room = await bring_bot_in(alice, setup)
    commands = [await alice.send(room, f"!help about {i}") for i in range(20)]
    # Kill it hard once about half have been answered.
    for _ in range(120):
        if sum(replies_by_command(alice.events, setup.user_id).values()) >= 10:
            break
        await alice.sync(timeout=0.5)
    else:
        raise AssertionError(f"the bot answered too few commands:\n{process.tail()}")
    process.kill()
    process.start()
    await process.wait_ready()
    for _ in range(120):
        answered = replies_by_command(alice.events, setup.user_id)
        if all(answered[c] >= 1 for c in commands):
            break
        await alice.sync(timeout=0.5)
    await asyncio.sleep(2)  # anything duplicated would arrive now
    await alice.sync(timeout=0.5)
    answered = replies_by_command(alice.events, setup.user_id)
    assert [answered[c] for c in commands] == [1] * 20, process.tail()
    assert process.terminate() == 0


async def test_the_bot_resumes_after_synapse_restarts(
    synapse: EmbeddedSynapse, bot: RunningBot, alice: Person,
) -> None:
    room = await bring_bot_in(alice, bot)
    await synapse.restart()
    await alice.send(room, "!about")
    reply = await alice.wait_for_message(room, sender=bot.user_id, contains="Grapevine links",
                                         timeout=60)
    assert reply["content"]["msgtype"] == "m.text"


async def test_a_second_instance_on_the_same_database_refuses_to_start(
    bot: RunningBot,
) -> None:
    process = BotProcess(bot.setup, clock=bot.clock)
    process.start()
    assert process.proc is not None
    code = await asyncio.to_thread(process.proc.wait, 60)
    assert code == 3
    assert "already running" in process.tail()


async def test_bad_config_is_refused_one_line_per_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[matrix]\nhomeserver = "matrix.example.org"\n[bot]\ncolour = "red"\n')
    for command in ("check-config", "run"):
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", command, "-c", str(config)],
            cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "bot.colour: unknown key; check its spelling against config/grapevine.toml",
            "matrix.homeserver: must start with http:// or https://",
        ]
        assert "Traceback" not in result.stderr


async def test_people_get_one_clear_line_for_each_mistake_and_nothing_changes(
    bot_factory: BotFactory, person_factory: PersonFactory,
) -> None:
    alice = await person_factory("Alice", e2e=False)
    bot = await bot_factory(roles={"admins": [alice.user_id]})
    room = await bring_bot_in(alice, bot)
    bob = await person_factory("Bob", e2e=False)
    await alice.invite(room, bob.user_id)
    await bob.join(room)
    cases = [
        (alice, "!abuot", "Did you mean !about?"),
        (alice, "!role grant @x:localhost mayor", "role: should be one of coordinator, moderator"),
        (alice, f"!role grant {bob.user_id} moderator", "Which area will they moderate?"),
        (alice, "!cancel", "Cancelled; nothing was changed."),
        (bob, f"!role grant {bob.user_id} coordinator", "needs the admin role"),
    ]
    for person, text, expected in cases:
        await person.send(room, text)
        reply = await person.wait_for_message(room, sender=bot.user_id)
        body = reply["content"]["body"]
        assert expected in body and "\n" not in body, (text, body)
    await alice.send(room, "!roles")
    roles = await alice.wait_for_message(room, sender=bot.user_id)
    assert "Coordinators" not in roles["content"]["body"]
    assert "Moderators" not in roles["content"]["body"]


async def test_the_shell_answers_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell"], input="!help\n", cwd=REPO,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "!about: what this bot does and what it records" in result.stdout
