"""A group on IRC through the real heisenbridge and a real IRC server (ngircd), all on
loopback: the group's Matrix room is plumbed to an IRC channel as bridges/deploy/irc
says, and Ivy is a person on IRC with nothing but an IRC client.

What IRC people see is read on IRC itself: every message of the bot's is at most
three IRC lines, whole; an IRC person's personal command is answered honestly with
nothing personal in the channel; !more works after another command; the room is
recorded as IRC although heisenbridge sends no bridge state; and the bridge's own
bot is never answered.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from botfixture import BotDatabases, RunningBot, bring_bot_in, make_bot_setup
from ircnet import RELAY_NICK, IrcClient, IrcNetwork, guide_shell
from people import Person
from sqlalchemy import select

from bot.features import funding_jobs
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from storage import rooms
from storage.models import OutboxMessage

CHANNEL = "#chatteris"
BOT_NAME = "Grapevine"
WAIT = 30.0
FOOD = ('!funding post https://example.org/food title="Food Fund" funder="Fenland Trust" '
        "deadline=+30d amount=500-5000 areas=fenland themes=food")


def bots_copy(registration: Path, data_dir: Path) -> None:
    """The guide's step 4: the bot's copy of the registration, tokens blanked (its own sed)."""
    (data_dir / "bridges").mkdir(parents=True, exist_ok=True)
    command = guide_shell("sed -E", {
        "/opt/heisenbridge/heisenbridge.yaml": shlex.quote(str(registration)),
        "<data_dir>": shlex.quote(str(data_dir))})
    subprocess.run(["sh", "-c", command], check=True, timeout=30)
    copy = yaml.safe_load((data_dir / "bridges" / "heisenbridge.yaml").read_text())
    assert copy["id"] == "heisenbridge" and copy["as_token"] == "-"


@dataclass
class IrcGroup:
    bot: RunningBot
    room: str
    alice: Person
    ivy: IrcClient
    network: IrcNetwork
    synapse: EmbeddedSynapse
    matrix_mark: int = 0

    async def bot_said(self, since: int, ending: str | None = None) -> list[str]:
        """The IRC lines of the next message the bot (relayed as ``<Grapevine>``) posted
        after ``since``: complete once the Matrix message's every line has arrived."""
        event = await self.alice.wait_for_message(
            self.room, sender=self.bot.user_id, contains=ending, since=self.matrix_mark,
            timeout=WAIT)
        self.matrix_mark = self.alice.events.index(event) + 1
        body = str(event["content"]["body"])
        wanted = [line for line in body.splitlines() if line.strip()]
        deadline = time.monotonic() + WAIT
        while True:
            message = self._message_after(since, wanted[0])
            if len(message) >= len(wanted) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert [_unprefixed(line) for line in message] == wanted, (message, body)
        return message

    def _message_after(self, since: int, first: str) -> list[str]:
        lines = self.ivy.said_in(CHANNEL, RELAY_NICK, since)
        for start, line in enumerate(lines):
            if line.startswith(f"<{BOT_NAME}> ") and _unprefixed(line) == first:
                rest = lines[start + 1:]
                end = next((i for i, x in enumerate(rest) if x.startswith("<")), len(rest))
                return [line, *rest[:end]]
        return []

    async def ask(self, text: str, ending: str | None = None) -> list[str]:
        return await self.bot_said(self.ivy.say(CHANNEL, text), ending)


def _unprefixed(line: str) -> str:
    """An IRC line without the relay's ``<Grapevine> `` and the reply's ``ivy: ``."""
    line = line.removeprefix(f"<{BOT_NAME}> ")
    return line.removeprefix("ivy: ")


@pytest.fixture
async def group(
    irc_network: IrcNetwork, synapse: EmbeddedSynapse, synapse_admin: RegisteredUser,
    person_factory: object, tmp_path: Path, bot_databases: BotDatabases,
) -> AsyncIterator[IrcGroup]:
    alice: Person = await person_factory("Alice", e2e=False)  # type: ignore[operator]
    setup = await make_bot_setup(synapse, synapse_admin, tmp_path / "bot", bot_databases,
                                 roles={"coordinators": [alice.user_id]})
    bots_copy(irc_network.registration.path, setup.data_dir)
    bot = await RunningBot(setup).start()
    ivy = await IrcClient("ivy").connect(irc_network.server.port)
    try:
        room = await bring_bot_in(alice, bot, "Chatteris Food Bank")
        await ivy.join(CHANNEL)
        mark = len(ivy.lines)
        await alice.invite(room, irc_network.bridge_bot)
        await irc_network.plumb(room, CHANNEL)
        await ivy.wait_for(lambda line: line.command == "JOIN" and line.nick == RELAY_NICK,
                           since=mark, timeout=WAIT)
        found = IrcGroup(bot, room, alice, ivy, irc_network, synapse)
        found.matrix_mark = await alice.mark()
        yield found
    finally:
        await bot.stop()
        # The relay's PART must be seen before the next test plumbs the channel again:
        # a PART that lands after the next PLUMB leaves heisenbridge out of the channel.
        mark = len(ivy.lines)
        await irc_network.command(irc_network.network_room, f"UNPLUMB {CHANNEL}", "Leaving")
        await ivy.wait_for(lambda line: line.command == "PART" and line.nick == RELAY_NICK,
                           since=mark, timeout=WAIT)
        await ivy.close()


