"""Fixtures shared by every test: databases on both engines, a controllable clock."""

from __future__ import annotations

import os
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from bot.transport.world import WorldTransport
from storage.engine import Database, in_transaction
from storage.migrate import upgrade
from tests.clocks import WALL_TIMES, ManualClock

PG_URL = os.environ.get("GRAPEVINE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
RUN_ID = uuid.uuid4().hex[:8]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def make_pg_database() -> str:
    """A fresh database per test on the shared server, so runs never see each other."""
    name = f"gv_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL, once on SQLite and once on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'grapevine.db'}"
        return
    url = await make_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """A migrated database on each engine."""
    db = Database(db_url)
    await upgrade(db.engine)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database, for tests about logic rather than storage."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'grapevine.db'}")
    await upgrade(db.engine)
    try:
        yield db
    finally:
        await db.close()


# Every call the bot can make to the chat server (bot.transport.base.Transport).
TRANSPORT_CALLS = ("send", "upload", "create_room", "put_state", "get_state", "room_state",
                   "room_info", "members", "invite", "kick", "redact", "join", "leave",
                   "resolve_alias", "recent_events", "direct_room")


def _caller() -> str:
    """The bot's own frame that made the call (the first one outside the transport)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/bot/" in frame.filename and "/transport/" not in frame.filename:
            return f"{frame.filename.split('/bot/')[-1]}:{frame.lineno} {frame.name}"
    return "?"


@pytest.fixture(autouse=True)
def network_in_transactions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fails any test in which the bot calls the chat server while it holds a database
    transaction open (it would hold SQLite's write lock, and every other room, across
    the network). Every command the in-process world runs is checked this way."""
    caught: list[str] = []
    for name in TRANSPORT_CALLS:
        original = getattr(WorldTransport, name)

        def guarded(self: WorldTransport, *args: object, _name: str = name,
                    _original: object = original, **kwargs: object) -> object:
            if in_transaction():
                caught.append(f"{_name} from {_caller()}")
            return _original(self, *args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(WorldTransport, name, guarded)
    yield caught
    assert not caught, "chat server called inside a transaction: " + "; ".join(caught)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=list(WALL_TIMES.values()), ids=list(WALL_TIMES))
def wall(request: pytest.FixtureRequest) -> datetime:
    """The instant a time-sensitive test starts its bot at: each of the awkward hours
    (00:30, 08:15, 21:30 London) and both 2026 clock-change days, in turn. A test that
    passes at all of them, with every part of the bot reading the injected clock,
    passes whatever the hour a CI run happens to start."""
    moment: datetime = request.param
    return moment
