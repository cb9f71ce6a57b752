"""A bot in a bridged group, in the in-process world: which bridge events it believes, whom
it answers, what it tells a group it cannot post to, and the printable funding sheet."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path

import pypdf
import pytest
import yaml
from sqlalchemy import select

from bot.events import StateChange
from bot.features import bridged
from bot.service import assemble
from bridges import render
from storage import bridges as bridge_rows
from storage import groups, outbox, rooms
from storage.dm_reach import DmReachRow
from storage.models import OutboxMessage
from tests.botworld import BotWorld, bot_world
from tests.clocks import START

HS = "grapevine.local"
WA_BOT = f"@whatsappbot:{HS}"
CORA = f"@cora:{HS}"
REGISTRATION = {
    "id": "whatsapp", "url": None, "as_token": "-", "hs_token": "-",
    "sender_localpart": "whatsappbot",
    "namespaces": {"users": [
        {"regex": r"@whatsappbot:grapevine\.local", "exclusive": True},
        {"regex": r"@whatsapp_.*:grapevine\.local", "exclusive": True},
    ]},
}
INFO = {"bridgebot": WA_BOT, "creator": WA_BOT,
        "protocol": {"id": "whatsapp", "displayname": "WhatsApp"},
        "channel": {"id": "120363@g.us", "displayname": "Chatteris Food Bank"}}


@pytest.fixture
async def bw(tmp_path: Path) -> AsyncIterator[BotWorld]:
    folder = tmp_path / "bridges"
    folder.mkdir()
    (folder / "whatsapp.yaml").write_text(yaml.safe_dump(REGISTRATION))
    async with bot_world(tmp_path, roles={"coordinators": [CORA]}) as world:
        yield world


async def portal(bw: BotWorld) -> tuple[str, str]:
    """A WhatsApp group's portal: the bridge bot made it, a ghost admin is in it, the bot joins."""
    bw.world.user("whatsappbot", "WhatsApp bridge bot")
    ghost = bw.world.user("whatsapp_447700900123", "Gail (WA)")
    room = bw.world.create_room(WA_BOT, name="Chatteris Food Bank", members=[ghost],
                                power={WA_BOT: 100, ghost: 50})
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room, ghost


def bridge_event(room: str, sender: str, kind: str = "m.bridge",
                 content: Mapping[str, object] | None = None) -> StateChange:
    return StateChange(f"$state-{sender}-{kind}", room, sender, kind,
                       "whatsapp://whatsapp/120363", content or INFO, START)


async def network_of(bw: BotWorld, room: str) -> str | None:
    async with bw.app.db.transaction() as session:
        known = await rooms.get(session, room)
    assert known is not None
    return known.network


async def test_the_bridges_own_m_bridge_event_marks_the_room_as_whatsapp(bw: BotWorld) -> None:
    room, _ = await portal(bw)
    assert await network_of(bw, room) is None
    await bw.app.on_state(bridge_event(room, WA_BOT))
    assert await network_of(bw, room) == "whatsapp"
    assert (await bw.app.room_context(room)).network == "whatsapp"
    async with bw.app.db.transaction() as session:
        row = await bridge_rows.get(session, room)
    assert row is not None and row.channel_name == "Chatteris Food Bank"


async def test_a_forged_m_bridge_event_from_a_room_admin_is_ignored(bw: BotWorld) -> None:
    mallory = bw.world.user("mallory", "Mallory")
    room = bw.world.create_room(mallory, name="Not a portal", power={mallory: 100})
    await bw.world.join(bw.bot, room)
    await bw.app.on_state(bridge_event(room, mallory))
    await bw.app.on_state(bridge_event(room, mallory, "uk.half-shot.bridge"))
    assert await network_of(bw, room) is None


