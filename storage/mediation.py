"""Mediation cases between groups: parties, sessions, the agreement, actions and sealed notes.

The agreement (norms with their confirmations), sessions and actions are the
parties' record and are kept; the mediator's notes are ciphertext only (the
feature seals them) and are deleted a while after the case closes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from storage.models import FORGOTTEN, Base, Id, add_row
from storage.refs import Referenced, by_number

OUTCOMES = ("agreement", "no-agreement", "referred")


class Case(Referenced, Base):
    """One mediation. ``M<id>`` in chat."""

    LETTER = "M"
    __tablename__ = "mediation_cases"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    mediator: Mapped[str] = mapped_column(String(255), index=True)
    opened_by: Mapped[str] = mapped_column(String(255))
    opened_at: Mapped[datetime]
    # Set once the private room exists; None while it is still being made.
    room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Alias localpart used to create the room, so a retried creation finds the same room.
    room_key: Mapped[str] = mapped_column(String(64), unique=True)
    federated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Everyone the case room is for (the groups' admins and the mediator), fixed at opening.
    to_invite: Mapped[list[str]] = mapped_column(JSON, default=list,
                                                 info={"person": ["{user}"]})
    # Those really invited so far: each invite is its own request, and one refused (their
    # server is down) stays pending, retried at invite_retry_at, backing off by invite_tries.
    invited: Mapped[list[str]] = mapped_column(JSON, default=list)
    invite_tries: Mapped[int] = mapped_column(Integer, default=0)
    invite_retry_at: Mapped[datetime | None]
    room_error: Mapped[str | None] = mapped_column(Text)
    room_tried_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    closed_by: Mapped[str | None] = mapped_column(String(255))
    notes_purged_at: Mapped[datetime | None]

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def pending(self) -> list[str]:
        """Who the room is for but has not been invited yet (never someone forgotten)."""
        return [u for u in self.to_invite if u not in self.invited and u != FORGOTTEN]


class InCase:
    """A row that belongs to one case and is deleted with it."""

    case_id: Mapped[int] = mapped_column(
        ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True
    )


class NumberedInCase(InCase):
    """Numbered from 1 within its case: session 2, ``N3``, ``A1``."""

    number: Mapped[int] = mapped_column(Integer)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("case_id", "number"),)  # one per table, not shared


class Party(Base):
    """A group taking part. The name is kept so the agreement reads the same later."""

    __tablename__ = "mediation_parties"
    case_id: Mapped[int] = mapped_column(
        ForeignKey("mediation_cases.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200))


class CaseSession(NumberedInCase, Base):
    """A meeting in the case room. Attendees: everyone joined at its start or its end."""

    __tablename__ = "mediation_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(255))
    ended_at: Mapped[datetime | None]
    attendees: Mapped[list[str]] = mapped_column(JSON, default=list)


class Norm(NumberedInCase, Base):
    """A proposed shared norm or value, ``N<number>`` within its case."""

    __tablename__ = "mediation_norms"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(255))
    proposed_at: Mapped[datetime]

    @property
    def ref(self) -> str:
        return f"N{self.number}"


class Confirmation(Base):
    """A party's confirmation of a norm: which group, who confirmed for it, and when."""

    __tablename__ = "mediation_confirmations"
    norm_id: Mapped[int] = mapped_column(
        ForeignKey("mediation_norms.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    confirmed_at: Mapped[datetime]


class Action(NumberedInCase, Base):
    """A follow-up, ``A<number>`` within its case, with reminders before and after it is due."""

    __tablename__ = "mediation_actions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    text: Mapped[str] = mapped_column(Text)
    due: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(255))
    reminded_at: Mapped[datetime | None]
    overdue_reminded_at: Mapped[datetime | None]

    @property
    def ref(self) -> str:
        return f"A{self.number}"


class Note(InCase, Base):
    """A mediator's note, sealed by the feature before it reaches this table."""

    __tablename__ = "mediation_notes"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    author: Mapped[str] = mapped_column(String(255), index=True)
    written_at: Mapped[datetime]
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


# -- numbered rows within a case (sessions, N<k>, A<k>) ------------------------------------

Numbered = TypeVar("Numbered", "CaseSession", "Norm", "Action")


async def _next_number(session: AsyncSession, model: type[Numbered], case_id: int) -> int:
    highest = await session.scalar(select(func.max(model.number)).where(model.case_id == case_id))
    return int(highest or 0) + 1


async def _in_order(session: AsyncSession, model: type[Numbered], case_id: int
                    ) -> list[Numbered]:
    return list(await session.scalars(
        select(model).where(model.case_id == case_id).order_by(model.number)))


async def _numbered(session: AsyncSession, model: type[Numbered], case_id: int, number: int
                    ) -> Numbered | None:
    return await session.scalar(
        select(model).where(model.case_id == case_id, model.number == number))


# -- cases -------------------------------------------------------------------------------


async def open_case(
    session: AsyncSession, *, title: str, mediator: str, opened_by: str, at: datetime,
    parties: list[tuple[int, str]], room_key: str,
) -> Case:
    case = Case(title=title, mediator=mediator, opened_by=opened_by, opened_at=at,
                room_key=room_key, to_invite=[], invited=[], federated=False)
    await add_row(session, case)
    for group_id, name in parties:
        session.add(Party(case_id=case.id, group_id=group_id, group_name=name))
    await session.flush()
    return case


async def get(session: AsyncSession, case_id: int) -> Case | None:
    return await by_number(session, Case, case_id)


async def by_room(session: AsyncSession, room_id: str) -> Case | None:
    return await session.scalar(select(Case).where(Case.room_id == room_id))


async def is_case_room(session: AsyncSession, room_id: str) -> bool:
    """For the reach intake: nothing about message flow is recorded in these rooms."""
    found = await session.scalar(select(Case.id).where(Case.room_id == room_id).limit(1))
    return found is not None


async def all_cases(session: AsyncSession) -> list[Case]:
    return list(await session.scalars(select(Case).order_by(Case.id)))


async def without_room(session: AsyncSession) -> list[Case]:
    return list(await session.scalars(
        select(Case).where(Case.room_id.is_(None), Case.closed_at.is_(None)).order_by(Case.id)
    ))


async def inviting(session: AsyncSession) -> list[Case]:
    """Open cases with a room and someone still to invite."""
    return [c for c in await session.scalars(
        select(Case).where(Case.room_id.is_not(None), Case.closed_at.is_(None),
                           Case.invite_retry_at.is_not(None) | (Case.invite_tries == 0))
        .order_by(Case.id)) if c.pending]


async def newest_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(Case.id))) or 0)


