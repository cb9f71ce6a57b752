"""`!about` reply latency while a `!reach seed` runs in another room, against idle.

One embedded Synapse and one Grapevine. The database holds a network over the shipped
county: two groups in every locality of the shipped areas file, each with 20 active
(pseudonymous) people, a third of whom are also active in a neighbouring group. Ada asks
`!about` in her room: first with nothing else going on (idle), then again and again while
Cora's `!reach seed F1` runs in Cora's room (busy), for several seeds in a row. Target:
busy p95 at most 1.5x idle p95.

    .venv/bin/python -m bench busy_reach [--idle 30] [--seeds 3] [--people-beside-bot]

Ada and Cora each ask from a process of their own, as people's clients do: in the bot's
process, each parsing their own syncs held up the bot's event loop (and Cora's held up
Ada's timing). ``--people-beside-bot`` puts them back there, as the runs before
2026-12-04 13:00 did.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from typing import Any

from bench.harness import importable, percentile, stage, start
from bench.latency import Person
from bot.homeserver import RegisteredUser
from bot.service import Service
from storage.flow import FlowEvent
from storage.funding import FundingNotice
from storage.groups import Group

PEOPLE_PER_GROUP = 20


async def seed_county(service: Service) -> int:
    """Groups over every locality and their people's activity; returns the group count."""
    assert service.app is not None
    rng = random.Random(7)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    localities = service.app.areas.localities()
    async with service.app.db.transaction() as session:
        rooms = []
        for i, area in enumerate(localities):
            for j in range(2):
                room = f"!bench-{i}-{j}:bench"
                rooms.append(room)
                session.add(Group(room_id=room, name=f"{area.name} group {j}", type="charity",
                                  area_code=area.code, themes=["food"], size="small",
                                  registered_by="@bench:bench", registered_at=now))
        n = 0
        for k, room in enumerate(rooms):
            for p in range(PEOPLE_PER_GROUP):
                key = f"k{k}-{p}"
                where = [room]
                if p % 3 == 0:
                    where.append(rooms[(k + rng.randint(1, 6)) % len(rooms)])
                for target in where:
                    n += 1
                    session.add(FlowEvent(event_id=f"$e{n}", room_id=target, sender_key=key,
                                          at=now, kind="message"))
        session.add(FundingNotice(title="Food Fund", funder="Trust", url="https://example.org",
                                  status="published", created_at=now))
    return len(rooms)


async def until_seeded(cora: Person, room: str, bot: str) -> None:
    while True:
        for rid, event in await cora.sync(timeout=10000):
            body = (event.get("content") or {}).get("body", "")
            if rid == room and event.get("sender") == bot and body.startswith("F1:"):
                return


async def ask_for_seeds(cora: Person, room: str) -> None:
    """Cora asks for the ten best rooms to post F1 in."""
    sent = await cora.client.room_send(room, "m.room.message",
                                       {"msgtype": "m.text", "body": "!reach seed F1 k=10"})
    assert hasattr(sent, "event_id"), sent


async def seeds_in_turn(cora: Person, room: str, bot: str, seeds: int,
                        seeding: Event) -> None:
    """Cora's ``seeds`` seed commands, one after another; ``seeding`` is set while one
    runs (until its answer is in Cora's room)."""
    for _ in range(seeds):
        seeding.set()
        await ask_for_seeds(cora, room)
        await until_seeded(cora, room, bot)
        seeding.clear()


async def asks_while(ada: Person, room: str, bot: str, seeding: Event, over: Event,
                     ) -> list[float]:
    """Ada's ``!about`` again and again while a seed runs, until ``over``."""
    busy: list[float] = []
    while not over.is_set():
        if seeding.is_set():
            busy.append(await ada.ask(room, bot, "!about"))
        else:
            await asyncio.sleep(0.005)
    return busy


