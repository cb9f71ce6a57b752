"""Building the whole Cambridgeshire room tree vs. as many bare matrix-nio room creations.

Starts its own embedded Synapse (temp dir), registers two server-admin users
with every rate limit lifted (the admin override), then times on the same
server: N bare ``room_create()`` calls, the bot's full tree build (N rooms and
spaces with aliases, restricted joins, parent/child links, moderator power
levels, each recorded in the database), N bare creations again (to see any
drift as the server's database grows), and the idempotent rebuild (no
changes). The figure of merit is tree time / mean bare time; target <= 1.3.

    .venv/bin/python -m bench.rooms_tree [--areas FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import nio

from bot.app import Grapevine
from bot.features import tree_plan
from bot.features.tree_build import builder_for
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.runtime.login import client_config
from bot.transport.matrix import MatrixTransport
from config.areas import AreaIndex
from config.settings import load_settings
from config.themes import load_themes
from storage import tree
from storage.engine import Database
from storage.migrate import upgrade


async def client_for(synapse: EmbeddedSynapse, user: RegisteredUser) -> nio.AsyncClient:
    client = nio.AsyncClient(synapse.base_url, user.user_id, device_id=user.device_id,
                             config=client_config(False, "bench"))
    client.access_token = user.access_token
    client.user_id = user.user_id
    return client


async def bare_creations(client: nio.AsyncClient, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        response = await client.room_create()
        if not isinstance(response, nio.RoomCreateResponse):
            raise RuntimeError(f"bare room_create failed: {response}")
    return time.perf_counter() - start


async def tree_build(app: Grapevine, area_code: str) -> float:
    async with app.db.transaction() as session:
        run = await tree.start_run(session, area_code=area_code, requested_by="bench",
                                   at=app.clock.now())
        run_id = run.id
    builder = builder_for(app)
    start = time.perf_counter()
    builder.expect(run_id)
    builder.wake()
    await builder.idle()
    elapsed = time.perf_counter() - start
    async with app.db.transaction() as session:
        done = await tree.get_run(session, run_id)
    assert done is not None and done.error is None, done and done.error
    print(f"  run {run_id}: {done.total} rooms, made {done.created}, updated {done.changed}")
    return elapsed


async def main(areas_file: Path | None) -> None:
    areas = AreaIndex.load(areas_file)
    count = len(tree_plan.full_plan(areas, load_themes()))
    print(f"{len(areas)} areas -> {count} rooms and spaces")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with EmbeddedSynapse(root / "synapse") as synapse:
            admin = await synapse.register("admin", admin=True)
            bot_user = await synapse.register("grapevine", admin=True)
            bare_user = await synapse.register("bare", admin=True)
            for user in (bot_user, bare_user):
                await synapse.override_ratelimit(user.user_id, admin.access_token)
            settings = load_settings(None, bot={"data_dir": str(root / "bot")},
                                     matrix={"user_id": bot_user.user_id,
                                             "homeserver": synapse.base_url},
                                     areas={"file": str(areas_file) if areas_file else None})
            db = Database(f"sqlite+aiosqlite:///{root / 'bot.db'}")
            await upgrade(db.engine)
            bot_client = await client_for(synapse, bot_user)
            bare_client = await client_for(synapse, bare_user)
            try:
                app = Grapevine(settings, db, MatrixTransport(bot_client, db), areas=areas)
                bare1 = await bare_creations(bare_client, count)
                print(f"bare nio x{count}: {bare1:.1f} s")
                built = await tree_build(app, areas.root.code)
                print(f"tree build: {built:.1f} s")
                bare2 = await bare_creations(bare_client, count)
                print(f"bare nio x{count} again: {bare2:.1f} s")
                rebuilt = await tree_build(app, areas.root.code)
                print(f"idempotent rebuild: {rebuilt:.1f} s")
                ratio = built / ((bare1 + bare2) / 2)
                print(f"ratio tree / bare: {ratio:.2f} (target <= 1.3)")
            finally:
                await bot_client.close()
                await bare_client.close()
                await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--areas", type=Path, help="area file (default: the shipped county)")
    asyncio.run(main(parser.parse_args().areas))