async def parties(session: AsyncSession, case_id: int) -> list[Party]:
    return list(await session.scalars(
        select(Party).where(Party.case_id == case_id).order_by(Party.group_id)
    ))


# -- sessions ----------------------------------------------------------------------------


async def sessions(session: AsyncSession, case_id: int) -> list[CaseSession]:
    return await _in_order(session, CaseSession, case_id)


async def running_session(session: AsyncSession, case_id: int) -> CaseSession | None:
    return await session.scalar(select(CaseSession).where(
        CaseSession.case_id == case_id, CaseSession.ended_at.is_(None)))


async def start_session(session: AsyncSession, case_id: int, by: str, at: datetime,
                        present: list[str]) -> CaseSession:
    number = await _next_number(session, CaseSession, case_id)
    row = CaseSession(case_id=case_id, number=number, started_at=at, started_by=by,
                      attendees=sorted(present))
    return await add_row(session, row)


# -- the agreement -----------------------------------------------------------------------




async def add_norm(session: AsyncSession, case_id: int, text: str, by: str, at: datetime) -> Norm:
    norm = Norm(case_id=case_id, number=await _next_number(session, Norm, case_id), text=text,
                proposed_by=by, proposed_at=at)
    return await add_row(session, norm)


async def norms(session: AsyncSession, case_id: int) -> list[Norm]:
    return await _in_order(session, Norm, case_id)


async def norm(session: AsyncSession, case_id: int, number: int) -> Norm | None:
    return await _numbered(session, Norm, case_id, number)


async def confirmations(session: AsyncSession, case_id: int) -> list[Confirmation]:
    return list(await session.scalars(
        select(Confirmation).join(Norm, Norm.id == Confirmation.norm_id)
        .where(Norm.case_id == case_id).order_by(Confirmation.confirmed_at)
    ))


async def confirm(session: AsyncSession, norm_id: int, group_id: int, by: str,
                  at: datetime) -> bool:
    """False when that group had already confirmed (the first confirmation stands)."""
    if await session.get(Confirmation, (norm_id, group_id)) is not None:
        return False
    session.add(Confirmation(norm_id=norm_id, group_id=group_id, user_id=by, confirmed_at=at))
    await session.flush()
    return True


# -- actions -----------------------------------------------------------------------------


async def add_action(session: AsyncSession, case_id: int, owner: str, text: str, due: date,
                     by: str, at: datetime) -> Action:
    action = Action(case_id=case_id, number=await _next_number(session, Action, case_id),
                    owner=owner, text=text, due=due, created_by=by, created_at=at)
    return await add_row(session, action)


async def actions(session: AsyncSession, case_id: int) -> list[Action]:
    return await _in_order(session, Action, case_id)


async def action(session: AsyncSession, case_id: int, number: int) -> Action | None:
    return await _numbered(session, Action, case_id, number)


async def open_actions(session: AsyncSession) -> list[tuple[Action, Case]]:
    rows = await session.execute(
        select(Action, Case).join(Case, Case.id == Action.case_id)
        .where(Action.done_at.is_(None), Case.room_id.is_not(None))
        .order_by(Action.due, Action.id)
    )
    return [(a, c) for a, c in rows.tuples()]


