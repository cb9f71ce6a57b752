"""One bot per database: a second instance must refuse to start, never double-post."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class AlreadyRunning(RuntimeError):
    """Another Grapevine holds the lock on this database."""


# Keyed by the server's own idea of database and schema, however the URL spells the host.
ADVISORY_LOCK = (
    "SELECT pg_try_advisory_lock("
    "hashtext('grapevine:' || current_database() || ':' || current_schema()))"
)


class InstanceLock:
    """Held for the process's lifetime; released by the OS or the server if the process dies.

    SQLite: an exclusive ``flock`` on ``<database>.lock``. PostgreSQL: a session
    advisory lock on a connection kept open for as long as the bot runs.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._fd: int | None = None
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            self._acquire_file(Path(url.database or ":memory:"))
        else:
            await self._acquire_advisory(url.render_as_string(hide_password=True))

    def _acquire_file(self, database: Path) -> None:
        if str(database) == ":memory:":
            return
        lock_path = database.with_name(database.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another Grapevine is already running on {database} "
                f"(it holds {lock_path}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    async def _acquire_advisory(self, url: str) -> None:
        from sqlalchemy import text

        connection = await self.engine.connect()
        got: Any = await connection.scalar(text(ADVISORY_LOCK))
        await connection.commit()
        if not got:
            await connection.close()
            database = make_url(url).database
            raise AlreadyRunning(
                f"another Grapevine is already running on database {database!r} "
                "(it holds the advisory lock); stop it first"
            )
        self._connection = connection

    async def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._connection is not None:
            from sqlalchemy import text

            # Closing only returns the connection to the pool, where the lock would live on.
            await self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
            await self._connection.commit()
            await self._connection.close()
            self._connection = None
