"""What a database keeps at rest, for tests that prove something is never stored."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

import storage.all_models  # noqa: F401 (every table on Base.metadata)
from storage.engine import Database
from storage.models import Base


async def stored_bytes(db: Database) -> bytes:
    """On SQLite, the database file and its write-ahead log, byte for byte (deleted or
    overwritten data lingers there); on PostgreSQL, every row of every table, as text."""
    if db.dialect == "sqlite":
        path = Path(db.url.removeprefix("sqlite+aiosqlite:///"))
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    chunks: list[bytes] = []
    async with db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                chunks.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
    return b"\n".join(chunks)
