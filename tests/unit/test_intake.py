"""Message-flow intake as the data-protection rules demand: metadata only, never text, nothing
from direct messages or case rooms, nobody who opted out, receipts only as counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.events import Receipt
from bot.features.intake import flow_secret, intake_of, mentioned_notices
from bot.ratelimit import RateLimiter
from storage import flow
from storage.flow import FlowEvent, FlowReceipts
from storage.mediation import Case
from tests.botworld import BotWorld, bot_world

CORA, ADA, MO, BEA = (f"@{n}:grapevine.local" for n in ("cora", "ada", "mo", "bea"))
MARKER = "zebra-marker-7f3a9c"
POST = ('!funding post https://example.org/warm title="Warm Spaces" funder="Community Fund" '
        "deadline=2026-12-18 areas=wisbech themes=food")


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path, roles={"coordinators": [CORA]}) as bw:
        for name in ("cora", "ada", "mo", "bea"):
            bw.world.user(name, name.title())
        bw.app.limiter = RateLimiter(10_000)
        yield bw


async def group_room(bw: BotWorld, name: str = "Wisbech Food Bank") -> str:
    room = bw.world.create_room(ADA, name=name, members=[MO, BEA, CORA])
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def records(bw: BotWorld) -> list[FlowEvent]:
    await intake_of(bw.app).flush()
    async with bw.app.db.transaction() as session:
        return list(await session.scalars(select(FlowEvent).order_by(FlowEvent.id)))


def key(bw: BotWorld, user: str) -> str:
    return flow.pseudonym(flow_secret(bw.app.settings), user)


async def test_messages_are_recorded_as_metadata_under_a_pseudonym_and_never_as_text(
    town: BotWorld, tmp_path: Path,
) -> None:
    room = await group_room(town)
    await town.world.say(MO, room, f"Anyone coming on Saturday? {MARKER}")
    first = await town.world.say(BEA, room, f"Me! {MARKER}")
    await town.world.say(MO, room, f"Great {MARKER}", reply_to=first)
    await town.world.react(ADA, room, first, "👍")
    rows = await records(town)
    assert [(r.kind, r.sender_key) for r in rows] == [
        ("message", key(town, MO)), ("message", key(town, BEA)), ("reply", key(town, MO)),
        ("reaction", key(town, ADA)),
    ]
    assert rows[2].target_event == first and rows[3].target_event == first
    # When people wrote, by the server's stamp: the world's server keeps the bot's clock.
    assert {r.at for r in rows} == {town.clock.now()}
    assert all(len(r.sender_key) == 64 and "@" not in r.sender_key for r in rows)
    await town.app.db.close()  # checkpoint the WAL into the file before reading its bytes
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("grapevine.db*"))
    assert MARKER.encode() not in stored


async def test_nothing_is_recorded_from_direct_messages_or_mediation_case_rooms(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    case_room = town.world.create_room(CORA, name="Case M1", members=[ADA])
    await town.world.join(town.bot, case_room)
    async with town.app.db.transaction() as session:
        session.add(Case(title="Hall bookings", mediator=CORA, opened_by=CORA,
                         opened_at=town.clock.now(), room_id=case_room, room_key="m1"))
    dm = await town.transport.direct_room(MO)
    await town.world.say(MO, dm, "a private word")
    await town.world.say(ADA, case_room, "our side of it")
    said = await town.world.say(MO, room, "hello all")
    await town.world.react(ADA, case_room, said, "👍")
    assert [(r.room_id, r.kind) for r in await records(town)] == [(room, "message")]


async def test_an_opted_out_sender_is_not_recorded_until_they_opt_back_in(town: BotWorld) -> None:
    room = await group_room(town)
    dm = await town.transport.direct_room(MO)
    [reply] = await town.say(MO, dm, "!privacy optout")
    assert reply.startswith("Done: from now on I record nothing")
    await town.world.say(MO, room, "not recorded")
    await town.world.say(BEA, room, "recorded")
    assert [r.sender_key for r in await records(town)] == [key(town, BEA)]
    [reply] = await town.say(MO, dm, "!privacy optin")
    assert reply.startswith("Thanks: I record your message flow again")
    await town.world.say(MO, room, "recorded again")
    assert [r.sender_key for r in await records(town)][-1] == key(town, MO)


async def test_replies_reactions_and_mentions_of_a_notice_point_to_it_and_reads_are_counts(
    town: BotWorld,
) -> None:
    wisbech = await group_room(town)
    elsewhere = await group_room(town, "March Youth Club")
    await town.say(ADA, wisbech, "!funding subscribe areas=wisbech themes=food")
    await town.say(CORA, wisbech, POST)
    [post] = [e["event_id"] for e in town.world.room(wisbech).timeline
              if e["sender"] == town.bot and e["content"].get("body", "").startswith("Funding F1")]
    await town.world.say(MO, wisbech, "We should apply", reply_to=post)
    await town.world.react(BEA, wisbech, post, "🎉")
    await town.world.say(BEA, elsewhere, "Have a look at F1, closes soon")
    await town.world.say(MO, elsewhere, "and F99 is not a notice, nor is MF1")
    for reader in (MO, BEA, MO, ADA):  # Mo's client sends its receipt twice
        await town.app.on_receipt(Receipt(wisbech, reader, post, town.clock.now()))
    rows = await records(town)
    assert [(r.room_id, r.kind, r.notice_id) for r in rows[-4:]] == [
        (wisbech, "reply", 1), (wisbech, "reaction", 1), (elsewhere, "forward", 1),
        (elsewhere, "message", None),
    ]
    async with town.app.db.transaction() as session:
        counts = [(r.room_id, r.notice_id, r.count) for r in await session.scalars(
            select(FlowReceipts))]
        assert await flow.receipts(session, 1) == {wisbech: 3}
    assert counts == [(wisbech, 1, 3)]


async def test_facts_from_before_an_opt_out_never_come_back_even_from_a_retried_flush(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    intake = intake_of(town.app)
    await town.world.say(MO, room, "said before opting out")
    taken = list(intake.rows)  # a flush has taken them and will put them back if it fails
    dm = await town.transport.direct_room(MO)
    await town.say(MO, dm, "!privacy optout")
    await town.say(MO, dm, "!privacy optin")
    intake.rows[:0] = taken
    await town.world.say(MO, room, "said after opting back in")
    assert len(await records(town)) == 1


def test_notice_mentions_are_found_by_id_or_link() -> None:
    assert mentioned_notices("see F12 and https://x.org/n/F7/abc, F12 again") == [12, 7]
    assert mentioned_notices("MF1 F1x f3 and F") == []


async def test_a_busy_room_is_written_in_batches_and_the_rest_within_a_second(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    intake = intake_of(town.app)
    intake.flush_rows, intake.flush_after = 25, 3600.0  # only full batches, for now
    for i in range(60):
        await town.world.say(MO if i % 2 else BEA, room, f"message {i}")
        await asyncio.sleep(0)
    for _ in range(200):
        if intake.flushed >= 50:
            break
        await asyncio.sleep(0.01)
    assert intake.flushed >= 50 and intake.flushes <= 3  # batches, not one write each
    await intake.flush()
    intake.flush_after = 0.2
    await town.world.say(MO, room, "a quiet moment later")
    await asyncio.sleep(0.5)
    assert intake.flushed == 61 and not intake.rows
    assert len(await records(town)) == 61
