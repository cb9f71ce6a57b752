"""Scheduled jobs: a run missed while the bot was down happens once at start, not never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import Job, Scheduler
from storage import jobs
from storage.engine import Database
from tests.botworld import ManualClock

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
        assert {j.id for j in scheduler._aps.get_jobs()} == {"poll-S1"}
        wanted.clear()
        wanted.add("poll-S2")
        await scheduler.refresh()
        assert {j.id for j in scheduler._aps.get_jobs()} == {"poll-S2"}
    finally:
        scheduler.shutdown()
