"""The mediation record on both databases: sealed notes, retention, export and forget."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.features import sealing
from storage import collab
from storage import mediation as cases
from storage.engine import Database

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
KEY = SecretStr(Fernet.generate_key().decode())
MIA, ANN, YAN = "@mia:example.org", "@ann:example.org", "@yan:example.org"


async def a_case(db: Database) -> int:
    """M1 between G1 and G2: a norm both confirmed, an action, a session and a note."""
    async with db.transaction() as session:
        case = await cases.open_case(session, title="Shared hall", mediator=MIA,
                                     opened_by="@cora:example.org", at=T0,
                                     parties=[(1, "Food Bank"), (2, "Youth Club")],
                                     room_key="k1")
        case.room_id = "!case:example.org"
        case.invited = [ANN, MIA, YAN]
        norm = await cases.add_norm(session, case.id, "Book a month ahead", MIA, T0)
        assert await cases.confirm(session, norm.id, 1, ANN, T0)
        assert await cases.confirm(session, norm.id, 2, YAN, T0 + timedelta(minutes=5))
        assert not await cases.confirm(session, norm.id, 2, YAN, T0 + timedelta(minutes=9))
        await cases.add_action(session, case.id, ANN, "share the calendar", date(2026, 11, 27),
                               MIA, T0)
        await cases.start_session(session, case.id, MIA, T0, [ANN, MIA, YAN])
        await cases.add_note(session, case.id, MIA,
                             sealing.seal(KEY, "Ann NOTE-MARKER-5521 upset"), T0)
        return case.id


async def test_a_note_is_unreadable_in_the_database_file_without_the_key(
    sqlite_database: Database, tmp_path: Path,
) -> None:
    case_id = await a_case(sqlite_database)
    async with sqlite_database.transaction() as session:
        await cases.add_norm(session, case_id, "PLAIN-MARKER-8810", MIA, T0)
    await sqlite_database.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("grapevine.db*"))
    # The same file does hold plain text where text is stored plainly: the search works.
    assert b"PLAIN-MARKER-8810" in raw
    assert b"NOTE-MARKER-5521" not in raw
    assert b"upset" not in raw


async def test_a_sealed_note_opens_only_with_its_key(database: Database) -> None:
    case_id = await a_case(database)
    async with database.transaction() as session:
        [note] = await cases.notes(session, case_id)
    assert sealing.unseal(KEY, note.sealed) == "Ann NOTE-MARKER-5521 upset"
    other = SecretStr(Fernet.generate_key().decode())
    assert sealing.unseal(other, note.sealed) is None


def test_a_missing_or_malformed_key_says_what_to_set() -> None:
    for key in (None, SecretStr("not-a-key")):
        try:
            sealing.seal(key, "x")
        except sealing.NoKey as exc:
            assert "GRAPEVINE_PRIVACY__NOTES_KEY" in str(exc)
        else:
            raise AssertionError("sealing without a usable key must refuse")


async def test_retention_removes_notes_of_cases_closed_long_enough_and_keeps_the_agreement(
    database: Database,
) -> None:
    case_id = await a_case(database)
    async with database.transaction() as session:
        # An open case keeps its notes whatever its age.
        assert await cases.purge_notes(session, T0 + timedelta(days=900), T0) == 0
        case = await cases.get(session, case_id)
        assert case is not None
        case.closed_at, case.outcome = T0 + timedelta(days=1), "agreement"
    async with database.transaction() as session:
        assert await cases.purge_notes(session, T0, T0) == 0
        assert await cases.purge_notes(session, T0 + timedelta(days=2), T0 + timedelta(days=92)) \
            == 1
    async with database.transaction() as session:
        assert await cases.notes(session, case_id) == []
        case = await cases.get(session, case_id)
        assert case is not None and case.notes_purged_at is not None
        [norm] = await cases.norms(session, case_id)
        assert norm.text == "Book a month ahead"
        assert len(await cases.confirmations(session, case_id)) == 2
        assert len(await cases.actions(session, case_id)) == 1
        assert len(await cases.sessions(session, case_id)) == 1


async def test_export_lists_what_a_person_did_in_a_case_and_only_dates_of_notes(
    database: Database,
) -> None:
    await a_case(database)
    async with database.transaction() as session:
        mine = await cases.export_person(session, MIA)
        ann = await cases.export_person(session, ANN)
    assert mine["cases"][0]["case"] == "M1" and mine["cases"][0]["mediator"] is True
    assert mine["norms_proposed"][0]["text"] == "Book a month ahead"
    assert mine["notes_written"] == [{"case": "M1", "at": T0.isoformat()}]
    assert "NOTE-MARKER" not in repr(mine)
    assert ann["confirmations"] == [{"norm_id": 1, "group": "G1", "at": T0.isoformat()}]
    assert ann["actions"][0]["owner"] is True
    assert ann["sessions_attended"][0]["session"] == 1


async def test_forget_erases_the_person_but_not_the_other_partys_agreement(
    database: Database,
) -> None:
    case_id = await a_case(database)
    async with database.transaction() as session:
        changed = await cases.forget_person(session, ANN)
        assert changed >= 4
    async with database.transaction() as session:
        confirmations = await cases.confirmations(session, case_id)
        assert [c.user_id for c in confirmations] == [cases.FORGOTTEN, YAN]
        [action] = await cases.actions(session, case_id)
        assert action.owner == cases.FORGOTTEN and action.text == "share the calendar"
        [meeting] = await cases.sessions(session, case_id)
        assert ANN not in meeting.attendees and MIA in meeting.attendees
        assert await cases.export_person(session, ANN) == {
            "cases": [], "norms_proposed": [], "confirmations": [], "actions": [],
            "sessions_attended": [], "notes_written": []}
        # The mediator forgetting themselves takes their notes with them.
        await cases.forget_person(session, MIA)
        assert await cases.notes(session, case_id) == []
        [norm] = await cases.norms(session, case_id)
        assert norm.text == "Book a month ahead"


async def test_case_rooms_are_known_for_the_reach_intake(database: Database) -> None:
    await a_case(database)
    async with database.transaction() as session:
        assert await cases.is_case_room(session, "!case:example.org")
        assert not await cases.is_case_room(session, "!other:example.org")


async def test_collab_records_export_and_forget_keep_the_evidence(database: Database) -> None:
    async with database.transaction() as session:
        row = await collab.record(session, type="joint-funding", group_ids=[2, 1], amount=5000,
                                  note="Ann's idea", author=ANN, at=T0)
        assert row.ref == "C1" and row.group_ids == [1, 2]
        assert (await collab.export_person(session, ANN))["collab_records"][0]["amount"] == 5000
        assert await collab.forget_person(session, ANN) == 1
    async with database.transaction() as session:
        [kept] = await collab.current(session)
        assert kept.author == collab.FORGOTTEN and kept.note is None and kept.amount == 5000
        await collab.remove(session, kept, YAN, T0)
    async with database.transaction() as session:
        assert await collab.current(session) == []
        total = await session.scalar(select(func.count()).select_from(collab.CollabRecord))
        assert total == 1
