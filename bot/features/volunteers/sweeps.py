"""The pool's sweeps: expiring offers and topping requests up, shift and DBS re-check
reminders, availability nudges, waitlist promotions. Each reminder is keyed by an
outbox dedupe key, so a sweep run twice or late sends it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.when import describe_date
from bot.features import availability
from bot.features.volunteers.common import NUDGE_AFTER, RECHECK_REMINDER_DAYS, queue_dm, when_of
from bot.features.volunteers.places import make_offers, tell_promoted
from bot.host import Host
from bot.scheduler import Job
from storage import groups
from storage import volunteers as store


async def expire_and_top_up(app: Host, session: AsyncSession, now: datetime) -> int:
    """Lapsed offers close, and each request that lost one is offered to the next person."""
    expired = await store.expire_offers(session, now)
    sent = 0
    for request_id in sorted({o.request_id for o in expired}):
        req = await store.request(session, request_id)
        if req is None or req.status != store.OPEN or req.starts_at <= now:
            continue
        group = await groups.by_id(session, req.group_id)
        f = await store.fill(session, req.id)
        if group is None or f.accepted >= req.count:
            continue
        lost = sum(1 for o in expired if o.request_id == request_id)
        sent += await make_offers(app, session, req, group, now, lost)
    return sent


async def shift_reminders(app: Host, session: AsyncSession, now: datetime) -> int:
    sent = 0
    for o, req in await store.accepted_starting(session, now, now + timedelta(hours=24)):
        group = await groups.by_id(session, req.group_id)
        sent += await queue_dm(
            app, session, now, o.user_id,
            f"Reminder: {req.role} for {group.name if group else 'your group'}, "
            f"{when_of(app, req)}, {app.areas.label(req.area_code)} ({o.ref}). Can't make it? "
            f"{app.settings.bot.prefix}volunteer decline {o.ref} so someone else can.",
            dedupe_key=f"volunteer:shift:{o.id}",
        )
    return sent


async def dbs_reminders(app: Host, session: AsyncSession, now: datetime) -> int:
    """60, 30 and 7 days before the re-check; after downtime only the latest one due is sent."""
    today = now.astimezone(app.settings.bot.tz).date()
    sent = 0
    last = today + timedelta(days=max(RECHECK_REMINDER_DAYS))
    for v in await store.rechecks_between(session, today + timedelta(days=1), last):
        assert v.dbs_recheck is not None
        days = (v.dbs_recheck - today).days
        mark = min(d for d in RECHECK_REMINDER_DAYS if days <= d)
        sent += await queue_dm(
            app, session, now, v.user_id,
            f"Your DBS re-check is due on {describe_date(v.dbs_recheck)} ({days} days). Once "
            f"renewed, {app.settings.bot.prefix}volunteer set dbs_checked=<date> keeps offers "
            "that need it coming.",
            dedupe_key=f"volunteer:dbs:{v.id}:{v.dbs_recheck.isoformat()}:{mark}",
        )
    return sent


async def availability_nudges(app: Host, session: AsyncSession, now: datetime) -> int:
    sent = 0
    for v in await store.unconfirmed_since(session, now - NUDGE_AFTER):
        times = availability.describe(v.slots)
        sent += await queue_dm(
            app, session, now, v.user_id,
            f"Are you still free {times}? Confirm with {app.settings.bot.prefix}volunteer set "
            f"availability={times.replace(', ', ',')}, change it, or "
            f"{app.settings.bot.prefix}volunteer pause for a break.",
            dedupe_key=f"volunteer:nudge:{v.id}:{v.availability_confirmed_at.date().isoformat()}",
        )
    return sent


async def promotions(app: Host, session: AsyncSession, now: datetime) -> int:
    """Tell anyone moved up from a waitlist whose news is not yet queued (e.g. after a forget)."""
    sent = 0
    for o, req in await store.promoted_untold(session, now - timedelta(days=7)):
        sent += await tell_promoted(app, session, now, o, req)
    return sent


async def sweep(app: Host, session: AsyncSession, now: datetime) -> int:
    """Everything due by ``now``: safe to run late, twice, or after downtime. DMs queued."""
    total = 0
    for step in (expire_and_top_up, shift_reminders, dbs_reminders, availability_nudges,
                 promotions):
        total += await step(app, session, now)
    return total


def jobs(app: Host) -> list[Job]:
    """The volunteer sweep, every 15 minutes (the lead registers it with the scheduler)."""

    async def run() -> None:
        async with app.db.transaction() as session:
            await sweep(app, session, app.clock.now())
        app.queued()

    return [Job("volunteers:sweep", IntervalTrigger(minutes=15), run)]
