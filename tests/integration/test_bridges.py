"""The bot, unchanged, in a WhatsApp group bridged to a real Synapse by a fake mautrix bridge:
the group registers, ghosts get answers, notices arrive as m.text, a forged m.bridge changes
nothing, a chat that refuses the bot is reported; a group not on chat gets its email digest
and unsubscribes through the bot's own web server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pypdf
import pytest
import yaml
from aiosmtpd.controller import Controller
from botfixture import BotFactory, RunningBot, free_port
from people import FakeBridge, Person
from sqlalchemy import select

from bot.features import bridged
from bot.homeserver import HomeserverError
from bridges import email_digest
from storage import groups, rooms
from storage.models import OutboxMessage
from tests.unit.test_bridges_email import Inbox

WAIT = 30.0
CHATTERIS = "E04012516"
REGISTER = ('!group register name="Chatteris Food Bank" type=charity area=Chatteris '
            "themes=food size=small")


async def start_bot(bot_factory: BotFactory, fake: FakeBridge, tmp_path: Path,
                    **sections: dict[str, Any]) -> RunningBot:
    """A bot that knows the bridge from its registration file (tokens blanked out)."""
    data_dir = tmp_path / f"wa-{uuid.uuid4().hex[:6]}"
    registration = yaml.safe_load(fake.appservice.path.read_text())
    registration.update(as_token="-", hs_token="-")
    (data_dir / "bridges").mkdir(parents=True)
    (data_dir / "bridges" / "whatsapp.yaml").write_text(yaml.safe_dump(registration))
    bot_section = {"data_dir": str(data_dir), **sections.pop("bot", {})}
    return await bot_factory(bot=bot_section, **sections)


async def as_user(fake: FakeBridge, method: str, path: str, user_id: str,
                  body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A client-API call made by the bridge as one of its users."""
    separator = "&" if "?" in path else "?"
    return await fake.homeserver.request(
        method, f"{path}{separator}user_id={quote(user_id, safe='')}",
        token=fake.appservice.as_token, body=body,
    )


def room_path(room: str) -> str:
    return f"/_matrix/client/v3/rooms/{quote(room, safe='')}"


async def set_power(fake: FakeBridge, room: str, **changes: Any) -> None:
    """The bridge mirrors WhatsApp's admins and settings into the portal's power levels."""
    path = f"{room_path(room)}/state/m.room.power_levels/"
    levels = await as_user(fake, "GET", path, fake.bot_user_id)
    users = {**levels.get("users", {}), **changes.pop("users", {})}
    await as_user(fake, "PUT", path, fake.bot_user_id, {**levels, "users": users, **changes})


async def bot_events(fake: FakeBridge, room: str, bot: RunningBot) -> list[dict[str, Any]]:
    page = await as_user(fake, "GET", f"{room_path(room)}/messages?dir=b&limit=100",
                         fake.bot_user_id)
    return [e for e in reversed(page.get("chunk", []))
            if e.get("sender") == bot.user_id and e.get("type") == "m.room.message"]


async def bot_says(fake: FakeBridge, room: str, bot: RunningBot, contains: str,
                   after: int = 0) -> dict[str, Any]:
    """The bot's first message in the portal containing ``contains`` (after ``after`` of them)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        events = await bot_events(fake, room, bot)
        for event in events[after:]:
            if contains in str(event["content"].get("body", "")):
                return event
        await asyncio.sleep(0.3)
    bodies = [e["content"].get("body") for e in await bot_events(fake, room, bot)]
    raise AssertionError(f"the bot never said {contains!r}; it said {bodies}")


async def ask(fake: FakeBridge, who: str, room: str, bot: RunningBot, text: str,
              expect: str) -> dict[str, Any]:
    before = len(await bot_events(fake, room, bot))
    await fake.send_as(who, room, text)
    return await bot_says(fake, room, bot, expect, after=before)


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def portal_with_bot(fake: FakeBridge, bot: RunningBot) -> tuple[str, str, str]:
    """A WhatsApp group's portal: Gail (a WhatsApp admin, power 50), Mo, and the bot."""
    tag = uuid.uuid4().hex[:8]
    gail = await fake.ghost(f"4477009{tag}", "Gail")
    mo = await fake.ghost(f"4477008{tag}", "Mo")
    room = await fake.create_portal("Chatteris Food Bank", channel_id=f"{tag}@g.us",
                                    invite=[bot.user_id])
    for ghost in (gail, mo):
        await fake.add_ghost(room, ghost)
    await set_power(fake, room, users={gail: 50})
    await bot_says(fake, room, bot, "never what anyone writes")
    return room, gail, mo


