"""Consultations (``K<n>``) of groups, their answers, and feedback for the coordinators.

A poll asks groups; each group's answer is one row (changeable until the poll
closes). When the coordinator allows it, members add their own view: that row is
keyed by the flow pseudonym (a keyed hash of the Matrix id, storage.flow), never by
the id itself, so one person has one view and no table here names them. Each answer
keeps the group's district and network as they were when it was given, so results
do not move when a group later changes its profile.

Feedback is stored without the sender unless they asked to be named (``named_by``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import FORGOTTEN, Base, Id, add_row
from storage.refs import Referenced, by_number

# The voter of a group's own answer: the group, not a person.
GROUP = ""


class Poll(Referenced, Base):
    """``K<id>`` in chat: a short question with lettered options, put to matching groups."""

    LETTER = "K"
    __tablename__ = "consult_polls"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON)
    # The targeting the coordinator gave (empty: any), kept to say whom it was put to.
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The groups it was put to: only they answer.
    group_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    members_may: Mapped[bool] = mapped_column(Boolean, default=False)
    asked_by: Mapped[str] = mapped_column(String(255))
    asked_at: Mapped[datetime]
    closes_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    def is_closed(self, now: datetime) -> bool:
        return self.closed_at is not None or (self.closes_at is not None
                                              and self.closes_at <= now)


class Answer(Base):
    """A group's answer (``voter_key`` empty) or a member's own view (their pseudonym)."""

    __tablename__ = "consult_answers"
    __table_args__ = (UniqueConstraint("poll_id", "group_id", "voter_key"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("consult_polls.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    voter_key: Mapped[str] = mapped_column(String(64), default=GROUP,
                                           info={"person": "{key}"})
    option: Mapped[int] = mapped_column()  # index into Poll.options
    comment: Mapped[str | None] = mapped_column(Text)
    # Where the answer counts: the group's district (GSS code) and network then.
    district: Mapped[str | None] = mapped_column(String(16))
    network: Mapped[str] = mapped_column(String(64))
    answered_at: Mapped[datetime]
    changed_at: Mapped[datetime | None]


class Feedback(Base):
    """Words for the coordinators; the sender is kept only when they asked (``named=yes``)."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)
    named_by: Mapped[str | None] = mapped_column(String(255))
    given_at: Mapped[datetime]


# -- polls -------------------------------------------------------------------------------


async def add_poll(session: AsyncSession, **fields: Any) -> Poll:
    poll = Poll(**fields)
    return await add_row(session, poll)


async def poll(session: AsyncSession, poll_id: int) -> Poll | None:
    return await by_number(session, Poll, poll_id)


async def latest_polls(session: AsyncSession, limit: int) -> list[Poll]:
    return list(await session.scalars(select(Poll).order_by(Poll.id.desc()).limit(limit)))


async def due_to_close(session: AsyncSession, now: datetime) -> list[Poll]:
    """Open polls whose closing time has come (the scheduled close)."""
    return list(await session.scalars(
        select(Poll).where(Poll.closed_at.is_(None), Poll.closes_at.is_not(None),
                           Poll.closes_at <= now).order_by(Poll.id)))


async def answer_of(session: AsyncSession, poll_id: int, group_id: int) -> Answer | None:
    return await session.scalar(select(Answer).where(
        Answer.poll_id == poll_id, Answer.group_id == group_id, Answer.voter_key == GROUP))


async def view_of(session: AsyncSession, poll_id: int, voter_key: str) -> Answer | None:
    """A member's own view on a poll, whichever group's room they gave it in."""
    return await session.scalar(select(Answer).where(
        Answer.poll_id == poll_id, Answer.voter_key == voter_key))


async def add_answer(session: AsyncSession, **fields: Any) -> Answer:
    row = Answer(**fields)
    return await add_row(session, row)


async def answers(session: AsyncSession, poll_id: int) -> list[Answer]:
    return list(await session.scalars(
        select(Answer).where(Answer.poll_id == poll_id).order_by(Answer.id)))


async def answered_groups(session: AsyncSession, poll_id: int) -> int:
    count = await session.scalar(select(func.count()).select_from(Answer).where(
        Answer.poll_id == poll_id, Answer.voter_key == GROUP))
    return int(count or 0)


# -- feedback ----------------------------------------------------------------------------


async def add_feedback(session: AsyncSession, body: str, named_by: str | None,
                       at: datetime) -> Feedback:
    row = Feedback(body=body, named_by=named_by, given_at=at)
    return await add_row(session, row)


async def latest_feedback(session: AsyncSession, limit: int) -> Sequence[Feedback]:
    return list(await session.scalars(
        select(Feedback).order_by(Feedback.id.desc()).limit(limit)))


async def feedback_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Feedback)) or 0)


# -- privacy -----------------------------------------------------------------------------


async def export_person(session: AsyncSession, user_id: str, pseudonym: str) -> dict[str, Any]:
    """Polls the person asked, their own views, and feedback they signed."""
    asked = await session.scalars(select(Poll).where(Poll.asked_by == user_id))
    views = await session.scalars(select(Answer).where(Answer.voter_key == pseudonym))
    signed = await session.scalars(select(Feedback).where(Feedback.named_by == user_id))
    return {
        "consultations_you_asked": [{"poll": p.ref, "question": p.question} for p in asked],
        "your_views_in_consultations": [
            {"poll": Poll.ref_of(a.poll_id), "option": a.option, "comment": a.comment,
             "given_at": a.answered_at.isoformat()} for a in views],
        "feedback_you_signed": [{"text": f.body, "given_at": f.given_at.isoformat()}
                                for f in signed],
    }


async def forget_person(session: AsyncSession, user_id: str, pseudonym: str) -> int:
    """Own views and signed feedback go; a poll stays, without who asked it."""
    changed = 0
    for statement in (
        delete(Answer).where(Answer.voter_key == pseudonym),
        delete(Feedback).where(Feedback.named_by == user_id),
        update(Poll).where(Poll.asked_by == user_id).values(asked_by=FORGOTTEN),
    ):
        result = await session.execute(statement)
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return changed
