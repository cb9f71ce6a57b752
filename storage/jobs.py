"""When scheduled jobs last ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import JobRun


async def last_run(session: AsyncSession, job_id: str) -> datetime | None:
    row = await session.get(JobRun, job_id)
    return row.last_run_at if row else None


async def record_run(session: AsyncSession, job_id: str, at: datetime) -> None:
    row = await session.get(JobRun, job_id)
    if row is None:
        session.add(JobRun(job_id=job_id, last_run_at=at))
    else:
        row.last_run_at = at
