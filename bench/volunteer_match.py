"""Matching one volunteer request against 100,000 stored profiles, on SQLite and PostgreSQL.

Compares the indexed match (bot.features.matching.candidates: the request's grid
cell in the reach index, availability mask, DBS level and pause in one
statement, then exact distance and ranking in Python) with a plain full scan
(every profile read and checked in Python with the same rules), and with the
in-memory part of that scan alone (profiles already loaded: the lower bound of
any scan). Both must return the same ranked list; the run stops if they differ.

    .venv/bin/python -m bench.volunteer_match [--profiles 100000] [--requests 200]
        [--scans 20] [--engines sqlite,postgresql]

PostgreSQL comes from GRAPEVINE_TEST_PG_URL (as the tests); a scratch database
is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import insert, text

from bot.features.availability import parse_slots, window_slots
from bot.features.matching import Candidate, Need, candidates, cells_within, rank, skill_bits
from config.areas import AreaIndex
from storage import volunteers as store
from storage.engine import Database
from storage.groups import Group
from storage.migrate import upgrade

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
PG_URL = os.environ.get("GRAPEVINE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SLOT_WORDS = ["weekends", "anytime", "weekday-evenings", "sat-morning,sun-afternoon",
              "weekday-mornings", "mon,wed,fri", "tue-evening,thu-evening,sat", "weekdays"]
SKILLS = ["driving", "communication", "practical-operational", "digital-technology",
          "first-aid", "cooking", "teamwork-leadership", "gardening"]
LIMIT = 30  # the most offers one request makes (matching.offers_to_make)
WINDOWS = [(5, 10, 13), (6, 14, 16), (1, 18, 21), (3, 9, 12), (2, 12, 15)]  # weekday, from, to


def population(n: int, seed: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                               list[dict[str, Any]]]:
    """Profiles spread over the county's localities, their reach cells and their groups."""
    rng = random.Random(seed)
    places = [a for a in AreaIndex.load().localities() if a.lat is not None]
    profiles, reach, memberships = [], [], []
    for i in range(1, n + 1):
        area = rng.choice(places)
        assert area.lat is not None and area.lon is not None
        lat, lon = area.lat + rng.uniform(-0.02, 0.02), area.lon + rng.uniform(-0.03, 0.03)
        radius = rng.choices([3.0, 5.0, 10.0, 15.0, 25.0], [2, 3, 4, 2, 1])[0]
        level = rng.choices([0, 1, 2, 3], [5, 2, 1, 2])[0]
        checked = date(2024, 1, 1) + timedelta(days=rng.randint(0, 900)) if level else None
        skills = rng.sample(SKILLS, rng.randint(0, 3))
        profiles.append(dict(
            id=i, user_id=f"@v{i}:bench", skills=skills, skill_mask=skill_bits(skills),
            area_code=area.code, lat=lat, lon=lon, radius_km=radius,
            slots=parse_slots(rng.choice(SLOT_WORDS)), dbs_level=level,
            dbs_workforce="adult" if level == 3 else None, dbs_checked=checked,
            dbs_recheck=checked + timedelta(days=3 * 365) if checked else None,
            update_service=False, share=rng.random() < 0.8, paused=rng.random() < 0.05,
            paused_until=None, adult_confirmed_at=NOW, availability_confirmed_at=NOW,
            registered_at=NOW, updated_at=NOW,
            last_offered_at=NOW - timedelta(days=rng.randint(1, 60)) if rng.random() < 0.3
            else None,
        ))
        p = profiles[-1]
        mine = rng.sample(range(1, 51), rng.choice([0, 1, 1, 2]))
        memberships += [dict(volunteer_id=i, group_id=g) for g in mine]
        # As storage.volunteers._open_to_all: even-numbered groups share their volunteers.
        open_to_all = p["share"] and (not mine or any(g % 2 == 0 for g in mine))
        reach += [dict(cell=c, volunteer_id=i, open_to_all=open_to_all, **{
            k: p[k] for k in ("slots", "dbs_level", "dbs_recheck", "lat", "lon", "radius_km",
                              "paused", "paused_until", "skill_mask", "last_offered_at")})
                  for c in cells_within(lat, lon, radius)]
    return profiles, reach, memberships


def needs(k: int, seed: int = 2) -> list[Need]:
    rng = random.Random(seed)
    places = [a for a in AreaIndex.load().localities() if a.lat is not None]
    out = []
    for _ in range(k):
        area = rng.choice(places)
        assert area.lat is not None and area.lon is not None
        weekday, start, end = rng.choice(WINDOWS)
        day = date(2026, 12, 7) + timedelta(days=weekday)
        begins = datetime(day.year, day.month, day.day, start, tzinfo=LONDON)
        ends = datetime(day.year, day.month, day.day, end, tzinfo=LONDON)
        group = rng.randint(1, 50)
        out.append(Need(group_id=group, group_verified=group % 5 != 0, starts_at=begins,
                        slots=window_slots(begins, ends), lat=area.lat, lon=area.lon,
                        dbs_level=rng.choices([0, 1, 2, 3], [6, 1, 2, 1])[0],
                        skill_mask=skill_bits(rng.sample(SKILLS, rng.randint(0, 2)))))
    return out