def as_person(role: str, user: RegisteredUser, homeserver: str, room: str, bot: str,
              idle_rounds: int, seeds: int, ready: Event, seeding: Event, over: Event,
              results: Any) -> None:
    """Ada's or Cora's part, in a process of their own (the target of a child process)."""

    async def run() -> None:
        person = Person(user, homeserver)
        try:
            await person.sync()
            if role == "ada":
                idle = [await person.ask(room, bot, "!about") for _ in range(idle_rounds)]
                ready.set()
                results.put((idle, await asks_while(person, room, bot, seeding, over)))
            else:
                while not ready.is_set():
                    await asyncio.sleep(0.01)
                await seeds_in_turn(person, room, bot, seeds, seeding)
                over.set()
        finally:
            await person.client.close()

    asyncio.run(run())


async def in_own_processes(people: dict[str, tuple[RegisteredUser, str]], homeserver: str,
                           bot: str, idle_rounds: int, seeds: int,
                           ) -> tuple[list[float], list[float]]:
    """Ada's idle and busy times, Ada and Cora each asking from a child process."""
    spawn = multiprocessing.get_context("spawn")
    ready, seeding, over = spawn.Event(), spawn.Event(), spawn.Event()
    results = spawn.Queue()
    children = [spawn.Process(target=importable(as_person), name=role, args=(
        role, user, homeserver, room, bot, idle_rounds, seeds, ready, seeding, over, results))
        for role, (user, room) in people.items()]
    for child in children:
        child.start()
    loop = asyncio.get_running_loop()
    idle, busy = await loop.run_in_executor(None, results.get)
    for child in children:
        await loop.run_in_executor(None, child.join)
        assert child.exitcode == 0, f"{child.name} failed"
    return idle, busy


async def beside_bot(ada: Person, cora: Person, rooms: tuple[str, str], bot: str,
                     idle_rounds: int, seeds: int) -> tuple[list[float], list[float]]:
    """Ada's idle and busy times, both people's clients on the bot's event loop."""
    ada_room, cora_room = rooms
    idle = [await ada.ask(ada_room, bot, "!about") for _ in range(idle_rounds)]
    busy: list[float] = []
    for _ in range(seeds):
        await ask_for_seeds(cora, cora_room)
        seeding = asyncio.create_task(until_seeded(cora, cora_room, bot))
        while not seeding.done():
            busy.append(await ada.ask(ada_room, bot, "!about"))
        await seeding
    return idle, busy


async def main(idle_rounds: int, seeds: int, *, people_beside_bot: bool = False) -> None:
    async with stage("ada", "cora") as on:
        synapse, bot_user = on.synapse, on.bot
        ada_user, cora_user = on.people["ada"], on.people["cora"]
        service = await start(on.settings(roles={"coordinators": [cora_user.user_id]}))
        groups = await seed_county(service)
        ada = Person(ada_user, synapse.base_url)
        cora = Person(cora_user, synapse.base_url)
        await ada.sync()
        await cora.sync()
        ada_room = await ada.room_with(bot_user.user_id, "ada")
        cora_room = await cora.room_with(bot_user.user_id, "cora")
        bot = bot_user.user_id
        if people_beside_bot:
            idle, busy = await beside_bot(ada, cora, (ada_room, cora_room), bot,
                                          idle_rounds, seeds)
        else:
            started = time.perf_counter()
            idle, busy = await in_own_processes(
                {"ada": (ada_user, ada_room), "cora": (cora_user, cora_room)},
                synapse.base_url, bot, idle_rounds, seeds)
            print(f"(people in their own processes; {time.perf_counter() - started:.0f} s)")
        print(f"!about while !reach seed runs on the shipped county ({groups} groups):")
        for name, values in (("idle", idle), ("during !reach seed", busy)):
            print(f"  {name:20} n={len(values):3}  p50 {1000 * statistics.median(values):7.1f}"
                  f" ms   p95 {1000 * percentile(values, 0.95):7.1f} ms")
        print(f"  busy/idle p95 {percentile(busy, 0.95) / percentile(idle, 0.95):.2f}")
        await service.stop()
        await ada.client.close()
        await cora.client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--people-beside-bot", action="store_true",
                        help="Ada's and Cora's clients on the bot's event loop (the old runs)")
    args = parser.parse_args()
    asyncio.run(main(args.idle, args.seeds, people_beside_bot=args.people_beside_bot))
