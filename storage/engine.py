"""Engines and transactions: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) in production."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import TextClause, bindparam, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger("grapevine.storage")

# How long close() waits for connections still out of the pool to come back.
CLOSE_GRACE = 5.0

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    # Deleted rows (blanked DMs, purged notes) are zeroed in the file, not left in free pages.
    "PRAGMA secure_delete=ON",
)


# Set on a connection that only reads (Database.snapshot): on SQLite it begins without
# taking the write lock.
SNAPSHOT = "grapevine_snapshot"

# Which task holds how many :meth:`Database.transaction` blocks open (per task, as
# commands run side by side in rooms' lanes). The task is kept with the count because
# a task started inside a transaction inherits the variable, not the transaction.
_DEPTH: ContextVar[tuple[object, int]] = ContextVar("grapevine_transaction_depth",
                                                    default=(None, 0))


# Callbacks to run once a transaction has committed (see after_commit).
_AFTER_COMMIT = "grapevine.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` the moment ``session``'s :meth:`Database.transaction` commits,
    before its connection goes back to the pool (on SQLite, one more trip to the
    driver's thread for the pool's reset): a reply handed to its sender here is on its
    way while that happens. Never run if the transaction rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop running
        return None


def in_transaction() -> bool:
    """True while the running task holds a transaction open: no network I/O then
    (the in-process world's tests fail a transport call made here)."""
    owner, depth = _DEPTH.get()
    return depth > 0 and owner is _task()


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that can say ``on_conflict_do_nothing`` / ``on_conflict_do_update``: both
    engines have the clause, but SQLAlchemy spells it per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(table: Any, conflict: Sequence[str],
           update: Mapping[str, str] | None = None) -> TextClause:
    """INSERT ... ON CONFLICT as one text both engines read alike, compiled once.

    SQLAlchemy compiles its per-dialect ON CONFLICT inserts (:func:`upsert_insert`) anew
    on every execution (they are not cacheable), about 0.4 ms of the event loop each;
    every command's transaction runs one, every sync batch another. Build this once, at
    import, and execute it with a value for each of ``table``'s columns, named after
    them (several rows: a list of such mappings). ``update`` maps a column to the SQL
    that sets it on a conflict (``excluded.<column>`` is the value offered; the table's
    own name, the value stored); without it a conflicting row is skipped.
    """
    table = getattr(table, "__table__", table)
    names = [column.name for column in table.columns]
    action = "DO NOTHING" if not update else "DO UPDATE SET " + ", ".join(
        f"{column} = {sql}" for column, sql in update.items())
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + name for name in names)}) "
        f"ON CONFLICT ({', '.join(conflict)}) {action}")
    return statement.bindparams(*(bindparam(column.name, type_=column.type)
                                  for column in table.columns))


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine with the pragmas a long-running bot needs on SQLite.

    SQLite transactions start with BEGIN IMMEDIATE: a read-then-write
    transaction would otherwise fail at once with "database is locked"
    instead of waiting its turn behind another writer. A snapshot's (it only
    reads) starts with a plain BEGIN: under WAL it neither waits for the writer
    nor holds it up.
    """
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        # A fresh data directory is made on first use, so every command-line tool
        # (migrate, import-grants, import-directory) works before the bot first ran.
        path = engine.url.database
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            snapshot = connection.get_execution_options().get(SNAPSHOT, False)
            # Straight on the driver's connection: one trip to its thread, where a
            # statement through a cursor makes three (open, execute, close); it begins
            # every transaction, a command's too (bench/latency.py).
            connection.connection.dbapi_connection.execute(
                "BEGIN" if snapshot else "BEGIN IMMEDIATE")

    return engine


class Database:
    """The database is the truth: every feature reads and writes through one of these."""

    # Every one not yet garbage: who else in this process may hold the same database.
    _open: ClassVar[weakref.WeakSet[Database]] = weakref.WeakSet()

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Connections out of the pool now, each with the name of the task that took it.
        # Disposing the engine closes only connections in the pool: one still out (and,
        # on SQLite, the write lock its transaction holds) lives on with its holder, and
        # a restart in the same process would find the database locked. close() waits.
        self._out: dict[int, str] = {}
        self._drained: asyncio.Event | None = None  # set by the last check-in while closing
        sync_engine = self.engine.sync_engine
        event.listen(sync_engine, "checkout", self._on_checkout)
        event.listen(sync_engine, "checkin", self._on_checkin)
        Database._open.add(self)

    def _on_checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        task = _task()
        self._out[id(record)] = task.get_name() if isinstance(task, asyncio.Task) else "-"

    def _on_checkin(self, _dbapi: Any, record: Any) -> None:
        self._out.pop(id(record), None)
        if not self._out and self._drained is not None:
            self._drained.set()

    def checked_out(self) -> list[str]:
        """Who holds a connection out of the pool now (task names; tests, close)."""
        return sorted(self._out.values())

    def held_elsewhere(self) -> list[str]:
        """Tasks of this process holding a connection to the same database through
        another :class:`Database` (a stopped service's that outlived its stop): what a
        start that finds SQLite locked should name."""
        return sorted(name for other in list(Database._open)
                      if other is not self and other.url == self.url
                      for name in other.checked_out())

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed on success, rolled back on any exception.

        Never await network I/O (Matrix, HTTP) inside one: it holds the write lock.
        """
        owner, depth = _DEPTH.get()
        task = _task()
        token = _DEPTH.set((task, depth + 1 if owner is task else 1))
        try:
            async with self.sessions() as session:
                async with session.begin():
                    yield session
                for callback in session.info.pop(_AFTER_COMMIT, ()):
                    callback()
        finally:
            _DEPTH.reset(token)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """The database as committed, to read only, without the write lock: for reads too
        big to make in a command's transaction, where every other command would wait for
        them (the reach model's records). Whatever is written in it is rolled back.

        Like a transaction, no network I/O inside one: it holds a connection."""
        owner, depth = _DEPTH.get()
        task = _task()
        token = _DEPTH.set((task, depth + 1 if owner is task else 1))
        try:
            async with self.engine.connect() as connection:
                await connection.execution_options(**{SNAPSHOT: True})
                async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                    try:
                        yield session
                    finally:
                        await session.rollback()
        finally:
            _DEPTH.reset(token)

    async def checkpoint_wal(self) -> None:
        """On SQLite, fold the write-ahead log into the file and empty it, so bytes just
        overwritten or deleted (blanked messages) do not linger in the log. Best effort:
        a busy database is fine, the next sweep tries again. Nothing to do on PostgreSQL."""
        if self.dialect != "sqlite":
            return
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Close every connection, once those still out are back (within ``grace`` s).

        Whatever still holds one at close is a task that outlived its owner's stop: a
        bug, named in the log so it can be found (the next start may then find SQLite
        locked until the task lets go)."""
        if self._out:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace)
            self._drained = None
        if self._out:
            log.error("closing the database while %d connection(s) are still in use by: %s",
                      len(self._out), ", ".join(self.checked_out()))
        await self.engine.dispose()