async def test_room_features_are_kept_only_from_the_bridge(bw: BotWorld) -> None:
    room, _ = await portal(bw)
    mallory = bw.world.user("mallory", "Mallory")
    features = {"formatting": {"bold": 2}, "thread": 0, "max_text_length": 60000}
    await bw.app.on_state(bridge_event(room, mallory, "com.beeper.room_features",
                                       {"thread": 2}))
    async with bw.app.db.transaction() as session:
        assert await bridge_rows.features(session, room) is None
    await bw.app.on_state(bridge_event(room, WA_BOT, "com.beeper.room_features", features))
    async with bw.app.db.transaction() as session:
        assert await bridge_rows.features(session, room) == features


async def test_ghosts_are_answered_and_the_bridge_bot_is_not(bw: BotWorld) -> None:
    room, ghost = await portal(bw)
    [answer] = await bw.say(ghost, room, "!fundng")
    assert answer.startswith("Did you mean !funding?")
    assert await bw.say(WA_BOT, room, "!fundng") == []


async def test_a_ghost_admin_registers_the_group_and_a_relayed_command_counts_as_a_members(
    bw: BotWorld,
) -> None:
    room, ghost = await portal(bw)
    register = ('!group register name="Chatteris Food Bank" type=charity area=Chatteris '
                "themes=food size=small")
    [refused] = await bw.say(ghost, room, "Gail: " + register)
    assert "role" in refused and "relayed" in refused
    [registered] = await bw.say(ghost, room, register)
    assert registered.startswith("Registered G1 Chatteris Food Bank")


async def test_a_group_whose_chat_refuses_the_bot_hears_so_by_dm_once_a_day(
    bw: BotWorld,
) -> None:
    room, ghost = await portal(bw)
    await bw.say(ghost, room, '!group register name="Chatteris Food Bank" type=charity '
                              "area=Chatteris themes=food size=small")
    now = bw.clock.now()
    async with bw.app.db.transaction() as session:
        for n in range(2):
            row = await outbox.enqueue(session, now=now, room_id=room, body=f"notice {n}",
                                       kind="notice", own_post=True)
            assert row is not None
            await outbox.retry_later(session, row.id, "M_FORBIDDEN: not allowed to post", now,
                                     give_up=True)
    assert await bridged.report_refusals(bw.app) == 1
    assert await bridged.report_refusals(bw.app) == 0
    await bw.deliver()
    [told] = bw.dms(ghost)
    assert told.startswith("I can't post in the chat of G1 Chatteris Food Bank")
    assert "admin" in told
    bw.clock.advance(days=2)
    assert await bridged.report_refusals(bw.app) == 0  # old refusals are not repeated


async def test_a_room_without_a_group_is_not_reported(bw: BotWorld) -> None:
    room, _ = await portal(bw)
    now = bw.clock.now()
    async with bw.app.db.transaction() as session:
        row = await outbox.enqueue(session, now=now, room_id=room, body="x")
        assert row is not None
        await outbox.retry_later(session, row.id, "M_FORBIDDEN: no", now, give_up=True)
    assert await bridged.report_refusals(bw.app) == 0


POST = ('!funding post https://example.org/{slug} title="{title}" funder="Trust" '
        "deadline={deadline} areas={areas}")


