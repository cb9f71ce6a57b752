"""A group room plumbed to IRC by heisenbridge, in the in-process world: no bridge state,
yet the room is IRC, and everything the bot says there is three whole lines at most.
(tests/integration/test_irc.py runs the same with the real bridge and IRC server.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.events import StateChange
from bot.runtime.outbox_worker import OutboxWorker
from bot.transport.world import WorldTransport
from storage import outbox, rooms
from storage.models import OutboxMessage
from tests.botworld import BotWorld, bot_world
from tests.clocks import START

HS = "grapevine.local"
HEISENBRIDGE = f"@heisenbridge:{HS}"
# As `heisenbridge -c heisenbridge.yaml --generate` writes it, tokens blanked.
REGISTRATION = {
    "id": "heisenbridge", "url": "http://127.0.0.1:9898", "as_token": "-", "hs_token": "-",
    "rate_limited": False, "sender_localpart": "heisenbridge",
    "namespaces": {"users": [{"regex": "@irc_.*", "exclusive": True}],
                   "aliases": [], "rooms": []},
}


@pytest.fixture
async def bw(tmp_path: Path) -> AsyncIterator[BotWorld]:
    folder = tmp_path / "bridges"
    folder.mkdir()
    (folder / "heisenbridge.yaml").write_text(yaml.safe_dump(REGISTRATION))
    async with bot_world(tmp_path) as world:
        yield world


def joined(room: str, user: str) -> StateChange:
    return StateChange(f"$join-{user}", room, user, "m.room.member", user,
                       {"membership": "join"}, START)


async def plumbed(bw: BotWorld) -> tuple[str, str]:
    """Alice's group room, the bot in it, then heisenbridge plumbs it and Ivy talks on IRC."""
    alice = bw.world.user("alice", "Alice")
    room = bw.world.create_room(alice, name="Chatteris Food Bank")
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    bw.world.user("heisenbridge", "heisenbridge")
    await bw.world.join(HEISENBRIDGE, room)
    await bw.app.on_state(joined(room, HEISENBRIDGE))
    ivy = bw.world.user("irc_local_ivy", "ivy")
    await bw.world.join(ivy, room)
    return room, ivy


def whole_irc_lines(message: str) -> bool:
    lines = message.splitlines()
    return 1 <= len(lines) <= 3 and all(len(line.encode()) <= 350 for line in lines)


async def test_a_room_heisenbridge_plumbs_is_irc(bw: BotWorld) -> None:
    room, _ = await plumbed(bw)
    async with bw.app.db.transaction() as session:
        known = await rooms.get(session, room)
    assert known is not None and known.network == "irc"
    assert (await bw.app.room_context(room)).network == "irc"


async def test_help_is_whole_in_three_lines(bw: BotWorld) -> None:
    room, ivy = await plumbed(bw)
    [help_text] = await bw.say(ivy, room, "!help")
    assert whole_irc_lines(help_text) and "more" not in help_text.splitlines()[-1]
    for word in ("!about", "!funding", "!help", "!privacy", "!volunteer"):
        assert word in help_text


async def test_more_follows_after_another_command(bw: BotWorld) -> None:
    room, ivy = await plumbed(bw)
    [funding] = await bw.say(ivy, room, "!help volunteer")
    assert whole_irc_lines(funding) and funding.splitlines()[-1].endswith("lines: !more")
    [cancel] = await bw.say(ivy, room, "!cancel")
    assert cancel == "There was nothing to cancel."
    [second] = await bw.say(ivy, room, "!more")
    assert whole_irc_lines(second) and second.splitlines()[0] not in funding.splitlines()
    assert second.splitlines()[0].startswith("!volunteer")


async def test_the_bridge_bot_is_never_answered(bw: BotWorld) -> None:
    room, _ = await plumbed(bw)
    assert await bw.say(HEISENBRIDGE, room, "!help") == []


async def post_and_send(bw: BotWorld, room: str, body: str) -> str:
    async with bw.app.db.transaction() as session:
        await outbox.enqueue(session, now=bw.clock.now(), room_id=room, body=body,
                             kind="notice", own_post=True)
    worker = OutboxWorker(bw.app.db, WorldTransport(bw.world, bw.bot), bw.clock,
                          rest=bw.app.pager.keep_for_room)
    assert await worker.drain() == 1
    return bw.world.messages(room, sender=bw.bot)[-1]


