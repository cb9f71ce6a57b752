"""Retention for the runtime's own records: the outbox, handled-event ids, unreadable ones.

Sent messages are kept only as long as they are useful: their text, files and
recipient go after ``privacy.outbox_body_days`` (a reply can name people, a
direct message can carry a profile), the row after ``privacy.outbox_keep_days``.
Handled-event ids are needed only while the sync position could hand the same
event over again; past it (with a margin) they go. Unreadable messages waiting
for their key (and the marks of who was told) go within a day
(storage.undecryptable.KEEP): a key that late is not coming. The sweep works from
timestamps in the rows, so running it late, twice or after a long outage
does the same thing as running it on time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import Job
from config.settings import PrivacySettings
from storage import outbox, state, undecryptable
from storage.engine import Database

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(hours=1)
# Hourly on the hour from a fixed start, so whether a run was missed is a question about
# the bot's clock and the last run, not about when the trigger object was made.
SWEEP_FROM = datetime(2020, 1, 1, tzinfo=UTC)
# How far behind the saved sync position a handled-event id is kept all the same.
HANDLED_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Swept:
    blanked: int
    deleted: int
    handled: int
    unreadable: int = 0


async def sweep(db: Database, now: datetime, privacy: PrivacySettings) -> Swept:
    """One pass of retention over the outbox, the handled-event ids and unreadable ones."""
    async with db.transaction() as session:
        blanked, deleted = await outbox.expire(
            session,
            blank_before=now - timedelta(days=privacy.outbox_body_days),
            delete_before=now - timedelta(days=privacy.outbox_keep_days),
        )
        handled = await state.prune_handled(session, HANDLED_MARGIN)
        unreadable = await undecryptable.expire(session, now - undecryptable.KEEP)
    swept = Swept(blanked, deleted, handled, unreadable)
    if blanked or deleted:
        await db.checkpoint_wal()
        log.info("retention: %d sent messages emptied, %d removed, %d handled ids pruned",
                 blanked, deleted, handled)
    return swept


def install(app: Host) -> None:
    async def run() -> None:
        await sweep(app.db, app.clock.now(), app.settings.privacy)

    trigger = IntervalTrigger(seconds=SWEEP_EVERY.total_seconds(), start_date=SWEEP_FROM)
    app.add_job(Job("retention", trigger, run))
