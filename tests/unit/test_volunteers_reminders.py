"""Reminders and expiry as sweeps over the clock: each is sent once, late runs catch up
without repeats, and nothing reaches anyone between 21:00 and 08:00."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.features.volunteers import jobs, sweep
from storage import volunteers as store
from tests.unit.test_volunteers import SHIFT, Pool, pool  # noqa: F401


async def run_sweep(p: Pool) -> int:
    async with p.bw.app.db.transaction() as session:
        queued = await sweep(p.bw.app, session, p.bw.clock.now())
    await p.bw.deliver()
    return queued


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def test_a_shift_reminder_goes_once_a_day_before(pool: Pool) -> None:  # noqa: F811
    ann = await pool.register("ann")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    await pool.dm(ann, "!volunteer accept O1")
    pool.bw.clock.current = at(2026, 12, 4, 9)  # 25 hours before
    assert await run_sweep(pool) == 0
    pool.bw.clock.current = at(2026, 12, 4, 11)
    assert await run_sweep(pool) == 1
    assert pool.bw.dms(ann)[-1].startswith("Reminder: Driver for Wisbech Food Bank, "
                                           "Sat 5 Dec 2026 10:00-13:00")
    pool.bw.clock.advance(minutes=15)
    assert await run_sweep(pool) == 0


async def test_nothing_is_sent_at_night_it_waits_for_eight(pool: Pool) -> None:  # noqa: F811
    ann = await pool.register("ann")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    await pool.dm(ann, "!volunteer accept O1")
    before = len(pool.bw.dms(ann))
    pool.bw.clock.current = at(2026, 12, 4, 22, 30)  # the bot was down all day
    assert await run_sweep(pool) == 1
    assert len(pool.bw.dms(ann)) == before
    pool.bw.clock.current = at(2026, 12, 5, 7, 59)
    await pool.bw.deliver()
    assert len(pool.bw.dms(ann)) == before
    pool.bw.clock.current = at(2026, 12, 5, 8)
    await pool.bw.deliver()
    assert pool.bw.dms(ann)[-1].startswith("Reminder: Driver")


async def test_an_offer_made_at_night_arrives_at_eight_and_lasts_a_day_from_then(
    pool: Pool,  # noqa: F811
) -> None:
    ann = await pool.register("ann")
    pool.bw.clock.current = at(2026, 11, 20, 23)
    [reply] = await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    assert "Offered to 1 volunteers" in reply
    assert not pool.offers_to(ann)
    pool.bw.clock.current = at(2026, 11, 21, 8)
    await pool.bw.deliver()
    assert "by Sun 22 Nov 2026 08:00" in pool.bw.dms(ann)[-1]


async def test_dbs_recheck_reminders_at_60_30_7_days_and_only_the_latest_after_downtime(
    pool: Pool,  # noqa: F811
) -> None:
    ann = await pool.register("ann", "dbs=basic dbs_checked=2024-01-21")  # re-check 2027-01-21
    assert await run_sweep(pool) == 0  # 62 days to go
    pool.bw.clock.current = at(2026, 11, 22, 10)
    assert await run_sweep(pool) == 1
    assert pool.bw.dms(ann)[-1].startswith("Your DBS re-check is due on Thu 21 Jan 2027 (60 days)")
    assert await run_sweep(pool) == 0
    pool.bw.clock.current = at(2026, 12, 22, 10)
    assert await run_sweep(pool) == 1
    assert "(30 days)" in pool.bw.dms(ann)[-1]
    pool.bw.clock.current = at(2027, 1, 16, 10)  # down past the 7-day mark: one reminder, not two
    assert await run_sweep(pool) == 1
    assert "(5 days)" in pool.bw.dms(ann)[-1]


async def test_availability_unconfirmed_for_90_days_gets_one_nudge(pool: Pool) -> None:  # noqa: F811
    ann = await pool.register("ann", "availability=weekends,weekday-evenings")
    pool.bw.clock.advance(days=89)
    assert await run_sweep(pool) == 0
    pool.bw.clock.advance(days=2)
    assert await run_sweep(pool) == 1
    nudge = pool.bw.dms(ann)[-1]
    assert nudge.startswith("Are you still free weekends, weekday-evenings?")
    assert "!volunteer set availability=weekends,weekday-evenings" in nudge
    assert await run_sweep(pool) == 0
    await pool.dm(ann, "!volunteer set availability=weekends,weekday-evenings")
    pool.bw.clock.advance(days=30)
    assert await run_sweep(pool) == 0


async def test_expired_offers_close_and_go_to_the_next_people(pool: Pool) -> None:  # noqa: F811
    people = [await pool.register(f"p{i}") for i in range(5)]
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    first = [u for u in people if pool.offers_to(u)]
    assert len(first) == 3
    pool.bw.clock.advance(hours=25)
    assert await run_sweep(pool) == 2
    assert all(pool.offers_to(u) for u in people)
    [late] = await pool.dm(first[0], f"!volunteer accept {pool.offers_to(first[0])[0]}")
    assert late.startswith("O") and "has expired; !volunteer take V1 still works" in late


async def test_the_sweep_is_one_scheduled_job(pool: Pool) -> None:  # noqa: F811
    [job] = jobs(pool.bw.app)
    assert job.id == "volunteers:sweep"
    await pool.register("ann")
    pool.bw.clock.advance(days=91)
    await job.run()
    await pool.bw.deliver()
    assert pool.bw.dms("@ann:grapevine.local")[-1].startswith("Are you still free weekends?")


async def test_someone_moved_up_when_another_is_forgotten_is_told_by_the_sweep(
    pool: Pool,  # noqa: F811
) -> None:
    ann, bo = await pool.register("ann"), await pool.register("bo")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    await pool.dm(ann, f"!volunteer accept {pool.offers_to(ann)[0]}")
    await pool.dm(bo, f"!volunteer accept {pool.offers_to(bo)[0]}")
    async with pool.bw.app.db.transaction() as session:
        await store.forget_person(session, ann, now=pool.bw.clock.now())
    assert await run_sweep(pool) == 1
    assert pool.bw.dms(bo)[-1].startswith("A place freed up: you're in for V1")
    assert await run_sweep(pool) == 0
