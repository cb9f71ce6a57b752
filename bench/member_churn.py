"""HTTP requests the bot makes for 100 member changes in a 500-member room, before and after.

One embedded Synapse; a room with 500 members (appservice ghosts) and the bot. The
bot runs as ``grapevine run`` through a counting proxy; then 50 members leave and
50 join again (100 membership events), each followed by a line of chat, as a busy
bridged room looks, and a person asks ``!about`` at the end. The requests the bot
made from the first change to the answer are counted by kind.

``--before DIR`` runs the same with the code in DIR too (e.g. a ``git archive`` of
an older commit), in the same run, on the same Synapse:

    .venv/bin/python -m bench.member_churn --before /tmp/grapevine-before
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.httpcount import CountingProxy
from bench.scale_rooms import REPO, BotRun, Client, Person, World, load, show

MEMBERS = 500
CHANGES = 100


async def run_one(world: World, repo: Path, person: Person, ghost: Client, admin_token: str,
                  root: Path) -> dict[str, Any]:
    synapse = world.synapse
    bot_user = await synapse.register(f"grapevine{uuid.uuid4().hex[:6]}", uuid.uuid4().hex,
                                      admin=True)
    await synapse.override_ratelimit(bot_user.user_id, admin_token)
    bot = bot_user.user_id
    made = await person.client.call("POST", "/_matrix/client/v3/createRoom", {
        "name": "Busy bridged group", "preset": "public_chat", "invite": [bot]})
    room = made["room_id"]
    members = world.ghosts[:MEMBERS]
    for who in members:
        await ghost.call("POST", f"/_matrix/client/v3/join/{quote(room, safe='')}", {},
                         as_user=who)
    proxy = CountingProxy(synapse.base_url)
    await proxy.start()
    run = BotRun(root / bot[1:].split(":")[0], proxy, bot_user, person.user_id, repo=repo)
    try:
        await person.catch_up()
        run.start()
        await person.wait_for(room, bot, kind="m.room.member")
        await person.wait_for(room, bot)  # the greeting
        await person.ask(room, bot)
        await asyncio.sleep(3)
        proxy.reset()
        started = time.monotonic()
        changing = members[: CHANGES // 2]
        path = f"/_matrix/client/v3/rooms/{quote(room, safe='')}"
        for who in changing:
            await ghost.call("POST", f"{path}/leave", {}, as_user=who)
            await ghost.send(room, "bye for now", as_user=members[-1])
        for who in changing:
            await ghost.call("POST", f"/_matrix/client/v3/join/{quote(room, safe='')}", {},
                             as_user=who)
            await ghost.send(room, "hello again", as_user=who)
        answer = await person.ask(room, bot)
        counts = proxy.reset()
        return {"requests": dict(counts), "answer": answer,
                "seconds": time.monotonic() - started, "load": load()}
    finally:
        if run.proc is not None:
            run.signal(signal.SIGTERM)
        await proxy.stop()


async def main(before: Path | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        world = World(root, 0)
        world.ghosts = [world.synapse.user_id(f"bench_{i}") for i in range(MEMBERS)]
        _, person, ghost = await world.start()
        admin = await world.synapse.register("admin", admin=True)
        try:
            rows = []
            for label, repo in ([("before", before)] if before else []) + [("after", REPO)]:
                rows.append((label, await run_one(world, repo, person, ghost,
                                                  admin.access_token, root)))
        finally:
            await world.stop()
    print(f"{CHANGES} member changes (and {CHANGES} lines of chat) in a {MEMBERS}-member room, "
          "then one !about:")
    for label, row in rows:
        besides = {k: v for k, v in row["requests"].items() if k != "sync"}
        print(f"  {label:7} {sum(besides.values()):5} requests besides sync "
              f"({show(row['requests'])}); answer {row['answer']:.2f} s [load {row['load']}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="a tree with the code to compare against")
    args = parser.parse_args()
    asyncio.run(main(args.before))

