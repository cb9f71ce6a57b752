"""The backbone's storage on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, event, select, text
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncSession

import storage.all_models  # noqa: F401
from storage import activity, outbox, roles, state
from storage.engine import Database
from storage.lock import AlreadyRunning, InstanceLock
from storage.migrate import current_heads, upgrade
from storage.models import Base, OutboxMessage

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


async def test_migrations_build_exactly_the_models(database: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    assert await current_heads(database.engine)


async def test_migrating_twice_changes_nothing(database: Database) -> None:
    before = await current_heads(database.engine)
    await upgrade(database.engine)
    assert await current_heads(database.engine) == before


async def test_sqlite_pragmas_are_on(sqlite_database: Database) -> None:
    async with sqlite_database.engine.connect() as connection:
        assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
        assert await connection.scalar(text("PRAGMA busy_timeout")) == 10000


async def test_a_new_data_directory_is_made_on_first_use(tmp_path: Path) -> None:
    where = tmp_path / "not" / "yet" / "there"
    db = Database(f"sqlite+aiosqlite:///{where / 'grapevine.db'}")
    try:
        await upgrade(db.engine)
        assert await current_heads(db.engine) != ()
    finally:
        await db.close()
    assert (where / "grapevine.db").is_file()


async def test_a_rolled_back_command_leaves_no_trace(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await state.mark_handled(session, "$e1", "!r", NOW)
            await outbox.enqueue(session, now=NOW, room_id="!r", body="hello")
            raise RuntimeError("handler failed")
    async with database.transaction() as session:
        assert not await state.is_handled(session, "$e1")
        assert await outbox.pending_count(session) == 0


async def test_a_snapshot_reads_beside_a_writer_without_waiting_for_it_or_holding_it_up(
    database: Database,
) -> None:
    """A command's transaction holds the write lock; a snapshot (the reach model's records,
    read after the command's transaction) reads what was committed meanwhile, and a writer
    that comes while a snapshot is open does not wait for it. What a snapshot writes is
    rolled back."""
    async with database.transaction() as session:
        await roles.grant(session, "@ann:x.org", "coordinator", "", "@admin:x.org", NOW)

    async def granted(session: AsyncSession) -> list[str]:
        return sorted(g.user_id for g in await roles.all_grants(session))

    async with database.transaction() as writing:
        await roles.grant(writing, "@bob:x.org", "coordinator", "", "@admin:x.org", NOW)
        async with database.snapshot() as reading:
            assert await asyncio.wait_for(granted(reading), 2) == ["@ann:x.org"]
    async with database.snapshot() as reading:
        assert await granted(reading) == ["@ann:x.org", "@bob:x.org"]
        async with database.transaction() as writing:  # would wait 10 s for a writer's lock
            await asyncio.wait_for(roles.grant(writing, "@cy:x.org", "coordinator", "",
                                               "@admin:x.org", NOW), 2)
    async with database.snapshot() as reading:
        await roles.grant(reading, "@dee:x.org", "coordinator", "", "@admin:x.org", NOW)
        await reading.flush()
    async with database.transaction() as session:
        assert await granted(session) == ["@ann:x.org", "@bob:x.org", "@cy:x.org"]


async def test_a_connection_held_through_another_database_object_is_named(
        tmp_path: Path) -> None:
    # What a start that finds SQLite locked logs: a task of this process that still holds
    # the file through a Database its owner stopped using.
    url = f"sqlite+aiosqlite:///{tmp_path / 'grapevine.db'}"
    stale, fresh = Database(url), Database(url)
    held, release = asyncio.Event(), asyncio.Event()

    async def left_behind() -> None:
        async with stale.transaction() as session:
            await session.execute(text("SELECT 1"))  # begun: SQLite's write lock is held
            held.set()
            await release.wait()

    task = asyncio.create_task(left_behind(), name="a pass left behind")
    await held.wait()
    try:
        assert fresh.held_elsewhere() == ["a pass left behind"]
        assert stale.held_elsewhere() == []
    finally:
        release.set()
        await task
        await stale.close()
        await fresh.close()
    assert fresh.held_elsewhere() == []


async def test_outbox_dedupe_key_queues_once(database: Database) -> None:
    async with database.transaction() as session:
        first = await outbox.enqueue(
            session, now=NOW, room_id="!r", body="F1", dedupe_key="notice:F1:!r"
        )
        again = await outbox.enqueue(
            session, now=NOW, room_id="!r", body="F1", dedupe_key="notice:F1:!r"
        )
    assert first is not None and again is None
    async with database.transaction() as session:
        due = await outbox.due(session, NOW)
        assert [m.body for m in due] == ["F1"]
        assert due[0].created_at == NOW


async def test_a_sent_dm_is_blanked_as_it_is_marked_sent_and_a_room_reply_is_kept(
        database: Database) -> None:
    async with database.transaction() as session:
        dm = await outbox.enqueue(session, now=NOW, to_user="@ann:x.org", kind="dm",
                                  body="Your DBS check expires 2027-01-31", html="<b>DBS</b>")
        reply = await outbox.enqueue(session, now=NOW, room_id="!r", body="Opening times: 9-5")
    assert dm is not None and reply is not None
    async with database.transaction() as session:
        await outbox.mark_sent(session, dm.id, "$dm", NOW, "!dm")
        await outbox.mark_sent(session, reply.id, "$reply", NOW, "!r")
    async with database.transaction() as session:
        sent = {row.event_id: (row.body, row.html, row.room_id, row.sent_at is not None)
                for row in await session.scalars(select(OutboxMessage))}
    assert sent == {"$dm": ("", None, "!dm", True),
                    "$reply": ("Opening times: 9-5", None, "!r", True)}


async def test_the_sync_position_moves_on_and_says_when(database: Database) -> None:
    later = NOW + timedelta(minutes=5)
    async with database.transaction() as session:
        await state.save_sync_position(session, "s1_1", NOW)
    async with database.transaction() as session:
        await state.save_sync_position(session, "s9_4", later)
    async with database.transaction() as session:
        assert await state.get_value(session, state.SYNC_TOKEN_KEY) == "s9_4"
        assert await state.sync_saved_at(session) == later


async def test_a_commands_statements_claim_once_count_per_day_and_are_compiled_once(
    database: Database,
) -> None:
    """The statements every command runs are cached: compiling one took about 0.4 ms
    of the event loop on every command (bench/latency.py)."""
    cached: list[object] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
             executemany: bool) -> None:
        if "ON CONFLICT" in statement:
            cached.append(context.cache_hit)

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    for minutes in range(3):
        at = NOW + timedelta(minutes=minutes)
        async with database.transaction() as session:
            first = await state.claim(session, f"$e{minutes}", "!r", at)
            again = await state.claim(session, f"$e{minutes}", "!r", at)
            await activity.note_command(session, "!r", at.date(), at)
            await state.save_sync_position(session, f"s{minutes}", at)
        assert (first, again) == (True, False)
    async with database.transaction() as session:
        assert await state.is_handled(session, "$e2")
        assert await activity.days(session) == [("!r", NOW.date(), NOW + timedelta(minutes=2))]
        day = await session.get(activity.CommandDay, ("!r", NOW.date().isoformat()))
        assert day is not None and day.commands == 3
        assert await state.sync_saved_at(session) == NOW + timedelta(minutes=2)
    hit = CacheStats.CACHE_HIT
    assert cached[4:] == [hit] * (len(cached) - 4)  # each of the four compiled only once


async def test_role_grants_are_unique(database: Database) -> None:
    async with database.transaction() as session:
        assert await roles.grant(session, "@a:hs", "moderator", "E07000010", "@admin:hs", NOW)
        assert not await roles.grant(session, "@a:hs", "moderator", "E07000010", "@admin:hs", NOW)
        assert await roles.grant(session, "@a:hs", "coordinator", "", "@admin:hs", NOW)
    async with database.transaction() as session:
        assert sorted(g.role for g in await roles.grants_for(session, "@a:hs")) == [
            "coordinator",
            "moderator",
        ]
        assert await roles.revoke(session, "@a:hs", "moderator", "E07000010")
        assert not await roles.revoke(session, "@a:hs", "moderator", "E07000010")


async def test_a_second_instance_on_the_same_database_refuses(db_url: str) -> None:
    first, second = Database(db_url), Database(db_url)
    lock = InstanceLock(first.engine)
    await lock.acquire()
    try:
        with pytest.raises(AlreadyRunning, match="already running"):
            await InstanceLock(second.engine).acquire()
    finally:
        await lock.release()
    # Once the first has stopped, a new one may start.
    again = InstanceLock(second.engine)
    await again.acquire()
    await again.release()
    await first.close()
    await second.close()