async def network_of(bot: RunningBot, room: str) -> str | None:
    async with bot.app.db.transaction() as session:
        known = await rooms.get(session, room)
    return known.network if known else None


async def test_the_bot_works_unchanged_in_a_whatsapp_portal(
    bot_factory: BotFactory, whatsapp_bridge: FakeBridge, person_factory: Any, tmp_path: Path,
) -> None:
    fake = whatsapp_bridge
    cora: Person = await person_factory("Cora", e2e=False)
    bot = await start_bot(bot_factory, fake, tmp_path, roles={"coordinators": [cora.user_id]})
    room, gail, mo = await portal_with_bot(fake, bot)

    async def bridged_to_whatsapp() -> bool:
        return await network_of(bot, room) == "whatsapp"

    await until(bridged_to_whatsapp, "the portal to be known as WhatsApp")

    # Gail is a WhatsApp group admin, so power 50 in the portal: she registers the group.
    registered = await ask(fake, gail, room, bot, REGISTER, "Registered G")
    assert registered["content"]["msgtype"] == "m.text"
    assert "format" not in registered["content"]  # plain text for WhatsApp
    async with bot.app.db.transaction() as session:
        group = await groups.by_room(session, room)
    assert group is not None and group.registered_by == gail and group.area_code == CHATTERIS

    # Mo, an ordinary member, is answered like anyone; a relayed "Name: !cmd" counts as a
    # member's whatever power its sender has.
    answered = await ask(fake, mo, room, bot, "!fundng", "Did you mean !funding?")
    assert answered["content"]["msgtype"] == "m.text"
    refused = await ask(fake, gail, room, bot, "Gail: !group set quiet=yes", "relayed")
    assert "group admin" in refused["content"]["body"]
    listed = await ask(fake, mo, room, bot, "Mo: !funding list", "No open funding notices")
    assert listed["content"]["msgtype"] == "m.text"

    # The bridge bot's own messages are not answered (bots do not talk to bots).
    before = len(await bot_events(fake, room, bot))
    await fake.send_as(fake.bot_user_id, room, "!fundng")
    await ask(fake, mo, room, bot, "!fundnig", "Did you mean")
    assert len(await bot_events(fake, room, bot)) == before + 1

    # A notice for the area reaches the group's portal as m.text (bridges drop m.notice).
    office = await cora.create_room(name="Office", invite=[bot.user_id])
    await cora.wait_for_message(office, sender=bot.user_id, contains="never what", timeout=WAIT)
    await cora.send(office, '!funding post https://example.org/pantry title="Pantry Fund" '
                            'funder="Fen Trust" deadline=+30d areas=chatteris themes=food')
    await cora.wait_for_message(office, sender=bot.user_id, contains="F1 published",
                                timeout=WAIT)
    notice = await bot_says(fake, room, bot, "Funding F1: Pantry Fund")
    assert notice["content"]["msgtype"] == "m.text"

    # The notice sheet for the parish noticeboard arrives as a PDF that lists it.
    sheet = await ask(fake, mo, room, bot, "!funding sheet area=chatteris", "Funding sheet for")
    assert sheet["content"]["msgtype"] == "m.file"
    assert sheet["content"]["info"]["mimetype"] == "application/pdf"
    pdf = await download(fake, sheet["content"]["url"])
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Funding open to groups in Chatteris" in text and "F1  Pantry Fund" in text


async def download(fake: FakeBridge, mxc: str) -> bytes:
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    url = f"{fake.homeserver.base_url}/_matrix/client/v1/media/download/{server}/{media_id}"
    headers = {"Authorization": f"Bearer {fake.appservice.as_token}"}
    async with aiohttp.ClientSession() as http, http.get(
        f"{url}?user_id={quote(fake.bot_user_id, safe='')}", headers=headers
    ) as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def test_a_forged_m_bridge_event_is_ignored(
    bot_factory: BotFactory, whatsapp_bridge: FakeBridge, person_factory: Any, tmp_path: Path,
) -> None:
    fake = whatsapp_bridge
    mallory: Person = await person_factory("Mallory", e2e=False)
    bot = await start_bot(bot_factory, fake, tmp_path)
    room = await mallory.create_room(name="Totally WhatsApp", invite=[bot.user_id])
    await mallory.wait_for_message(room, sender=bot.user_id, contains="never what", timeout=WAIT)
    content = {"bridgebot": fake.bot_user_id, "creator": fake.bot_user_id,
               "protocol": {"id": "whatsapp", "displayname": "WhatsApp"},
               "channel": {"id": "x@g.us", "displayname": "Totally WhatsApp"}}
    for kind in ("m.bridge", "uk.half-shot.bridge"):
        await mallory.put_state(room, kind, content, state_key="whatsapp://whatsapp/x")
    # Once the bot has answered a later message it has seen the state events before it.
    await mallory.send(room, "!fundng")
    await mallory.wait_for_message(room, sender=bot.user_id, contains="Did you mean",
                                   timeout=WAIT)
    assert await network_of(bot, room) is None
    assert (await bot.app.room_context(room)).network is None


