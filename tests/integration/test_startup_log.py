"""What a deployer reads when `grapevine run` starts: a few lines saying what happened
(logged in, running, in sync), not a page of scheduler chatter; `-v` shows the rest."""

from __future__ import annotations

from pathlib import Path

from botfixture import BotDatabases, BotProcess, make_bot_setup

from bot.homeserver import EmbeddedSynapse, RegisteredUser

FIRST_SYNC = "in sync with the homeserver"


async def started(synapse: EmbeddedSynapse, admin: RegisteredUser, data_dir: Path,
                  databases: BotDatabases, *options: str) -> list[str]:
    """The log of one start of `grapevine run`, up to and including its first sync."""
    setup = await make_bot_setup(synapse, admin, data_dir, databases)
    process = BotProcess(setup, *options)
    process.start()
    try:
        await process.wait_ready()
    finally:
        assert process.terminate() == 0, process.tail()
    lines = process.log.read_text(errors="replace").splitlines()
    synced = [i for i, line in enumerate(lines) if FIRST_SYNC in line]
    assert synced, "no line says the first sync happened:\n" + "\n".join(lines)
    return lines[: synced[0] + 1]


async def test_the_start_up_log_is_a_few_lines_saying_what_happened(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, tmp_path: Path,
    bot_databases: BotDatabases,
) -> None:
    lines = await started(synapse, synapse_admin, tmp_path / "bot", bot_databases)
    text = "\n".join(lines)
    assert len(lines) < 15, text
    assert any("logged in as" in line for line in lines), text
    assert any("Grapevine is running as" in line for line in lines), text
    assert not any("apscheduler" in line for line in lines), text
    assert not any(" DEBUG " in line for line in lines), text


async def test_dash_v_shows_what_the_quiet_log_leaves_out(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, tmp_path: Path,
    bot_databases: BotDatabases,
) -> None:
    lines = await started(synapse, synapse_admin, tmp_path / "bot", bot_databases, "-v")
    text = "\n".join(lines)
    assert any(" DEBUG " in line for line in lines), text
    assert any("grapevine.scheduler" in line for line in lines), text
