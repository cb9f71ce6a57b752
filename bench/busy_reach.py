"""`!about` reply latency while a `!reach seed` runs in another room, against idle.

One embedded Synapse and one Grapevine. The database holds a network over the shipped
county: two groups in every locality of the shipped areas file, each with 20 active
(pseudonymous) people, a third of whom are also active in a neighbouring group. Ada asks
`!about` in her room: first with nothing else going on (idle), then again and again while
Cora's `!reach seed F1` runs in Cora's room (busy), for several seeds in a row. Target:
busy p95 at most 1.5x idle p95.

    .venv/bin/python -m bench busy_reach [--idle 30] [--seeds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
from datetime import UTC, datetime

from bench.harness import percentile, stage, start
from bench.latency import Person
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


async def main(idle_rounds: int, seeds: int) -> None:
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
        idle = [await ada.ask(ada_room, bot_user.user_id, "!about")
                for _ in range(idle_rounds)]
        busy: list[float] = []
        for _ in range(seeds):
            sent = await cora.client.room_send(cora_room, "m.room.message",
                                               {"msgtype": "m.text",
                                                "body": "!reach seed F1 k=10"})
            assert hasattr(sent, "event_id"), sent
            seeding = asyncio.create_task(until_seeded(cora, cora_room, bot_user.user_id))
            while not seeding.done():
                busy.append(await ada.ask(ada_room, bot_user.user_id, "!about"))
            await seeding
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
    args = parser.parse_args()
    asyncio.run(main(args.idle, args.seeds))
