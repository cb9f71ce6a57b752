"""The mediation sweeps: action reminders in the case room (by day only), deleting the
notes of long-closed cases, and making case rooms still waiting. Each is idempotent and
safe to run late or twice.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.features import agreement
from bot.features.case_rooms import provision_rooms
from bot.scheduler import Job
from storage import mediation as cases
from storage import outbox

if TYPE_CHECKING:
    from bot.host import Host

REMIND_FROM = time(9, 0)


async def remind(app: Host, now: datetime) -> int:
    """Post due and overdue reminders for actions; each at most once, whenever it runs.

    Only in the day (from REMIND_FROM local time): a sweep just after midnight, or
    one catching up early in the morning, leaves them for the first sweep after it.
    """
    local = now.astimezone(app.settings.bot.tz)
    if local.time() < REMIND_FROM:
        return 0
    today = local.date()
    prefix = app.settings.bot.prefix
    posted = 0
    async with app.db.transaction() as session:
        for row, case in await cases.open_actions(session):
            if case.room_id is None:
                continue
            day = agreement.day(row.due, app.settings.bot.tz)
            if today > row.due and row.overdue_reminded_at is None:
                body = (f"{row.ref} ({case.ref}) for {row.owner} was due on {day} and isn't "
                        f"marked done: {row.text}. Done? {prefix}mediation done {row.ref}")
                key, row.overdue_reminded_at = "overdue", now
                row.reminded_at = row.reminded_at or now
            elif row.due - timedelta(days=1) <= today <= row.due and row.reminded_at is None:
                when = "today" if today == row.due else "tomorrow"
                body = (f"Reminder: {row.ref} ({case.ref}) for {row.owner} is due {when}: "
                        f"{row.text}. Done? {prefix}mediation done {row.ref}")
                key, row.reminded_at = "due", now
            else:
                continue
            queued = await outbox.enqueue(
                session, now=now, room_id=case.room_id, kind="reminder", body=body,
                extra={"m.mentions": {"user_ids": [row.owner]}},
                dedupe_key=f"mediation:action:{row.id}:{key}",
            )
            posted += queued is not None
    if posted:
        app.queued()
    return posted


async def purge_notes(app: Host, now: datetime) -> int:
    """Delete notes of cases closed more than ``notes_retention_days`` ago."""
    days = app.settings.privacy.notes_retention_days
    async with app.db.transaction() as session:
        return await cases.purge_notes(session, now - timedelta(days=days), now)


def jobs(app: Host) -> list[Job]:
    """The sweeps for the scheduler: each is idempotent and safe to run late or twice."""
    tz = app.settings.bot.tz

    async def reminders() -> None:
        await remind(app, app.clock.now())

    async def retention() -> None:
        await purge_notes(app, app.clock.now())

    async def rooms() -> None:
        await provision_rooms(app)

    return [
        Job("mediation-reminders", IntervalTrigger(minutes=30, timezone=tz), reminders),
        Job("mediation-notes-retention", CronTrigger(hour=3, minute=20, timezone=tz), retention),
        # Every minute: pending invites are retried at the minute the coordinator was told
        # (a cheap query when nothing is due).
        Job("mediation-rooms", IntervalTrigger(minutes=1, timezone=tz), rooms),
    ]
