"""What issue 19's adoption figures cost: the command-day note on every command in a group
room, and the report's counting over a county's worth of rows.

1. ``!about`` in a group room of the in-process world (SQLite), answered with the
   command-day note (one group lookup and one upsert in the command's transaction)
   and without it (the lookup patched out), rounds interleaved: p50/p95 and the ratio.
2. ``bot.features.adoption.build`` over synthetic rows: every locality of the shipped
   county with ``--groups-per`` groups, a year of command days, deliveries and
   engagements (``--events``): median of ``--repeats`` runs, against reading the same
   rows once (the floor: a report cannot count rows faster than it can walk them).

    .venv/bin/python -m bench adoption [--rounds 200] [--groups-per 4] [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import bot.app
from bot.features import adoption
from bot.ratelimit import RateLimiter
from config.areas import AreaIndex
from storage.adoption import GroupRow, Rows
from storage.groups import Group
from tests.botworld import bot_world

LONDON = ZoneInfo("Europe/London")


async def command_latency(rounds: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        async with bot_world(Path(tmp)) as bw:
            ann = bw.world.user("ann", "Ann")
            room = bw.world.create_room(ann, name="Food Bank")
            await bw.world.join(bw.bot, room)
            async with bw.app.db.transaction() as session:
                session.add(Group(room_id=room, name="Food Bank", type="charity",
                                  area_code="E04001668", themes=["food"], size="small",
                                  registered_by=ann, registered_at=bw.clock.now()))
            await bw.deliver()
            bw.app.limiter = RateLimiter(10**9)
            real = bot.app.groups.by_room

            async def none(*_: object) -> None:
                return None

            on: list[float] = []
            off: list[float] = []
            for i in range(rounds * 2):
                noting = i % 2 == 0
                bot.app.groups.by_room = real if noting else none  # type: ignore[assignment]
                start = time.perf_counter()
                await bw.say(ann, room, "!about")
                (on if noting else off).append(time.perf_counter() - start)
                bw.clock.advance(seconds=7)
            bot.app.groups.by_room = real
            return on, off


def synthetic(groups_per: int, events: int, now: datetime) -> Rows:
    areas = AreaIndex.load()
    rng = random.Random(19)
    localities = [a.code for a in areas.localities()]
    groups = []
    for n, code in enumerate(c for c in localities for _ in range(groups_per)):
        at = now - timedelta(days=rng.randrange(400))
        groups.append(GroupRow(n, code, f"!r{n}", rng.choice([None, "whatsapp", "telegram"]),
                               at, at + timedelta(days=3) if rng.random() < 0.7 else None, None))
    rooms = [g.room_id or "" for g in groups]

    def when() -> datetime:
        return now - timedelta(seconds=rng.randrange(365 * 86400))

    days = [(r, (at := when()).astimezone(LONDON).date(), at)
            for r in rng.choices(rooms, k=events // 4)]
    return Rows(
        groups=groups, command_days=days,
        engagements=[(r, rng.randrange(200), when()) for r in rng.choices(rooms, k=events)],
        deliveries=[(r, rng.randrange(200), when()) for r in rng.choices(rooms, k=events // 2)],
        introductions=[(rng.randrange(len(groups)), when()) for _ in range(events // 50)],
        filled=[(rng.randrange(len(groups)), when()) for _ in range(events // 50)],
        collabs=[((rng.randrange(len(groups)), rng.randrange(len(groups))), when())
                 for _ in range(events // 50)])


def walk(rows: Rows) -> int:
    total = 0
    for table in (rows.groups, rows.command_days, rows.engagements, rows.deliveries,
                  rows.introductions, rows.filled, rows.collabs):
        for row in table:
            total += row is not None
    return total


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--groups-per", type=int, default=4)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    on, off = asyncio.run(command_latency(args.rounds))
    print(f"!about in a group room, {args.rounds} rounds each (in-process world, SQLite):")
    print(f"  without the note p50/p95 {pct(off, .5):.1f} / {pct(off, .95):.1f} ms")
    print(f"  with the note    p50/p95 {pct(on, .5):.1f} / {pct(on, .95):.1f} ms")
    print(f"  ratio p50 {pct(on, .5) / pct(off, .5):.2f}, p95 {pct(on, .95) / pct(off, .95):.2f}")
    now = datetime(2026, 11, 20, 10, tzinfo=UTC)
    rows = synthetic(args.groups_per, args.events, now)
    areas = AreaIndex.load()
    builds, walks = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        walk(rows)
        walks.append(time.perf_counter() - start)
        start = time.perf_counter()
        report = adoption.build(rows, areas, areas.root.code, date(2025, 12, 1), now.date(),
                                now, LONDON)
        adoption.render_csv(report, areas)
        builds.append(time.perf_counter() - start)
    n = sum(len(t) for t in (rows.command_days, rows.engagements, rows.deliveries))
    print(f"build + CSV over {len(rows.groups)} groups and {n:,} activity rows: "
          f"median {statistics.median(builds) * 1000:.0f} ms; walking the rows "
          f"{statistics.median(walks) * 1000:.0f} ms; ratio "
          f"{statistics.median(builds) / statistics.median(walks):.1f}")


if __name__ == "__main__":
    main()
