"""Write a new migration from the models: ``python -m storage.revision "what changed"``.

It upgrades a scratch SQLite database to head and autogenerates the difference,
so a feature that adds tables gets a reviewed, committed migration, never create_all.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import Connection

from storage.engine import make_engine
from storage.migrate import alembic_config, upgrade


async def autogenerate(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}")
        await upgrade(engine)

        def run(connection: Connection) -> None:
            command.revision(alembic_config(connection), message=message, autogenerate=True)

        async with engine.begin() as connection:
            await connection.run_sync(run)
        await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit('usage: python -m storage.revision "what changed"')
    asyncio.run(autogenerate(sys.argv[1]))