async def test_the_funding_sheet_lists_the_open_notices_for_the_area_and_what_covers_it(
    bw: BotWorld,
) -> None:
    office = bw.world.create_room(CORA, name="Office")
    await bw.world.join(bw.bot, office)
    today = bw.clock.now().date()
    soon, later = today + timedelta(days=10), today + timedelta(days=40)
    for slug, title, deadline, areas in (
        ("a", "Chatteris Warm Spaces", later, "chatteris"),
        ("b", "Fenland Food Fund", soon, "fenland"),
        ("c", "Cambridge City Youth", soon, "cambridge"),
        ("d", "County Digital Fund", later, "all"),
    ):
        await bw.say(CORA, office, POST.format(slug=slug, title=title, deadline=deadline,
                                               areas=areas))
    bw.clock.advance(days=1)
    [reply] = await bw.say(CORA, office, "!funding sheet area=chatteris")
    assert reply == "Funding sheet for Chatteris: 3 open notices, ready to print."
    async with bw.app.db.transaction() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.file_name.is_not(None)))
    assert row is not None and row.file_data is not None and row.file_name is not None
    assert row.file_mime == "application/pdf" and row.file_name.startswith("funding-chatteris-")
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(row.file_data)).pages)
    assert "Funding open to groups in Chatteris" in text
    assert "Fenland Food Fund" in text and "Chatteris Warm Spaces" in text
    assert "County Digital Fund" in text and "Cambridge City Youth" not in text
    # soonest deadline first
    assert text.index("Fenland Food Fund") < text.index("Chatteris Warm Spaces")
    async with bw.app.db.transaction() as session:
        assert await groups.active(session) == []


async def test_what_is_sent_to_a_room_follows_its_network_and_published_features(
    bw: BotWorld,
) -> None:
    room, _ = await portal(bw)
    body, html = "**F1** Warm Spaces " + "x" * 100, "<b>F1</b> Warm Spaces"
    async with bw.app.db.transaction() as session:
        assert await render.for_room_id(session, room, body, html) == (body, html)
    await bw.app.on_state(bridge_event(room, WA_BOT))
    async with bw.app.db.transaction() as session:
        sent, no_html = await render.for_room_id(session, room, body, html)
    assert sent.startswith("F1 Warm Spaces") and no_html is None
    await bw.app.on_state(bridge_event(room, WA_BOT, "com.beeper.room_features",
                                       {"formatting": {"bold": 2}, "max_text_length": 60}))
    async with bw.app.db.transaction() as session:
        sent, kept = await render.for_room_id(session, room, body, html)
        # HTML is kept where it fits; a page cut from the body drops it (it would say more).
        assert await render.for_room_id(session, room, "**F1** Warm", html) == (
            "**F1** Warm", html)
    assert kept is None and len(sent) <= 60
    assert sent.splitlines() == ["**F1** Warm Spaces", "... 1 more line: !more"]


def joined(room: str, user: str) -> StateChange:
    return StateChange(f"$join-{user}", room, user, "m.room.member", user,
                       {"membership": "join"}, START)


async def test_without_a_bridge_event_a_ghost_member_tells_the_network(bw: BotWorld) -> None:
    alice = bw.world.user("alice", "Alice")
    room = bw.world.create_room(alice, name="Chat")
    await bw.world.join(bw.bot, room)
    await bw.app.on_state(joined(room, alice))
    assert await network_of(bw, room) is None
    await bw.app.on_state(joined(room, f"@whatsapp_447700900555:{HS}"))
    assert await network_of(bw, room) == "whatsapp"
    assert (await bw.app.room_context(room)).network == "whatsapp"


async def test_a_believed_bridge_event_outranks_the_guess_from_members(bw: BotWorld) -> None:
    room, _ = await portal(bw)
    telegram = {**INFO, "protocol": {"id": "telegram", "displayname": "Telegram"}}
    await bw.app.on_state(bridge_event(room, WA_BOT, content=telegram))
    await bw.app.on_state(joined(room, f"@whatsapp_447700900556:{HS}"))
    assert await network_of(bw, room) == "telegram"


