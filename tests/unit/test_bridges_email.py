"""Groups not on chat: their email digest arrives at a real SMTP server with the right
notices, and its unsubscribe link works (and a forged one does not)."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller

from bridges import email_digest
from storage import groups
from tests.botworld import BotWorld, bot_world

CORA = "@cora:grapevine.local"
POST = ('!funding post https://example.org/{slug} title="{title}" funder="Trust" '
        "deadline=2026-12-18 areas={areas} themes={themes}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    """What the local SMTP server was handed."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
async def bw(tmp_path: Path, smtp_port: int) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path, roles={"coordinators": [CORA]},
        email={"host": "127.0.0.1", "port": smtp_port, "starttls": False,
               "from_address": "grapevine@council.example"},
        web={"base_url": "https://grapevine.council.example"},
    ) as world:
        office = world.world.create_room(CORA, name="Office")
        await world.world.join(world.bot, office)
        await world.deliver()
        for name, area, themes, address in (
            ("Manea Lunch Club", "manea", "food", "club@manea.example"),
            ("Chatteris Youth", "chatteris", "youth", "youth@chatteris.example"),
        ):
            await world.say(CORA, office, f'!group register name="{name}" type=charity '
                            f"area={area} themes={themes} size=small room=none email={address}")
        world.office = office  # type: ignore[attr-defined]
        yield world


async def post(bw: BotWorld, slug: str, title: str, areas: str, themes: str) -> None:
    [*_, reply] = await bw.say(CORA, bw.office, POST.format(  # type: ignore[attr-defined]
        slug=slug, title=title, areas=areas, themes=themes))
    assert "published" in reply, reply


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_each_group_gets_one_email_with_only_its_notices_and_a_way_out(
    bw: BotWorld, inbox: Inbox,
) -> None:
    await post(bw, "a", "Fenland Food Fund", "fenland", "food")
    await post(bw, "b", "County Youth Fund", "all", "youth")
    await post(bw, "c", "Cambridge Food Fund", "cambridge", "food")
    await post(bw, "d", "Manea Pantry Grant", "manea", "food")
    assert await email_digest.send_pending(bw.app) == 2
    [club] = inbox.to("club@manea.example")
    [youth] = inbox.to("youth@chatteris.example")
    assert club["Subject"] == "2 funding notices for Manea Lunch Club"
    assert club["From"] == "grapevine@council.example"
    body = text_of(club)
    assert "F1: Fenland Food Fund (Trust)" in body and "F4: Manea Pantry Grant" in body
    assert "Youth" not in body and "Cambridge" not in body
    assert "https://example.org/a" in body
    assert "F2: County Youth Fund" in text_of(youth)
    link = re.search(r"To stop these emails: (\S+)", body)
    assert link is not None and club["List-Unsubscribe"] == f"<{link.group(1)}>"
    assert link.group(1).startswith("https://grapevine.council.example/unsubscribe/G1/")
    # Nothing is sent twice.
    assert await email_digest.send_pending(bw.app) == 0


async def test_the_unsubscribe_link_stops_the_emails_and_a_forged_one_does_nothing(
    bw: BotWorld, inbox: Inbox,
) -> None:
    await post(bw, "a", "Fenland Food Fund", "fenland", "food")
    await email_digest.send_pending(bw.app)
    [club] = inbox.to("club@manea.example")
    match = re.search(r"To stop these emails: (\S+)", text_of(club))
    assert match is not None
    path = urlsplit(match.group(1)).path
    server = web.Application()
    server.add_routes(bw.app.web_routes)
    async with TestClient(TestServer(server)) as client:
        forged = path.rsplit("/", 1)[0] + "/" + "0" * 32
        assert (await client.post(forged)).status == 404
        assert (await client.post(path.replace("/G1/", "/G2/"))).status == 404
        page = await client.get(path)
        assert page.status == 200 and 'method="post"' in await page.text()
        async with bw.app.db.transaction() as session:
            group = await groups.by_id(session, 1)
            assert group is not None and group.contact  # opening the link changes nothing
        done = await client.post(path)
        assert done.status == 200 and "Manea Lunch Club" in await done.text()
    async with bw.app.db.transaction() as session:
        group = await groups.by_id(session, 1)
        assert group is not None and not group.contact
    await post(bw, "b", "Fenland Food Fund 2", "fenland", "food")
    assert await email_digest.send_pending(bw.app) == 0
    assert len(inbox.to("club@manea.example")) == 1


async def test_a_digest_the_mail_server_refuses_waits_for_the_next_run(
    bw: BotWorld, smtp_port: int,
) -> None:
    await post(bw, "a", "Fenland Food Fund", "fenland", "food")
    assert await email_digest.send_pending(bw.app) == 0  # no server listening yet
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        assert await email_digest.send_pending(bw.app) == 1
    finally:
        controller.stop()
    assert "F1: Fenland Food Fund" in text_of(box.to("club@manea.example")[0])


async def test_no_mail_server_configured_means_no_digest(tmp_path: Path) -> None:
    async with bot_world(tmp_path) as bw:
        assert await email_digest.send_pending(bw.app) == 0