async def test_a_four_line_notice_arrives_whole_in_three_lines(bw: BotWorld) -> None:
    room, _ = await plumbed(bw)
    notice = ("Funding F12: Warm Spaces Fund (Fenland Council)\n"
              "£1,000 to £5,000 · closes Friday 11 December\n"
              "For: Chatteris · food, warm spaces\n"
              "https://example.org/funding/F12?r=abc123")
    posted = await post_and_send(bw, room, notice)
    assert whole_irc_lines(posted) and "more" not in posted
    assert posted.replace(" · ", " ").split() == notice.replace(" · ", " ").split()
    assert posted.splitlines()[-1].endswith("https://example.org/funding/F12?r=abc123")


async def test_a_long_post_of_the_bots_own_pages_and_anyone_may_ask_for_more(
    bw: BotWorld,
) -> None:
    room, ivy = await plumbed(bw)
    digest = "\n".join(
        f"Funding F{i}: Community Fund number {i} for groups across the county, "
        f"£{i},000 to £{i + 5},000, closes Friday {i} January: https://example.org/f/{i}"
        for i in range(1, 9))
    posted = await post_and_send(bw, room, digest)
    assert whole_irc_lines(posted) and posted.splitlines()[-1].endswith("lines: !more")
    shown = posted.splitlines()[:-1]
    assert shown == digest.splitlines()[:len(shown)]
    [rest] = await bw.say(ivy, room, "!more")
    assert whole_irc_lines(rest)
    assert rest.startswith(digest.splitlines()[len(shown)])


async def test_an_irc_person_is_told_the_truth_about_dms_and_sees_nothing_personal(
    bw: BotWorld,
) -> None:
    room, ivy = await plumbed(bw)
    [general] = await bw.say(ivy, room, "!privacy")
    assert whole_irc_lines(general)
    assert general.startswith("I couldn't reach you privately through this bridge")
    # It never claims a DM it could not send (the retention line may mention DMs in general).
    assert "sent you a direct message" not in general and "I've sent you" not in general
    assert "never who read" in general and "no count under 5" in general
    [honest] = await bw.say(ivy, room, "!privacy export")
    assert honest.startswith("I couldn't reach you privately through this bridge")
    assert "log in to the bridge" in honest and "group admin" in honest
    assert whole_irc_lines(honest)
    assert bw.dms(ivy) == []
    assert all("user_id" not in m for m in bw.world.messages(room, sender=bw.bot))


async def test_a_room_once_named_after_heisenbridge_is_corrected_to_irc(bw: BotWorld) -> None:
    alice = bw.world.user("alice", "Alice")
    room = bw.world.create_room(alice, name="Old plumb")
    await bw.world.join(bw.bot, room)
    async with bw.app.db.transaction() as session:
        known = await rooms.get(session, room)
        assert known is not None
        known.network = "heisenbridge"  # what the bot recorded before it knew the table
    await bw.app.on_state(joined(room, f"@irc_local_ivy:{HS}"))
    async with bw.app.db.transaction() as session:
        known = await rooms.get(session, room)
    assert known is not None and known.network == "irc"


async def test_an_irc_person_can_still_opt_out_and_hears_it_in_the_channel(bw: BotWorld) -> None:
    room, ivy = await plumbed(bw)
    [done] = await bw.say(ivy, room, "!privacy optout")
    assert done.startswith("Done: from now on I record nothing") and whole_irc_lines(done)
    [again] = await bw.say(ivy, room, "!privacy optout")
    assert again.startswith("You're already opted out")
    [back] = await bw.say(ivy, room, "!privacy optin")
    assert back.startswith("Thanks: I record your message flow again")
    assert bw.dms(ivy) == []


async def test_an_answer_with_a_file_comes_as_text_then_the_file(bw: BotWorld) -> None:
    """heisenbridge drops a file message whole when it has no media URL: the words must
    not ride on it."""
    room, ivy = await plumbed(bw)
    text, name = await bw.say(ivy, room, "!funding sheet area=Chatteris")
    assert text == ("Funding sheet for Chatteris: 0 open notices, ready to print. (The "
                    "file follows; a Matrix client shows it, this chat may not.)")
    assert whole_irc_lines(text) and name.endswith(".pdf")
    async with bw.app.db.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.room_id == room).order_by(OutboxMessage.id)))
    assert [(r.file_data is None, r.file_mime) for r in rows[-2:]] == [
        (True, None), (False, "application/pdf")]
