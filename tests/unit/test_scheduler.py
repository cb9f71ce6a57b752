"""Scheduled jobs: a run missed while the bot was down happens once at start, not never."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import Job, Scheduler
from storage import jobs
from storage.engine import Database
from tests.clocks import ManualClock

LONDON = ZoneInfo("Europe/London")


async def test_a_daily_job_missed_while_down_runs_once_at_start(database: Database) -> None:
    clock = ManualClock(datetime(2026, 11, 20, 7, 0, tzinfo=UTC))
    runs: list[datetime] = []

    async def digest() -> None:
        runs.append(clock.now())

    job = Job("daily-digest", CronTrigger(hour=8, timezone=LONDON), digest)
    scheduler = Scheduler(database, clock, LONDON)
    assert not await scheduler.catch_up(job)  # first sight: nothing was missed
    # The bot is down for three days, across three 08:00 runs.
    clock.current += timedelta(days=3)
    assert await scheduler.catch_up(job)
    assert runs == [clock.now()]
    # Started again a minute later: the run was recorded, nothing more to make up.
    clock.current += timedelta(minutes=1)
    assert not await scheduler.catch_up(job)
    assert len(runs) == 1


async def test_a_failing_job_is_not_recorded_as_run(database: Database) -> None:
    clock = ManualClock()
    async with database.transaction() as session:
        await jobs.record_run(session, "sweep", clock.now() - timedelta(hours=2))

    async def broken() -> None:
        raise RuntimeError("feed down")

    scheduler = Scheduler(database, clock, LONDON)
    await scheduler.catch_up(Job("sweep", IntervalTrigger(minutes=30, timezone=LONDON), broken))
    async with database.transaction() as session:
        assert await jobs.last_run(session, "sweep") == clock.now() - timedelta(hours=2)


async def test_jobs_are_derived_from_the_database_and_refreshed(database: Database) -> None:
    clock = ManualClock()
    scheduler = Scheduler(database, clock, LONDON)
    wanted = {"poll-S1"}

    async def provider(session: object) -> list[Job]:
        async def noop() -> None:
            return None

        return [Job(i, IntervalTrigger(minutes=10, timezone=LONDON), noop) for i in wanted]

    scheduler.add_provider(provider)  # type: ignore[arg-type]
    await scheduler.start()
    try:
        assert scheduler.job_ids() == {"poll-S1"}
        wanted.clear()
        wanted.add("poll-S2")
        await scheduler.refresh()
        assert scheduler.job_ids() == {"poll-S2"}
    finally:
        scheduler.shutdown()


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def test_jobs_fire_by_the_bots_clock_not_the_wall(database: Database) -> None:
    # Years from any real run: a scheduler firing by the wall clock would never (or
    # always) think these due.
    clock = ManualClock(datetime(2031, 3, 30, 6, 59, tzinfo=UTC))  # 07:59 BST
    runs: dict[str, list[datetime]] = {"daily": [], "sweep": []}

    def recorder(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            runs[name].append(clock.now())

        return run

    scheduler = Scheduler(database, clock, LONDON)
    scheduler.add(Job("daily", CronTrigger(hour=8, timezone=LONDON), recorder("daily")))
    every_half_hour = IntervalTrigger(minutes=30, start_date=datetime(2020, 1, 1, tzinfo=UTC))
    scheduler.add(Job("sweep", every_half_hour, recorder("sweep")))
    await scheduler.start()
    try:
        await asyncio.sleep(0.2)
        assert runs == {"daily": [], "sweep": []}
        clock.advance(minutes=1)  # 08:00 in London, and on the half hour
        scheduler.wake()
        assert await _until(lambda: len(runs["daily"]) == len(runs["sweep"]) == 1
                            and scheduler.idle())
        clock.advance(minutes=29)
        scheduler.wake()
        await asyncio.sleep(0.2)
        assert len(runs["sweep"]) == 1  # 08:29: not yet
        clock.advance(minutes=1)
        scheduler.wake()
        assert await _until(lambda: len(runs["sweep"]) == 2 and scheduler.idle())
        clock.advance(hours=5)  # ten half hours missed: one run, coalesced
        scheduler.wake()
        assert await _until(lambda: len(runs["sweep"]) == 3)
        await asyncio.sleep(0.2)
        assert len(runs["sweep"]) == 3 and len(runs["daily"]) == 1
        assert scheduler.next_run("daily") == datetime(2031, 3, 31, 7, 0, tzinfo=UTC)
    finally:
        scheduler.shutdown()
        await scheduler.wait_stopped()


async def test_every_feature_job_is_scheduled_by_the_running_bot(
    database: Database, tmp_path: Path
) -> None:
    """A feature that declares ``jobs(app)`` but never adds them would silently never run
    (the volunteer sweep once did: offers never expired, reminders never went out)."""
    from bot.features import feature_modules
    from bot.service import assemble
    from bot.transport.world import World, WorldTransport
    from config.settings import load_settings

    clock = ManualClock()
    settings = load_settings(None, bot={"data_dir": str(tmp_path)})
    scheduler = Scheduler(database, clock, LONDON)
    transport = WorldTransport(World(), settings.matrix.user_id)
    app = assemble(settings, database, transport, clock=clock, scheduler=scheduler)
    declared = {
        job.id
        for name in feature_modules()
        if callable(getattr(import_module(name), "jobs", None))
        for job in import_module(name).jobs(app)
    }
    assert "volunteers:sweep" in declared
    assert declared <= set(await scheduler.jobs())
