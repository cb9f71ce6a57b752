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
        posts = [{"dedupe_key": f"notice:F1:!r{i}", "room_id": f"!r{i}", "body": "body"}
                 for i in range(3)]
        queued = await funding.queue_posts(session, NOW, posts)
        assert queued == {post["dedupe_key"] for post in posts}
        await funding.record_deliveries(session, [
            {"notice_id": notice.id, "room_id": post["room_id"], "via": "subscription",
             "dedupe_key": post["dedupe_key"], "room_key": "k", "reminders": True,
             "queued_at": NOW}
            for post in posts
        ])
    async with database.transaction() as session:
        # Queued again (a retried approval, a second sweep): nothing new.
        assert await funding.queue_posts(session, NOW, posts) == set()
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
