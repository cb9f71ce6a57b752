"""APScheduler 3.x in the bot's event loop, with jobs derived from the database.

Jobs are rebuilt from data at start and whenever data changes (``refresh``),
so the database stays the only truth. A run missed while the bot was down is
made up once at start (never dropped, never repeated per missed slot): each
job's last run is stored, and if a fire time fell between it and now, the job
runs immediately. Work that is due per row (reminders, digests) should be a
periodic sweep over rows with a ``sent_at`` column: a sweep is naturally
catch-up-safe and idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from storage import jobs
from storage.engine import Database

log = logging.getLogger("grapevine.scheduler")


@dataclass(frozen=True)
class Job:
    id: str
    trigger: BaseTrigger
    run: Callable[[], Awaitable[None]]


JobProvider = Callable[[AsyncSession], Awaitable[list[Job]]]


class Scheduler:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self._static: dict[str, Job] = {}
        self._providers: list[JobProvider] = []
        self._aps = AsyncIOScheduler(
            timezone=tz,
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )

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

    async def start(self) -> None:
        wanted = await self.jobs()
        for job in wanted.values():
            await self.catch_up(job)
        self._install(wanted)
        self._aps.start()

    async def refresh(self) -> None:
        """Call after data that jobs derive from has changed."""
        self._install(await self.jobs())

    def _install(self, wanted: dict[str, Job]) -> None:
        for existing in self._aps.get_jobs():
            if existing.id not in wanted:
                existing.remove()
        for job in wanted.values():
            self._aps.add_job(self._runner(job), trigger=job.trigger, id=job.id,
                              replace_existing=True)

    def _runner(self, job: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.run(job)

        return run

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
        due: datetime | None = job.trigger.get_next_fire_time(None, last.astimezone(self.tz))
        if due is not None and due <= now:
            log.info("job %s missed a run at %s while down; running it now", job.id, due)
            await self.run(job)
            return True
        return False

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)
