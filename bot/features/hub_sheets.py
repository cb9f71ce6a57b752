"""The printed notice sheet for community hubs: each hub gets its locality's open funding.

A hub is where people without chat hear of things, so the sheet a parish clerk
prints (``!funding sheet``) goes to every hub too: by DM to its contact when the
contact is a Matrix id, weekly (Monday morning) and when the hub is listed; and
attached to ``!venue show`` for anyone to print (an email or phone contact is
told to ask there). The DM is deduplicated per hub per week, so a restart or a
re-run never sends one twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler import Job
from bridges.sheet import area_sheet
from storage import outbox, venues
from storage.outbox import Attachment
from storage.venues import Venue

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger(__name__)

SEND_HOUR, SEND_MINUTE = 8, 15
WEEKDAY = "mon"


async def sheet_attachment(app: Host, session: AsyncSession, venue: Venue,
                           now: datetime) -> tuple[Attachment, int]:
    """The hub's locality sheet as a PDF attachment, and how many notices it lists."""
    sheet = await area_sheet(session, app.areas, venue.area_code, now, app.settings.bot.tz)
    return Attachment(sheet.file_name, "application/pdf", sheet.data), sheet.count


def week_of(now: datetime, app: Host) -> str:
    year, week, _ = now.astimezone(app.settings.bot.tz).isocalendar()
    return f"{year}-W{week:02d}"


async def queue_sheet(app: Host, session: AsyncSession, venue: Venue, now: datetime) -> bool:
    """DM this week's sheet to the hub's contact (a Matrix id); False if not sent now."""
    if not venue.hub or venue.contact is None or not venue.contact.startswith("@"):
        return False
    attachment, count = await sheet_attachment(app, session, venue, now)
    label = app.areas.label(venue.area_code) if venue.area_code in app.areas else venue.area_code
    body = (f"This week's funding notice sheet for {label}, for {venue.ref} {venue.name} to "
            f"print and pin up: {count} open notice{'s' if count != 1 else ''}.")
    row = await outbox.enqueue(session, now=now, to_user=venue.contact, kind="dm", body=body,
                               attachment=attachment,
                               dedupe_key=f"hub-sheet:{venue.ref}:{week_of(now, app)}")
    return row is not None


async def send_weekly(app: Host) -> int:
    """Every hub with a Matrix contact gets this week's sheet; returns how many were queued."""
    now = app.clock.now()
    sent = 0
    async with app.db.transaction() as session:
        for venue in await venues.hubs(session):
            sent += await queue_sheet(app, session, venue, now)
    if sent:
        log.info("notice sheets queued for %d community hubs", sent)
        app.queued()
    return sent


def jobs(app: Host) -> list[Job]:
    async def weekly() -> None:
        await send_weekly(app)

    trigger = CronTrigger(day_of_week=WEEKDAY, hour=SEND_HOUR, minute=SEND_MINUTE,
                          timezone=app.settings.bot.tz)
    return [Job("hub-sheets", trigger, weekly)]


def install(app: Host) -> None:
    for job in jobs(app):
        app.add_job(job)
