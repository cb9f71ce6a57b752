"""Building the whole Cambridgeshire room tree vs. as many bare matrix-nio room creations.

Starts its own embedded Synapse (temp dir), registers two server-admin users
with every rate limit lifted (the admin override), then times on the same
server: N bare ``room_create()`` calls, the bot's full tree build (N rooms and
spaces with aliases, restricted joins, parent/child links, moderator power
levels, each recorded in the database), N bare creations again (to see any
drift as the server's database grows), and the idempotent rebuild (no
changes). The figure of merit is tree time / mean bare time; target <= 1.3.

    .venv/bin/python -m bench.rooms_tree [--areas FILE] [--area NAME]
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
from bot.features.tree_build import build_now
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.runtime.login import client_config
from bot.service import assemble
from bot.transport.matrix import MatrixTransport
from config.areas import AreaIndex
from config.settings import load_settings
from config.themes import load_themes
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


async def tree_build(app: Grapevine, area_code: str) -> tuple[float, int]:
    """Seconds to build (or check) one area's part, and how many rooms it made."""
    start = time.perf_counter()
    run = await build_now(app, area_code, "bench")
    elapsed = time.perf_counter() - start
    assert run.error is None, run.error
    return elapsed, run.created


async def main(areas_file: Path | None, area: str | None) -> None:
    areas = AreaIndex.load(areas_file)
    target = areas.resolve(area)[0].code if area else areas.root.code
    count = len(tree_plan.plan_for(areas, load_themes(), target))
    # One part per district (the first also makes the spaces above it), timed
    # alternately before and after as many bare creations (ABBA), so load from
    # anything else on the machine falls on both sides alike.
    parts = [d.code for d in areas.districts() if areas.contains(target, d.code)] or [target]
    print(f"{areas.label(target)}: {len(areas.descendants(target))} areas -> {count} rooms "
          f"and spaces, in {len(parts)} parts")
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
                app = assemble(settings, db, MatrixTransport(bot_client, db), areas=areas)
                built_total = bare_total = 0.0
                made_total = 0
                keys: set[str] = set()
                for i, part in enumerate(parts):
                    wanted = {r.key for r in tree_plan.plan_for(areas, app.themes, part)}
                    made = len(wanted - keys)
                    keys |= wanted
                    if i % 2:
                        built, made_now = await tree_build(app, part)
                        bare = await bare_creations(bare_client, made)
                    else:
                        bare = await bare_creations(bare_client, made)
                        built, made_now = await tree_build(app, part)
                    assert made_now == made, (made_now, made)
                    made_total += made
                    built_total += built
                    bare_total += bare
                    print(f"  {areas.label(part)}: {made} rooms, tree {built:.1f} s, "
                          f"bare {bare:.1f} s")
                assert made_total == count, (made_total, count)
                rebuilt, made = await tree_build(app, target)
                assert made == 0
                print(f"tree build: {built_total:.1f} s for {made_total} rooms")
                print(f"bare nio x{made_total}: {bare_total:.1f} s")
                print(f"idempotent rebuild: {rebuilt:.1f} s")
                print(f"ratio tree / bare: {built_total / bare_total:.2f} (target <= 1.3)")
            finally:
                await bot_client.close()
                await bare_client.close()
                await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--areas", type=Path, help="area file (default: the shipped county)")
    parser.add_argument("--area", help="build only this area's part (default: all)")
    args = parser.parse_args()
    asyncio.run(main(args.areas, args.area))
