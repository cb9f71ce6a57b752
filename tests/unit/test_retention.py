"""Retention of the runtime's records, on both engines: sent messages lose their text and
recipient after ``outbox_body_days`` and go after ``outbox_keep_days``; handled-event
ids go once the sync position is past them (with a margin); the sweep is scheduled and
makes up a run missed while the bot was down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.features import retention
from bot.scheduler import Job, Scheduler
from config.settings import ConfigError, Settings, load_settings
from storage import outbox, personal, state
from storage.engine import Database
from storage.models import HandledEvent, OutboxMessage
from tests.clocks import ManualClock

ANN = "@ann:grapevine.local"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def queue_and_send(db: Database, at: datetime, *, dedupe_key: str | None = None,
                         to_user: str | None = ANN, body: str = "Your offer O3 for @ann") -> int:
    async with db.transaction() as session:
        row = await outbox.enqueue(session, now=at, to_user=to_user,
                                   room_id=None if to_user else "!group:x", body=body,
                                   html=f"<b>{body}</b>", dedupe_key=dedupe_key,
                                   extra={"m.mentions": {"user_ids": [ANN]}})
        assert row is not None
        await outbox.mark_sent(session, row.id, f"$sent{row.id}", at, "!dm:x")
        return row.id


async def rows(db: Database) -> dict[int, OutboxMessage]:
    async with db.transaction() as session:
        return {r.id: r for r in await session.scalars(select(OutboxMessage))}


async def test_sent_messages_lose_their_text_then_their_rows(database: Database) -> None:
    privacy = load_settings(None).privacy
    assert (privacy.outbox_body_days, privacy.outbox_keep_days) == (7, 30)
    old = await queue_and_send(database, T0, to_user=None)
    month_old_stub = await queue_and_send(database, T0, dedupe_key="volunteer:offer:3")
    week_old = await queue_and_send(database, T0 + 25 * DAY, to_user=None)
    fresh = await queue_and_send(database, T0 + 30 * DAY, to_user=None)
    async with database.transaction() as session:
        pending = await outbox.enqueue(session, now=T0, room_id="!group:x", body="still to go")
        assert pending is not None

    now = T0 + 33 * DAY
    swept = await retention.sweep(database, now, privacy)
    assert (swept.blanked, swept.deleted) == (3, 1)
    left = await rows(database)
    assert old not in left  # over 30 days: gone
    stub = left[month_old_stub]  # gone too, but its dedupe key must keep stopping a resend
    assert (stub.body, stub.html, stub.extra, stub.to_user) == ("", None, None, None)
    assert stub.dedupe_key == "volunteer:offer:3" and stub.event_id == f"$sent{month_old_stub}"
    assert (left[week_old].body, left[week_old].html, left[week_old].extra) == ("", None, None)
    assert left[fresh].body == "Your offer O3 for @ann" and left[fresh].extra is not None
    assert left[pending.id].body == "still to go"  # not sent yet: untouched
    async with database.transaction() as session:
        again = await outbox.enqueue(session, now=now, to_user=ANN, body="x",
                                     dedupe_key="volunteer:offer:3")
    assert again is None

    # The same sweep again (a catch-up, or two instants in one hour) changes nothing more.
    assert await retention.sweep(database, now, privacy) == retention.Swept(0, 0, 0)


async def test_the_stubs_kept_after_the_text_goes_name_nobody(database: Database) -> None:
    # A key outlives its message, so features name people in keys by digest; a key that
    # carries an id itself is refused when queued.
    async with database.transaction() as session:
        with pytest.raises(ValueError, match="names a person"):
            await outbox.enqueue(session, now=T0, to_user=ANN, body="x",
                                 dedupe_key=f"held:F1:{ANN}")
    key = f"held:F1:{outbox.person_key(ANN)}"
    stub = await queue_and_send(database, T0, dedupe_key=key)
    # A row queued before keys were digests, with the id in its key.
    old = await queue_and_send(database, T0, dedupe_key="stub-to-be")
    async with database.transaction() as session:
        legacy = await session.get(OutboxMessage, old)
        assert legacy is not None
        legacy.dedupe_key = f"offer:O3:{ANN}"

    privacy = load_settings(None).privacy
    await retention.sweep(database, T0 + 33 * DAY, privacy)
    left = await rows(database)
    assert sorted(left) == [stub, old]
    assert all("@" not in (r.dedupe_key or "") and (r.to_user, r.body) == (None, "")
               for r in left.values())
    async with database.transaction() as session:  # the digest still stops a resend
        assert await outbox.enqueue(session, now=T0 + 33 * DAY, to_user=ANN, body="x",
                                    dedupe_key=key) is None
        # ... until the person asks to be forgotten: then nothing ties the stub to them.
        await personal.forget_person(session, ANN)
    assert all(outbox.person_key(ANN) not in (r.dedupe_key or "")
               for r in (await rows(database)).values())


async def test_messages_given_up_on_expire_like_sent_ones(database: Database) -> None:
    async with database.transaction() as session:
        row = await outbox.enqueue(session, now=T0, to_user=ANN, body="DBS re-check due")
        assert row is not None
        await outbox.retry_later(session, row.id, "M_FORBIDDEN", T0, give_up=True)
    privacy = load_settings(None, privacy={"outbox_body_days": 1, "outbox_keep_days": 2}).privacy
    assert (await retention.sweep(database, T0 + DAY + timedelta(minutes=1), privacy)).blanked == 1
    [kept] = (await rows(database)).values()
    assert (kept.body, kept.to_user, kept.last_error) == ("", None, "M_FORBIDDEN")
    assert (await retention.sweep(database, T0 + 2 * DAY + timedelta(minutes=1), privacy)
            ).deleted == 1


async def test_handled_ids_go_once_the_sync_position_is_past_them(database: Database) -> None:
    async with database.transaction() as session:
        for n, at in enumerate((T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY)):
            await state.mark_handled(session, f"$e{n}", "!room:x", at)
    privacy = Settings().privacy
    # No position saved yet: any id may still come back, so none goes.
    assert (await retention.sweep(database, T0 + 100 * DAY, privacy)).handled == 0
    async with database.transaction() as session:
        await state.save_sync_position(session, "s42_7", T0 + 2 * DAY + timedelta(hours=12))
    # The position last moved on at day 2.5: a day's margin behind it keeps $e2, and $e3
    # came after it (a batch still being handled).
    assert (await retention.sweep(database, T0 + 100 * DAY, privacy)).handled == 2
    async with database.transaction() as session:
        left = set(await session.scalars(select(HandledEvent.event_id)))
        assert left == {"$e2", "$e3"}
        assert await state.get_value(session, state.SYNC_TOKEN_KEY) == "s42_7"


@dataclass
class SweepingApp:
    """What ``retention.install`` touches on the app."""

    db: Database
    clock: ManualClock
    scheduler: Scheduler
    settings: Settings = field(default_factory=Settings)

    def add_job(self, job: Job) -> None:
        self.scheduler.add(job)


async def test_a_sweep_missed_while_down_runs_at_start(database: Database) -> None:
    clock = ManualClock(T0)
    app = SweepingApp(database, clock, Scheduler(database, clock, ZoneInfo("Europe/London")))
    retention.install(app)  # type: ignore[arg-type]
    job = (await app.scheduler.jobs())["retention"]
    assert not await app.scheduler.catch_up(job)  # first start: its schedule begins now
    sent = await queue_and_send(database, T0)
    clock.current = T0 + 40 * DAY  # down for 40 days
    assert await app.scheduler.catch_up(job)
    assert sent not in await rows(database)


def test_rows_cannot_be_kept_for_less_time_than_their_text() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, privacy={"outbox_body_days": 10, "outbox_keep_days": 5,
                                     "retention_days": 0})
    assert sorted(caught.value.problems) == [
        "privacy.outbox_keep_days: must be at least outbox_body_days (10): "
        "a row keeps no text longer than the row itself",
        "privacy.retention_days: Input should be greater than or equal to 1",
    ]