async def load(db: Database, n: int) -> float:
    started = time.perf_counter()
    profiles, reach, memberships = population(n)
    async with db.transaction() as session:
        for g in range(1, 51):
            session.add(Group(id=g, name=f"Group {g}", type="charity", area_code="E04001668",
                              themes=[], size="small", registered_by="@b:bench",
                              registered_at=NOW, verified_at=NOW if g % 5 else None,
                              share_volunteers=g % 2 == 0))
        await session.flush()
        for table, rows in ((store.Volunteer, profiles), (store.VolunteerReach, reach),
                            (store.VolunteerGroup, memberships)):
            for i in range(0, len(rows), 5000):
                await session.execute(insert(table), rows[i:i + 5000])
    # What autovacuum does in production soon after a bulk load: statistics, and the
    # visibility map that lets PostgreSQL answer from the index alone.
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE"))
    print(f"  loaded {n} profiles, {len(reach)} reach cells, {len(memberships)} memberships "
          f"in {time.perf_counter() - started:.1f}s")
    return time.perf_counter() - started


def ranked_ids(found: list[Candidate], need: Need) -> list[str]:
    return [c.user_id for c in rank(found, need, NOW)[:LIMIT]]


async def timed(samples: list[float], work: Callable[[], Awaitable[list[str]]]) -> list[str]:
    started = time.perf_counter()
    result = await work()
    samples.append((time.perf_counter() - started) * 1000)
    return result


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(db: Database, requests: list[Need], scans: int) -> dict[str, list[float]]:
    indexed: list[float] = []
    scan: list[float] = []
    memory: list[float] = []
    async with db.transaction() as session:
        everyone = await store.all_candidates(session)
    for i, need in enumerate(requests):
        async with db.transaction() as session:
            async def fast(session: Any = session, need: Need = need) -> list[str]:
                return ranked_ids(await candidates(session, need, NOW, limit=LIMIT), need)

            got = await timed(indexed, fast)
        if i < scans:
            async with db.transaction() as session:
                async def slow(session: Any = session, need: Need = need) -> list[str]:
                    return ranked_ids(await store.all_candidates(session), need)

                expected = await timed(scan, slow)

            async def in_memory(need: Need = need) -> list[str]:
                return ranked_ids(everyone, need)

            assert await timed(memory, in_memory) == expected
            assert got == expected, f"indexed and full scan disagree on request {i}"
    return {"indexed": indexed, "scan": scan, "memory": memory}


async def pg_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    name = f"gv_bench_{uuid.uuid4().hex[:8]}"
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return PG_URL.rsplit("/", 1)[0] + f"/{name}", drop


async def run_engine(engine: str, n: int, requests: list[Need], scans: int,
                     scratch: Path) -> dict[str, Any]:
    drop: Callable[[], Awaitable[None]] | None = None
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
    else:
        url, drop = await pg_database()
    db = Database(url)
    try:
        await upgrade(db.engine)
        print(f"{engine}:")
        await load(db, n)
        result = await measure(db, requests, scans)
    finally:
        await db.close()
        if drop is not None:
            await drop()
    row = {"engine": engine}
    for kind, samples in result.items():
        row[f"{kind}_p50"] = statistics.median(samples)
        row[f"{kind}_p95"] = pct(samples, 0.95)
    print(f"  indexed p50 {row['indexed_p50']:.1f} ms p95 {row['indexed_p95']:.1f} ms; "
          f"full scan p50 {row['scan_p50']:.0f} ms p95 {row['scan_p95']:.0f} ms; "
          f"in-memory scan p50 {row['memory_p50']:.0f} ms p95 {row['memory_p95']:.0f} ms")
    return row


def table(rows: list[dict[str, Any]], n: int, k: int, scans: int) -> str:
    lines = [
        f"{n:,} profiles; {k} requests timed indexed, {scans} by full scan (ms):",
        "",
        "| engine | indexed p50 | indexed p95 | full scan p50 | full scan p95 | speed-up (p50) "
        "| in-memory scan p50 | in-memory scan p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['indexed_p50']:.1f} | {r['indexed_p95']:.1f} "
            f"| {r['scan_p50']:.0f} | {r['scan_p95']:.0f} "
            f"| {r['scan_p50'] / r['indexed_p50']:.0f}x "
            f"| {r['memory_p50']:.0f} | {r['memory_p95']:.0f} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    requests = needs(args.requests)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for engine in args.engines.split(","):
            rows.append(await run_engine(engine, args.profiles, requests, args.scans,
                                         Path(scratch)))
    print()
    print(table(rows, args.profiles, args.requests, args.scans))


if __name__ == "__main__":
    asyncio.run(main())
