"""Write a new migration from the models: ``python -m storage.revision "what changed"``.

It upgrades a scratch SQLite database to head and autogenerates the difference,
so a feature that adds tables gets a reviewed, committed migration, never create_all.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import Connection

from storage.engine import make_engine
from storage.migrate import alembic_config, upgrade


async def autogenerate(message: str, after: str | None = None, rev_id: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}")
        await upgrade(engine)

        def run(connection: Connection) -> None:
            command.revision(
                alembic_config(connection), message=message, autogenerate=True,
                head=f"{after}@head" if after else "head", rev_id=rev_id,
                splice=after is not None,
            )

        async with engine.begin() as connection:
            await connection.run_sync(run)
        await engine.dispose()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("message")
    parser.add_argument("--id", help="revision id, e.g. 0002_rooms")
    parser.add_argument("--after", help="the revision it follows (default: the single head)")
    args = parser.parse_args()
    asyncio.run(autogenerate(args.message, args.after, args.id))