async def test_a_group_whose_whatsapp_chat_only_admins_may_post_in_hears_why_by_dm(
    bot_factory: BotFactory, whatsapp_bridge: FakeBridge, tmp_path: Path,
) -> None:
    fake = whatsapp_bridge
    bot = await start_bot(bot_factory, fake, tmp_path)
    room, gail, _ = await portal_with_bot(fake, bot)
    await ask(fake, gail, room, bot, REGISTER, "Registered G")
    # The group is switched to announcement-only: only admins (power 50) may send, so
    # the bot's answer to Gail is refused.
    await set_power(fake, room, events_default=50)
    await fake.send_as(gail, room, "!fundng")

    async def refused() -> bool:
        async with bot.app.db.transaction() as session:
            rows = await session.scalars(select(OutboxMessage).where(
                OutboxMessage.room_id == room, OutboxMessage.failed_at.is_not(None)))
            return any("M_FORBIDDEN" in (r.last_error or "") for r in rows)

    await until(refused, "the outbox to give up on the refused reply")
    assert await bridged.report_refusals(bot.app) == 1

    async def told_gail() -> bool:
        # The outbox keeps no copy of a DM once sent: read what arrived in her DM room.
        async with bot.app.db.transaction() as session:
            rows = list(await session.scalars(
                select(OutboxMessage).where(OutboxMessage.to_user == gail)))
        for row in rows:
            if row.sent_at is None and row.room_id is not None:
                # Held in the DM room the bot made until she is in it: her ghost accepts.
                with contextlib.suppress(HomeserverError):
                    await fake.accept_invite(gail, row.room_id)
            if row.sent_at is not None and row.room_id is not None:
                events = await bot.app.transport.recent_events(row.room_id)
                if any("only admins" in str(e.get("content", {}).get("body", ""))
                       for e in events):
                    return True
        return False

    await until(told_gail, "the DM to the group's registrant")


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    port, box = free_port(), Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


async def test_a_group_not_on_chat_gets_its_digest_and_unsubscribes_on_the_bots_web_server(
    bot_factory: BotFactory, whatsapp_bridge: FakeBridge, person_factory: Any, tmp_path: Path,
    smtp: tuple[int, Inbox],
) -> None:
    port, inbox = smtp
    cora: Person = await person_factory("Cora", e2e=False)
    bot = await start_bot(
        bot_factory, whatsapp_bridge, tmp_path, roles={"coordinators": [cora.user_id]},
        email={"host": "127.0.0.1", "port": port, "starttls": False,
               "from_address": "grapevine@council.example"},
    )
    office = await cora.create_room(name="Office", invite=[bot.user_id])
    await cora.wait_for_message(office, sender=bot.user_id, contains="never what", timeout=WAIT)
    for text, expect in (
        ('!group register name="Manea Lunch Club" type=charity area=Manea themes=food '
         "size=small room=none email=club@manea.example", "Registered G1"),
        ('!funding post https://example.org/lunch title="Lunch Fund" funder="Fen Trust" '
         "deadline=+30d areas=fenland themes=food", "F1 published"),
        ('!funding post https://example.org/art title="Art Fund" funder="Fen Trust" '
         "deadline=+30d areas=fenland themes=arts", "F2 published"),
    ):
        await cora.send(office, text)
        await cora.wait_for_message(office, sender=bot.user_id, contains=expect, timeout=WAIT)
    assert await email_digest.send_pending(bot.app) == 1
    [sent] = inbox.messages
    assert sent["To"] == "club@manea.example"
    body = sent.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "F1: Lunch Fund (Fen Trust)" in body and "Art Fund" not in body
    link = re.search(r"To stop these emails: (\S+)", body)
    assert link is not None
    assert link.group(1).startswith(f"http://{bot.setup.values['web']['listen']}/unsubscribe/G1/")
    async with aiohttp.ClientSession() as http:
        async with http.get(link.group(1)) as page:
            assert page.status == 200 and "Unsubscribe" in await page.text()
        async with http.post(link.group(1)) as done:
            assert done.status == 200 and "Manea Lunch Club" in await done.text()
    async with bot.app.db.transaction() as session:
        group = await groups.by_id(session, 1)
    assert group is not None and group.contact is False