# -- notes -------------------------------------------------------------------------------


async def add_note(session: AsyncSession, case_id: int, author: str, sealed: bytes,
                   at: datetime) -> Note:
    note = Note(case_id=case_id, author=author, sealed=sealed, written_at=at)
    return await add_row(session, note)


async def notes(session: AsyncSession, case_id: int) -> list[Note]:
    return list(await session.scalars(
        select(Note).where(Note.case_id == case_id).order_by(Note.written_at, Note.id)
    ))


async def purge_notes(session: AsyncSession, closed_before: datetime, at: datetime) -> int:
    """Delete the notes of cases closed before ``closed_before``; the agreement stays."""
    cases = list(await session.scalars(select(Case.id).where(
        Case.closed_at.is_not(None), Case.closed_at <= closed_before)))
    if not cases:
        return 0
    result = await session.execute(delete(Note).where(Note.case_id.in_(cases)))
    await session.execute(update(Case).where(Case.id.in_(cases), Case.notes_purged_at.is_(None))
                          .values(notes_purged_at=at))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- data protection ---------------------------------------------------------------------


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """What the mediation tables hold about ``user_id``; notes they wrote stay sealed.

    Notes are exported as their dates only: a note is the mediator's record about
    the other parties, and a subject-access copy must not show other people's data.
    """
    def when(value: datetime | date | None) -> str | None:
        return value.isoformat() if value is not None else None

    mediated = [c for c in await session.scalars(select(Case).order_by(Case.id))
                if user_id in (c.mediator, c.opened_by, c.closed_by)
                or user_id in c.invited or user_id in c.to_invite]
    mine_norms = await session.scalars(select(Norm).where(Norm.proposed_by == user_id))
    mine_confirmations = await session.scalars(
        select(Confirmation).where(Confirmation.user_id == user_id))
    mine_actions = await session.scalars(select(Action).where(
        (Action.owner == user_id) | (Action.created_by == user_id) | (Action.done_by == user_id)))
    attended = [s for s in await session.scalars(select(CaseSession))
                if user_id in s.attendees or s.started_by == user_id]
    mine_notes = await session.scalars(select(Note).where(Note.author == user_id))
    return {
        "cases": [{"case": c.ref, "title": c.title, "mediator": c.mediator == user_id,
                   "opened_at": when(c.opened_at), "closed_at": when(c.closed_at)}
                  for c in mediated],
        "norms_proposed": [{"case": f"M{n.case_id}", "norm": n.ref, "text": n.text,
                            "at": when(n.proposed_at)} for n in mine_norms],
        "confirmations": [{"norm_id": c.norm_id, "group": f"G{c.group_id}",
                           "at": when(c.confirmed_at)} for c in mine_confirmations],
        "actions": [{"case": f"M{a.case_id}", "action": a.ref, "text": a.text,
                     "owner": a.owner == user_id, "due": when(a.due), "done_at": when(a.done_at)}
                    for a in mine_actions],
        "sessions_attended": [{"case": f"M{s.case_id}", "session": s.number,
                               "started_at": when(s.started_at),
                               "you_started_it": s.started_by == user_id} for s in attended],
        "notes_written": [{"case": f"M{n.case_id}", "at": when(n.written_at)}
                          for n in mine_notes],
    }


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """Erase ``user_id`` from the mediation record; returns the rows changed or deleted.

    Their own notes are deleted. The agreement belongs to every party, so a norm
    they proposed, a confirmation they gave for their group, an action they own
    and the sessions they attended stay, with their Matrix id replaced by
    FORGOTTEN: the other groups keep what was agreed, and who it was is gone.
    """
    changed = 0
    result = await session.execute(delete(Note).where(Note.author == user_id))
    changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    replacements: list[tuple[Any, Any]] = [
        (Case, Case.mediator), (Case, Case.opened_by), (Case, Case.closed_by),
        (Norm, Norm.proposed_by), (Confirmation, Confirmation.user_id),
        (Action, Action.owner), (Action, Action.created_by), (Action, Action.done_by),
        (CaseSession, CaseSession.started_by),
    ]
    for model, column in replacements:
        result = await session.execute(
            update(model).where(column == user_id).values({column.key: FORGOTTEN}))
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    for row in await session.scalars(select(CaseSession)):
        if user_id in row.attendees:
            row.attendees = [FORGOTTEN if a == user_id else a for a in row.attendees]
            changed += 1
    for case in await session.scalars(select(Case)):
        if user_id in case.invited or user_id in case.to_invite:
            case.invited = [FORGOTTEN if a == user_id else a for a in case.invited]
            case.to_invite = [FORGOTTEN if a == user_id else a for a in case.to_invite]
            changed += 1
    await session.flush()
    return changed
