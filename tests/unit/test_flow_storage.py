"""Flow records and erasure on both SQLite and PostgreSQL: replays write once, receipt counts
add up, retention and erasure remove what they should and keep what belongs to groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.features.privacy import export_everything, forget_everything
from storage import flow, outbox, roles
from storage.engine import Database
from storage.flow import FlowEvent, FlowRow
from storage.groups import Group
from storage.models import OutboxMessage, RoleGrant

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ANN, BOB = "@ann:x.org", "@bob:x.org"
ANN_KEY, BOB_KEY = flow.pseudonym(b"s", ANN), flow.pseudonym(b"s", BOB)


def row(event: str, room: str, key: str, days_ago: float = 0, kind: str = "message",
        notice: int | None = None) -> FlowRow:
    return FlowRow(event, room, key, NOW - timedelta(days=days_ago), kind, notice)


async def test_a_replayed_event_is_stored_once_and_receipt_counts_add_up(
    database: Database,
) -> None:
    async with database.transaction() as session:
        await flow.add_events(session, [row("$1", "!a", ANN_KEY), row("$2", "!a", BOB_KEY)])
        await flow.add_events(session, [row("$1", "!a", ANN_KEY), row("$3", "!b", ANN_KEY,
                                                                       kind="reaction")])
        await flow.add_receipts(session, {("!a", 1): 2, ("!b", 1): 1}, NOW)
        await flow.add_receipts(session, {("!a", 1): 3}, NOW)
    async with database.transaction() as session:
        assert [e.event_id for e in await flow.events(session)] == ["$1", "$2", "$3"]
        assert await flow.receipts(session, 1) == {"!a": 5, "!b": 1}
        assert sorted(await flow.memberships(session)) == sorted(
            [("!a", ANN_KEY), ("!a", BOB_KEY), ("!b", ANN_KEY)])
        assert await flow.room_activity(session) == {"!a": (2, 2), "!b": (0, 1)}


async def test_the_reach_model_reads_who_is_where_as_counts_per_pair_of_rooms(
    database: Database,
) -> None:
    """Ann talks in !a (twice) and !b, and forwards a notice in !b; Bob talks in !a and
    !b; Cy only in !c, where Bob reacts. The model gets each pair of rooms with the
    people active in both, and the rooms of whoever forwarded; a stats line counts a
    person in two of its rooms once."""
    cy = flow.pseudonym(b"s", "@cy:x.org")
    async with database.transaction() as session:
        await flow.add_events(session, [
            row("$1", "!a", ANN_KEY), row("$2", "!a", ANN_KEY), row("$3", "!b", ANN_KEY),
            row("$4", "!b", ANN_KEY, kind="forward", notice=1), row("$5", "!a", BOB_KEY),
            row("$6", "!b", BOB_KEY), row("$7", "!c", cy), row("$8", "!c", BOB_KEY,
                                                                kind="reaction")])
    async with database.transaction() as session:
        assert await flow.shared_members(session) == [("!a", "!b", 2), ("!a", "!c", 1),
                                                      ("!b", "!c", 1)]
        assert await flow.forwarders(session) == [("!a", ANN_KEY), ("!b", ANN_KEY)]
        assert await flow.people_in(session, ["!a", "!b"]) == 2
        assert await flow.people_in(session, ["!a", "!c"]) == 3
        assert await flow.people_in(session, []) == 0


async def test_opting_out_and_in_is_kept_by_pseudonym(database: Database) -> None:
    async with database.transaction() as session:
        assert await flow.opt_out(session, ANN_KEY, NOW)
        assert not await flow.opt_out(session, ANN_KEY, NOW)
        assert await flow.opted_out(session, [ANN_KEY, BOB_KEY]) == {ANN_KEY}
        assert await flow.opt_in(session, ANN_KEY)
        assert not await flow.opt_in(session, ANN_KEY)


async def test_retention_purges_old_records_and_counts(database: Database) -> None:
    async with database.transaction() as session:
        await flow.add_events(session, [row("$old", "!a", ANN_KEY, 200), row("$new", "!a",
                                                                             ANN_KEY, 10)])
        await flow.add_receipts(session, {("!a", 1): 4}, NOW - timedelta(days=200))
    async with database.transaction() as session:
        assert await flow.purge(session, NOW - timedelta(days=180)) == 2
        assert [e.event_id for e in await flow.events(session)] == ["$new"]


async def test_forgetting_removes_a_person_everywhere_and_leaves_the_groups_they_made(
    database: Database,
) -> None:
    async with database.transaction() as session:
        await flow.add_events(session, [row("$1", "!a", ANN_KEY), row("$2", "!a", BOB_KEY)])
        await roles.grant(session, ANN, "coordinator", "", BOB, NOW)
        session.add(Group(room_id="!a", name="Pantry", type="charity", area_code="E04001668",
                          themes=[], size="small", registered_by=ANN, registered_at=NOW))
        sent = await outbox.enqueue(session, now=NOW, to_user=ANN, body="your offer O3",
                                    dedupe_key=f"offer:O3:{outbox.person_key(ANN)}")
        assert sent is not None
        await outbox.mark_sent(session, sent.id, "$e", NOW, "!dm")
        await outbox.enqueue(session, now=NOW, to_user=ANN, body="a reminder")
    async with database.transaction() as session:
        before = await export_everything(session, ANN, ANN_KEY, NOW)
        assert [r["event_id"] for r in before["flow"]["message_flow"]["records"]] == ["$1"]
        # A sent DM is already blank (the outbox keeps no copy); the unsent one is still there.
        assert [m["body"] for m in before["personal"]["messages_to_you"]] == ["", "a reminder"]
        changed = await forget_everything(session, ANN, ANN_KEY, NOW)
        assert changed["flow"] == 1 and changed["personal"] >= 4
    async with database.transaction() as session:
        assert [e.event_id for e in await flow.events(session)] == ["$2"]
        assert list(await session.scalars(select(RoleGrant))) == []
        [group] = await session.scalars(select(Group))
        assert group.name == "Pantry" and group.registered_by != ANN
        [kept] = await session.scalars(select(OutboxMessage))
        assert kept.body == "" and kept.sent_at is not None  # still known as sent: no resend
        assert ANN not in (kept.to_user or "")
        assert outbox.person_key(ANN) not in (kept.dedupe_key or "")
        after = await export_everything(session, ANN, ANN_KEY, NOW)
        assert after["personal"]["messages_to_you"] == []
        assert after["flow"]["message_flow"]["records"] == []
        assert (await session.scalars(select(FlowEvent))).all()[0].sender_key == BOB_KEY
