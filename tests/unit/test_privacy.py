"""!privacy as a person meets it: what is recorded, a copy of everything, erasure after a
confirmation, and the retention purge."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.features.intake import intake_of
from bot.features.privacy import EXPORT_KIND, person_functions, purge
from bot.ratelimit import RateLimiter
from storage import flow, roles
from storage.flow import FlowEvent, FlowRow
from storage.groups import Group
from storage.models import OutboxMessage, RoleGrant
from tests.botworld import BotWorld, bot_world

ADMIN, ADA, MO = (f"@{n}:grapevine.local" for n in ("admin", "ada", "mo"))


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path, roles={"admins": [ADMIN]}) as bw:
        for name in ("admin", "ada", "mo"):
            bw.world.user(name, name.title())
        bw.app.limiter = RateLimiter(10_000)
        yield bw


async def group_room(bw: BotWorld) -> str:
    room = bw.world.create_room(ADA, name="Wisbech Food Bank", members=[MO, ADMIN])
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def mo_leaves_traces(bw: BotWorld, room: str) -> None:
    """Mo talks in the group, coordinates, and registered the group."""
    await bw.world.say(MO, room, "see you at the hall")
    await intake_of(bw.app).flush()
    async with bw.app.db.transaction() as session:
        await roles.grant(session, MO, "coordinator", "", ADMIN, bw.clock.now())
        session.add(Group(room_id=room, name="Food Bank", type="charity", area_code="E04001668",
                          themes=["food"], size="small", registered_by=MO,
                          registered_at=bw.clock.now()))


async def export_row(bw: BotWorld) -> OutboxMessage:
    async with bw.app.db.transaction() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.kind == EXPORT_KIND))
    assert row is not None
    return row


async def test_privacy_asked_in_a_group_is_answered_by_direct_message(town: BotWorld) -> None:
    room = await group_room(town)
    assert await town.say(MO, room, "!privacy") == ["I've sent you a direct message."]
    [answer] = town.dms(MO)
    assert "never message text" in answer and "Nothing at all from direct messages" in answer
    assert "Kept 180 days" in answer and len(answer.splitlines()) <= 12
    assert "the text after 7 days and the rest after 30" in answer


async def test_export_sends_everything_held_about_the_person_as_a_json_file(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    await mo_leaves_traces(town, room)
    dm = await town.transport.direct_room(MO)
    await town.world.say(MO, dm, "!privacy export")
    row = await export_row(town)
    assert row.file_mime == "application/json" and row.file_data
    data = json.loads(row.file_data)
    assert data["user_id"] == MO
    assert [g["role"] for g in data["personal"]["role_grants"]] == ["coordinator"]
    assert [g["name"] for g in data["personal"]["groups"]] == ["Food Bank"]
    records = data["flow"]["message_flow"]["records"]
    assert [(r["room_id"], r["kind"]) for r in records] == [(room, "message")]
    assert data["volunteers"]["volunteer_profile"] is None
    assert "see you at the hall" not in row.file_data.decode()
    await town.deliver()
    assert town.dms(MO)[-1].startswith("Everything I hold about you is in the attached file")
    assert (await export_row(town)).file_data is None  # no copy kept once it is sent


async def test_forget_asks_first_then_erases_and_says_what_is_out_of_reach(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    await mo_leaves_traces(town, room)
    dm = await town.transport.direct_room(MO)
    [question] = await town.say(MO, dm, "!privacy forget")
    assert "Reply yes to confirm" in question
    [answer] = await town.say(MO, dm, "no")
    assert answer == "Nothing erased."
    await town.say(MO, dm, "!privacy forget")
    [answer] = await town.say(MO, dm, "yes")
    assert answer.startswith("Erased:")
    assert "homeserver" in answer and "bridged" in answer and "outside my reach" in answer.lower()
    async with town.app.db.transaction() as session:
        assert list(await session.scalars(select(FlowEvent))) == []
        assert list(await session.scalars(select(RoleGrant))) == []
        group = await session.scalar(select(Group))
        assert group is not None and MO not in group.registered_by


async def test_forget_in_a_group_room_points_to_a_direct_message(town: BotWorld) -> None:
    room = await group_room(town)
    assert await town.say(MO, room, "!privacy forget yes") == ["I've sent you a direct message."]
    assert town.dms(MO)[-1].startswith("Send !privacy forget to me in a direct message")


async def test_the_purge_removes_flow_records_and_read_counts_past_retention(
    town: BotWorld,
) -> None:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    async with town.app.db.transaction() as session:
        await flow.add_events(session, [
            FlowRow(f"$old{i}", "!r:x", "k", now - timedelta(days=181), "message") for i in range(3)
        ] + [FlowRow("$new", "!r:x", "k", now - timedelta(days=179), "message")])
        await flow.add_receipts(session, {("!r:x", 1): 7}, now - timedelta(days=200))
    assert await purge(town.app.db, now, retention_days=180) == 3 + 1
    async with town.app.db.transaction() as session:
        assert [r.event_id for r in await session.scalars(select(FlowEvent))] == ["$new"]
        assert await flow.receipts(session, 1) == {}


def test_every_storage_module_with_personal_data_is_covered() -> None:
    exporters = {name for name, _ in person_functions("export_person")}
    forgetters = {name for name, _ in person_functions("forget_person")}
    assert {"flow", "personal", "volunteers", "mediation", "collab"} <= exporters
    assert exporters == forgetters
