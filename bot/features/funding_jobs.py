"""The funding feature's scheduled sweeps: reminders, digests, feeds, seeds learning their events.

Each sweep looks at rows, not at missed fire times, so a run after downtime
catches up once and a second run does nothing (the scheduler's contract).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import voice
from bot.features import funding_feeds
from bot.features import funding_targeting as targeting
from bot.features.funding_delivery import closes_label, link_for, link_secret, notify_held
from bot.scheduler import Job
from storage import funding
from storage.funding import FundingDelivery, FundingNotice

if TYPE_CHECKING:
    from bot.host import Host

SWEEP_EVERY = timedelta(minutes=5)


async def send_reminders(app: Host, now: datetime) -> int:
    tz = app.settings.bot.tz
    queued = 0
    async with app.db.transaction() as session:
        await funding.expire(session, now)
        for notice, delivery in await funding.reminder_candidates(session, now):
            assert notice.closes_at is not None
            done = await funding.reminders_sent(session, notice.id, delivery.room_id)
            due = targeting.reminders_due(notice.closes_at, now, tz, done,
                                          since=delivery.queued_at)
            for days in due:
                left = "tomorrow" if days == 1 else f"in {days} days"
                body = (f"Reminder: funding {notice.ref} {notice.title} closes {left} "
                        f"({closes_label(app, notice).removeprefix('closes ')}).\n"
                        f"{link_for(app, notice, delivery.room_id)}")
                await voice.enqueue_own_post(
                    session, now=now, tz=tz, room_id=delivery.room_id, body=body,
                    kind="reminder", dedupe_key=f"reminder:{notice.ref}:{days}d:{delivery.room_id}",
                )
                await funding.record_reminder(session, notice.id, delivery.room_id, days, now)
                queued += 1
    if queued:
        app.queued()
    return queued


async def send_digests(app: Host, now: datetime) -> int:
    """One message per room and digest slot that has come, listing the notices still open."""
    tz = app.settings.bot.tz
    secret = link_secret(app)
    sent = 0
    async with app.db.transaction() as session:
        batches: dict[tuple[str, datetime], list[tuple[funding.FundingDigestEntry,
                                                       FundingNotice]]] = defaultdict(list)
        for entry, notice in await funding.pending_digest(session, ("daily", "weekly")):
            slot = targeting.digest_slot(entry.cadence, entry.queued_at, tz)
            if slot <= now and entry.room_id:
                batches[(entry.room_id, slot)].append((entry, notice))
        for (room_id, slot), rows in batches.items():
            live = [n for _, n in rows if n.status == funding.PUBLISHED
                    and (n.closes_at is None or n.closes_at > now)]
            key = f"digest:{room_id}:{slot:%Y%m%d}"
            if live:
                lines = [f"Funding digest: {len(live)} new notices"]
                lines += [f"{n.ref} {n.title} ({n.funder}), {closes_label(app, n)}: "
                          f"{link_for(app, n, room_id)}" for n in live[:10]]
                if len(live) > 10:
                    lines.append(f"... and {len(live) - 10} more: {app.settings.bot.prefix}"
                                 "funding list")
                await voice.enqueue_own_post(session, now=now, tz=tz, room_id=room_id,
                                             kind="digest", body="\n".join(lines),
                                             dedupe_key=key)
                sent += 1
            done = await _rooms_done(session, [n.id for n in live], room_id)
            for n in live:
                if n.id not in done:
                    await funding.record_delivery(
                        session, notice_id=n.id, room_id=room_id, via="digest", dedupe_key=key,
                        room_key=targeting.room_key(secret, room_id), reminders=True,
                        queued_at=now, opens=0,
                    )
            for entry, _ in rows:
                entry.sent_at = now
    if sent:
        app.queued()
    return sent


async def _rooms_done(session: AsyncSession, notice_ids: list[int], room_id: str) -> set[int]:
    if not notice_ids:
        return set()
    return set(await session.scalars(
        select(FundingDelivery.notice_id).where(
            FundingDelivery.room_id == room_id, FundingDelivery.notice_id.in_(notice_ids))
    ))


async def poll_feeds(app: Host, now: datetime) -> int:
    """Poll due feeds; tell approvers of the new held items, one message each for the
    whole poll. Returns how many were held."""
    found = await funding_feeds.poll_due(app.db, now, app.settings.bot.tz)
    new_ids = sorted(i for ids in found.values() for i in ids)
    if new_ids:
        async with app.db.transaction() as session:
            held = [n for n in [await funding.notice(session, i) for i in new_ids] if n is not None]
            await notify_held(app, session, held, now)
    return len(new_ids)


async def sweep(app: Host) -> None:
    now = app.clock.now()
    await send_reminders(app, now)
    await send_digests(app, now)
    async with app.db.transaction() as session:
        await funding.fill_sent(session)


def jobs(app: Host) -> list[Job]:
    async def run_sweep() -> None:
        await sweep(app)

    async def run_feeds() -> None:
        await poll_feeds(app, app.clock.now())

    every = IntervalTrigger(seconds=SWEEP_EVERY.total_seconds())
    return [Job("funding-sweep", every, run_sweep), Job("funding-feeds", every, run_feeds)]
