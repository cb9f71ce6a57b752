"""What the bot keeps about reaching bridged people by DM, on both engines: the watch and the
fact survive a restart (a new DmReach loads them), forget takes both, nothing lasts past a day."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.dm_reach import REMEMBER, WAIT, DmReach
from bot.features.privacy import forget_everything
from storage import dm_reach as rows
from storage.engine import Database
from storage.outbox import person_key
from tests.clocks import START

GHOST = "@whatsapp_447700900123:grapevine.local"
OTHER = "@whatsapp_447700900999:grapevine.local"


def reach() -> DmReach:
    reach = DmReach()
    reach.bridged = lambda user_id: user_id.startswith("@whatsapp_")
    return reach


async def kept(db: Database) -> list[rows.DmReachRow]:
    async with db.transaction() as session:
        return list(await session.scalars(select(rows.DmReachRow).order_by(rows.DmReachRow.person)))


async def test_a_watch_and_what_it_taught_survive_restarts(database: Database) -> None:
    first = reach()
    async with database.transaction() as session:
        committed = await first.watch(session, GHOST, "!group", START)
    assert committed is not None
    committed()

    second = reach()  # a restart
    await second.load(database)
    assert second.due(START + WAIT - timedelta(seconds=1)) == []
    assert second.due(START + WAIT) == [(GHOST, "!group")]
    async with database.transaction() as session:
        assert await second.watch(session, GHOST, "!other", START) is None  # watched already
        assert await second.settle(session, GHOST, False, START + WAIT)

    third = reach()
    await third.load(database)
    assert third.due(START + WAIT) == []
    assert third.cannot_reach(GHOST, START + WAIT) and not third.cannot_reach(OTHER, START)
    assert not third.cannot_reach(GHOST, START + WAIT + REMEMBER)
    [row] = await kept(database)
    assert (row.person, row.user_id, row.room_id) == (person_key(GHOST), None, None)

    await third.expire(database, START + WAIT + REMEMBER)
    assert await kept(database) == []


async def test_an_accepted_invite_leaves_nothing(database: Database) -> None:
    bot = reach()
    async with database.transaction() as session:
        await bot.watch(session, GHOST, "!group", START)
        assert await bot.settle(session, GHOST, True, START + WAIT)
    assert await kept(database) == []


async def test_forget_takes_the_watch_and_the_fact_and_nothing_comes_back(
    database: Database,
) -> None:
    bot = reach()
    async with database.transaction() as session:
        await bot.watch(session, GHOST, "!group", START)
        await bot.watch(session, OTHER, "!group", START)
        await bot.settle(session, OTHER, False, START + WAIT)
        await bot.watch(session, OTHER, "!group", START + WAIT)
    async with database.transaction() as session:
        assert "bridge_did_not_carry_my_messages_until" in (
            await rows.export_person(session, OTHER) or {})
        for person in (GHOST, OTHER):  # !privacy forget finds the table by itself
            assert (await forget_everything(session, person, "key", START))["dm_reach"] == 1
    assert await kept(database) == []
    # A watch still in memory that settles after forget writes nothing, and says nothing.
    async with database.transaction() as session:
        assert not await bot.settle(session, GHOST, False, START + WAIT)
    assert await kept(database) == [] and not bot.cannot_reach(GHOST, START + WAIT)


async def test_a_watch_never_settled_goes_after_a_day(database: Database) -> None:
    bot = reach()
    async with database.transaction() as session:
        committed = await bot.watch(session, GHOST, "!group", START)
    assert committed is not None
    committed()
    await bot.expire(database, START + REMEMBER)
    assert len(await kept(database)) == 1
    await bot.expire(database, START + REMEMBER + timedelta(seconds=1))
    assert await kept(database) == [] and bot.due(START + REMEMBER * 2) == []