async def test_a_dm_the_bridge_does_not_carry_is_owned_up_to_in_the_room(bw: BotWorld) -> None:
    room, ghost = await portal(bw)
    [told] = await bw.say(ghost, room, "!privacy")
    assert told.startswith("I've invited you to a direct message")
    dm = await bw.transport.direct_room(ghost)
    assert any("message flow" in m for m in bw.dms(ghost))
    # The bridge never joined the ghost to the DM: the invite is all there is.
    bw.world._event(bw.world.room(dm), bw.bot, "m.room.member",
                    {"membership": "invite"}, ghost)
    assert await bridged.check_dms(bw.app) == 0  # not yet: the invite has two minutes
    bw.clock.advance(minutes=2)
    assert await bridged.check_dms(bw.app) == 1
    await bw.deliver()
    owned_up = bw.world.messages(room, sender=bw.bot)[-1]
    assert owned_up.startswith("I couldn't reach you privately through this bridge")
    [general] = await bw.say(ghost, room, "!privacy")
    assert general.startswith("I couldn't reach you privately") and "message flow" in general
    [nothing] = await bw.say(ghost, room, "!privacy export")
    assert nothing.startswith("I couldn't reach you privately") and "{" not in nothing


async def test_a_dm_the_ghost_accepts_settles_quietly(bw: BotWorld) -> None:
    room, ghost = await portal(bw)
    await bw.say(ghost, room, "!privacy")
    bw.clock.advance(minutes=2)
    assert await bridged.check_dms(bw.app) == 0
    [answer] = await bw.say(ghost, room, "!privacy")
    assert answer.startswith("I've invited you to a direct message")


async def restart(bw: BotWorld) -> None:
    """A new bot process on the same database and world, started as the service starts it."""
    fresh = assemble(bw.app.settings, bw.app.db, bw.transport, clock=bw.clock)
    bw.transport.attach(fresh)
    bw.transport.keep_state(fresh.room_states.apply)
    await fresh.load_rooms()
    await fresh.dm_reach.load(fresh.db)
    bw.app = fresh


async def test_a_restart_while_an_invite_is_watched_still_owns_up_to_it(bw: BotWorld) -> None:
    room, ghost = await portal(bw)
    [told] = await bw.say(ghost, room, "!privacy")
    assert told.startswith("I've invited you to a direct message")
    dm = await bw.transport.direct_room(ghost)
    bw.world._event(bw.world.room(dm), bw.bot, "m.room.member",
                    {"membership": "invite"}, ghost)

    await restart(bw)  # before the invite had its two minutes
    bw.clock.advance(minutes=2)
    assert await bridged.check_dms(bw.app) == 1
    await bw.deliver()
    assert bw.world.messages(room, sender=bw.bot)[-1].startswith(
        "I couldn't reach you privately through this bridge")

    # What was learned survives the next restart: no second invite, no personal answer.
    await restart(bw)
    assert await bridged.check_dms(bw.app) == 0
    [answer] = await bw.say(ghost, room, "!privacy export")
    assert answer.startswith("I couldn't reach you privately") and "{" not in answer
    # For a day, then the bot tries a DM again.
    bw.clock.advance(days=1, minutes=1)
    assert await bridged.check_dms(bw.app) == 0
    await restart(bw)
    [again] = await bw.say(ghost, room, "!privacy")
    assert again.startswith("I've invited you to a direct message")


async def test_what_is_kept_about_reaching_a_ghost_names_them_only_while_watching(
    bw: BotWorld,
) -> None:
    room, ghost = await portal(bw)
    await bw.say(ghost, room, "!privacy")
    dm = await bw.transport.direct_room(ghost)
    bw.world._event(bw.world.room(dm), bw.bot, "m.room.member",
                    {"membership": "invite"}, ghost)
    async with bw.app.db.transaction() as session:
        [watching] = (await session.scalars(select(DmReachRow))).all()
    assert (watching.user_id, watching.room_id) == (ghost, room)
    assert watching.person == outbox.person_key(ghost)

    bw.clock.advance(minutes=2)
    assert await bridged.check_dms(bw.app) == 1
    async with bw.app.db.transaction() as session:
        [learned] = (await session.scalars(select(DmReachRow))).all()
    assert (learned.user_id, learned.room_id, learned.watched_since) == (None, None, None)
    assert learned.unreachable_until == bw.clock.now() + timedelta(days=1)
    assert ghost not in repr([learned.person, learned.unreachable_until])
