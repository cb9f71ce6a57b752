"""Jobs derived from the database, fired by the bot's own clock.

Jobs are rebuilt from data at start and whenever data changes (``refresh``),
so the database stays the only truth. A run missed while the bot was down is
made up once at start (never dropped, never repeated per missed slot): each
job's last run is stored, and if a fire time fell between it and now, the job
runs immediately. Work that is due per row (reminders, digests) should be a
periodic sweep over rows with a ``sent_at`` column: a sweep is naturally
catch-up-safe and idempotent.

Jobs are declared with APScheduler's triggers (``IntervalTrigger``,
``CronTrigger``), but fired here, by the injected clock: APScheduler's own
scheduler reads the wall clock (and an ``IntervalTrigger`` anchors itself to
the wall clock when it is made), so a bot whose clock was moved would fire its
jobs at the wrong times. Several missed fire times become one run (coalesced),
and a job never runs twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.runtime.backoff import sleep_unless
from storage import jobs
from storage.engine import Database

log = logging.getLogger("grapevine.scheduler")

# The longest the loop sleeps before looking at the clock again, so a clock that was
# moved (by a test, or an NTP step) is noticed within this many seconds.
MAX_SLEEP = 30.0
NEVER = datetime.max.replace(tzinfo=UTC)  # a trigger with no fire time left


@dataclass(frozen=True)
class Job:
    id: str
    trigger: BaseTrigger
    run: Callable[[], Awaitable[None]]


JobProvider = Callable[[AsyncSession], Awaitable[list[Job]]]


def next_fire(trigger: BaseTrigger, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first fire time strictly after ``after``, read from the trigger's own rules.

    An interval keeps the phase of its ``start_date`` (``start_date=`` fixed in the past
    gives runs on the hour, whatever the clock says), computed here for any ``after``:
    APScheduler's own answer is "start_date" for every moment before it, and its default
    start_date is the wall-clock moment the trigger was made, so a bot whose clock is
    behind the wall would never see an interval job due.
    """
    if isinstance(trigger, IntervalTrigger):
        step: timedelta = trigger.interval
        return trigger.start_date + ((after - trigger.start_date) // step + 1) * step
    local = after.astimezone(tz)
    fire: datetime | None = trigger.get_next_fire_time(None, local + timedelta(microseconds=1))
    return fire


class Scheduler:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self._static: dict[str, Job] = {}
        self._providers: list[JobProvider] = []
        self._jobs: dict[str, Job] = {}
        self._due: dict[str, datetime] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping: list[asyncio.Task[None]] = []

    def add(self, job: Job) -> None:
        """A job that always exists (retention purge, digests, feed polling)."""
        self._static[job.id] = job

    def add_provider(self, provider: JobProvider) -> None:
        """A function that derives jobs from the database."""
        self._providers.append(provider)

    async def jobs(self) -> dict[str, Job]:
        wanted = dict(self._static)
        async with self.db.transaction() as session:
            for provider in self._providers:
                for job in await provider(session):
                    wanted[job.id] = job
        return wanted

    def job_ids(self) -> set[str]:
        """The jobs installed now."""
        return set(self._jobs)

    def idle(self) -> bool:
        """No job is running now."""
        return all(task.done() for task in self._running.values())

    def next_run(self, job_id: str) -> datetime | None:
        return self._due.get(job_id)

    async def start(self) -> None:
        wanted = await self.jobs()
        for job in wanted.values():
            await self.catch_up(job)
        self._install(wanted)
        self._stop.clear()
        self._loop = asyncio.create_task(self._run(), name="scheduler")

    async def refresh(self) -> None:
        """Call after data that jobs derive from has changed."""
        self._install(await self.jobs())

    def wake(self) -> None:
        """Look at the clock again now (after it was moved)."""
        self._wake.set()

    def _install(self, wanted: dict[str, Job]) -> None:
        now = self.clock.now()
        for job_id in set(self._jobs) - set(wanted):
            del self._jobs[job_id]
            self._due.pop(job_id, None)
        for job in wanted.values():
            known = self._jobs.get(job.id)
            self._jobs[job.id] = job
            if known is None or known.trigger is not job.trigger:
                self._due[job.id] = self._next(job, now)
                log.debug("job %s next runs at %s", job.id, self._due[job.id])
        self._wake.set()

    def _next(self, job: Job, now: datetime) -> datetime:
        return next_fire(job.trigger, now, self.tz) or NEVER

    async def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            now = self.clock.now()
            for job_id, due in sorted(self._due.items(), key=lambda item: item[1]):
                if due > now:
                    continue
                # Coalesced: however many fire times passed, one run, then the next after now.
                self._due[job_id] = self._next(self._jobs[job_id], now)
                running = self._running.get(job_id)
                if running is not None and not running.done():
                    log.info("job %s still running: skipping this run", job_id)
                    continue
                self._running[job_id] = asyncio.create_task(self.run(self._jobs[job_id]),
                                                            name=f"job:{job_id}")
            soonest = min(self._due.values(), default=None)
            wait = MAX_SLEEP if soonest is None else (soonest - now).total_seconds()
            await sleep_unless(self._wake, min(MAX_SLEEP, max(0.0, wait)))

    async def run(self, job: Job) -> None:
        started = self.clock.now()
        try:
            await job.run()
        except Exception:
            log.exception("scheduled job %s failed", job.id)
            return
        async with self.db.transaction() as session:
            await jobs.record_run(session, job.id, started)

    async def catch_up(self, job: Job) -> bool:
        """Run ``job`` once now if a fire time passed while the bot was down."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            last = await jobs.last_run(session, job.id)
            if last is None:
                # A new job: nothing was missed; its schedule starts now.
                await jobs.record_run(session, job.id, now)
                return False
        due = next_fire(job.trigger, last, self.tz)
        if due is not None and due <= now:
            log.info("job %s missed a run at %s while down; running it now", job.id, due)
            await self.run(job)
            return True
        return False

    def shutdown(self) -> None:
        """Stop firing; runs under way are cancelled (each is one sweep, safe to redo)."""
        self._stop.set()
        self._wake.set()
        self._stopping = [t for t in (self._loop, *self._running.values()) if t is not None]
        for task in self._stopping:
            task.cancel()
        self._loop = None
        self._running.clear()

    async def wait_stopped(self) -> None:
        """After ``shutdown()``: until the cancelled runs have finished unwinding."""
        for task in self._stopping:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._stopping = []