def whole_in_three(message: list[str]) -> bool:
    return 1 <= len(message) <= 3 and all(len(line.encode()) <= 450 for line in message)


async def test_a_group_on_irc_gets_three_whole_lines_honest_dms_and_more(group: IrcGroup) -> None:
    help_text = await group.ask("!help")
    assert whole_in_three(help_text)
    joined = " ".join(help_text)
    assert all(word in joined for word in ("!about", "!funding", "!privacy", "!volunteer"))
    async with group.bot.app.db.transaction() as session:
        known = await rooms.get(session, group.room)
    assert known is not None and known.network == "irc"

    # A personal command from IRC: the truth in the channel, nothing personal, no DM.
    honest = await group.ask("!privacy export")
    assert whole_in_three(honest)
    assert _unprefixed(honest[0]).startswith("I couldn't reach you privately through this bridge")
    assert "log in to the bridge" in " ".join(honest) and "{" not in " ".join(honest)
    general = await group.ask("!privacy")
    assert whole_in_three(general) and "never message text" in " ".join(general)
    ghost = f"@irc_local_ivy:{group.alice.server_name}"
    async with group.bot.app.db.transaction() as session:
        to_ivy = await session.scalars(select(OutboxMessage).where(OutboxMessage.to_user == ghost))
        assert list(to_ivy) == []

    # A long answer pages; a short command in between does not lose the rest.
    first = await group.ask("!help volunteer")
    assert whole_in_three(first) and first[-1].endswith("lines: !more")
    assert whole_in_three(await group.ask("!cancel"))
    second = await group.ask("!more")
    assert whole_in_three(second) and _unprefixed(second[0]).startswith("!volunteer")
    assert _unprefixed(second[0]) not in [_unprefixed(line) for line in first]


async def test_a_funding_notice_reaches_irc_whole_and_the_bridge_bot_is_never_answered(
    group: IrcGroup,
) -> None:
    await group.alice.send(group.room, "!funding subscribe")
    await group.alice.wait_for_message(group.room, sender=group.bot.user_id,
                                       contains="Subscribed", timeout=WAIT)
    group.matrix_mark = await group.alice.mark()
    since = len(group.ivy.lines)
    await group.alice.send(group.room, FOOD)
    await group.alice.wait_for_message(group.room, sender=group.bot.user_id,
                                       contains="F1 published", timeout=WAIT)
    await funding_jobs.sweep(group.bot.app)
    notice = await group.bot_said(since, ending="Funding F1:")
    assert whole_in_three(notice)
    said = " ".join(notice)
    assert "Food Fund" in said and "Fenland Trust" in said and "http" in said

    # heisenbridge's own bot says a command in the room: the bot lets it be, and answers
    # Ivy's next command (the room's commands are handled in order).
    registration = yaml.safe_load(group.network.registration.path.read_text())
    bridge_bot = group.network.bridge_bot
    path = (f"/_matrix/client/v3/rooms/{quote(group.room, safe='')}/send/m.room.message/"
            f"hb{time.monotonic_ns()}?user_id={quote(bridge_bot, safe='')}")
    await group.synapse.request("PUT", path, token=registration["as_token"],
                                        body={"msgtype": "m.text", "body": "!about"})
    about = await group.ask("!privacy", ending="never message text")
    assert whole_in_three(about)
    answers = [e for e in group.alice.events
               if e.get("room_id") == group.room and e.get("sender") == group.bot.user_id
               and "links up community groups" in str(e.get("content", {}).get("body"))]
    assert answers == []



async def test_venues_are_found_and_a_hub_shown_from_irc(group: IrcGroup) -> None:
    """``!venue`` typed on IRC: the answers arrive there whole, and a hub's answer, which
    comes with its notice sheet, is not lost with the file (heisenbridge without a media
    URL drops a file message, words and all)."""
    await group.alice.send(group.room, '!venue add name="Chatteris Community Centre" '
                           "area=Chatteris capacity=120 price=low accessible=yes hub=yes "
                           "contact=hello@chatteris.example")
    await group.alice.wait_for_message(group.room, sender=group.bot.user_id,
                                       contains="Added P1", timeout=WAIT)
    group.matrix_mark = await group.alice.mark()
    found = await group.ask("!venue find area=Chatteris")
    assert [_unprefixed(line) for line in found] == [
        "P1 Chatteris Community Centre (Chatteris): 120 people, low cost, step-free, "
        "community hub; book: hello@chatteris.example"]
    shown = await group.ask("!venue show P1")
    assert whole_in_three(shown)
    assert [_unprefixed(line) for line in shown] == [
        "P1 Chatteris Community Centre (Chatteris): 120 people, low cost, step-free, "
        "community hub.",
        "Book: hello@chatteris.example.",
        "Community hub: the notice sheet for Chatteris (0 open notices) is attached, to "
        "print and pin up. (The file follows; a Matrix client shows it, this chat may not.)"]
    # The sheet itself reaches the room's Matrix side.
    sheet = await group.alice.wait_for_message(
        group.room, sender=group.bot.user_id, since=group.matrix_mark, timeout=WAIT,
        predicate=lambda e: e["content"].get("msgtype") == "m.file")
    assert sheet["content"]["info"]["mimetype"] == "application/pdf"
    group.matrix_mark = group.alice.events.index(sheet) + 1
    missing = await group.ask("!venue show P9")
    assert [_unprefixed(line) for line in missing] == [
        "There is no venue P9; !venue find area=... lists them."]
