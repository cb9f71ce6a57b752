"""The funding tables on SQLite and PostgreSQL: a broadcast queued once, seeds filled when sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import funding, outbox
from storage.engine import Database

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


async def test_a_broadcast_is_queued_once_and_its_seeds_learn_their_events(
    database: Database,
) -> None:
    async with database.transaction() as session:
        notice = await funding.add_notice(
            session, title="T", funder="F", url="https://x.example", areas=[], themes=[],
            applicant_types=[], sizes=[], source="chat", status=funding.PUBLISHED,
            created_at=NOW, closes_at=NOW + timedelta(days=10),
        )
        posts = [(f"notice:F1:!r{i}", f"!r{i}", "body") for i in range(3)]
        queued = await funding.queue_posts(session, NOW, NOW, posts)
        assert queued == {key for key, _, _ in posts}
        await funding.record_deliveries(session, [
            {"notice_id": notice.id, "room_id": room, "via": "subscription", "dedupe_key": key,
             "room_key": f"k{room}", "reminders": True, "queued_at": NOW}
            for key, room, _ in posts
        ])
    async with database.transaction() as session:
        # Queued again (a retried approval, a second sweep): nothing new.
        assert await funding.queue_posts(session, NOW, NOW, posts) == set()
        due = await outbox.due(session, NOW)
        assert [row.room_id for row in due] == ["!r0", "!r1", "!r2"]
        assert all(row.own_post and row.kind == "notice" for row in due)
        await outbox.mark_sent(session, due[0].id, "$event0", NOW, "!r0")
    async with database.transaction() as session:
        assert await funding.fill_sent(session) == 1
        seeds = {d.room_id: (d.event_id, d.sent_at) for d in
                 await funding.deliveries(session, notice.id)}
        assert seeds == {"!r0": ("$event0", NOW), "!r1": (None, None), "!r2": (None, None)}
        candidates = await funding.reminder_candidates(session, NOW)
        assert sorted(d.room_id for _, d in candidates) == ["!r0", "!r1", "!r2"]
