"""Introductions between groups through the directory: who asked whom, and the answer.

The message itself is never stored (DESIGN.md: no message text); only that an
introduction was asked, answered, and when. An accepted one is a tie between the
two groups for the reach model and evidence for ``!collab``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.groups import Group
from storage.models import FORGOTTEN, Base, Id, replace_person
from storage.refs import Referenced

PENDING, ACCEPTED, DECLINED = "pending", "accepted", "declined"


class Introduction(Referenced, Base):
    """``I<id>`` in chat: one group (or a coordinator) asking to be put in touch with another."""

    LETTER = "I"
    __tablename__ = "introductions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # The asking group; None when a coordinator asks for themselves.
    from_group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    # Where the asker is answered (their group's room, or the room they asked in).
    from_room_id: Mapped[str] = mapped_column(String(255))
    to_group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)
    asked_by: Mapped[str] = mapped_column(String(255))
    asked_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    answered_by: Mapped[str | None] = mapped_column(String(255))
    answered_at: Mapped[datetime | None]


async def pending_for(session: AsyncSession, group_id: int) -> list[Introduction]:
    """Introductions waiting for this group's answer, oldest first."""
    return list(await session.scalars(
        select(Introduction)
        .where(Introduction.to_group_id == group_id, Introduction.status == PENDING)
        .order_by(Introduction.id)
    ))


async def open_between(session: AsyncSession, from_room_id: str,
                       to_group_id: int) -> Introduction | None:
    return await session.scalar(select(Introduction).where(
        Introduction.from_room_id == from_room_id, Introduction.to_group_id == to_group_id,
        Introduction.status == PENDING))


async def asked_since(session: AsyncSession, from_room_id: str, since: datetime) -> int:
    """How many introductions were asked from this room since ``since`` (the rate limit)."""
    count = await session.scalar(select(func.count()).select_from(Introduction).where(
        Introduction.from_room_id == from_room_id, Introduction.asked_at >= since))
    return int(count or 0)


async def accepted_rooms(session: AsyncSession) -> list[tuple[str, str]]:
    """(asker's room, answering group's room) of every accepted introduction between rooms."""
    rows = await session.execute(
        select(Introduction.from_room_id, Group.room_id)
        .join(Group, Group.id == Introduction.to_group_id)
        .where(Introduction.status == ACCEPTED, Group.room_id.is_not(None))
        .order_by(Introduction.id))
    return [(src, dst) for src, dst in rows if dst is not None]


async def accepted_between_groups(session: AsyncSession) -> list[tuple[int, int, datetime]]:
    """(asking group, answering group, accepted at) of every accepted introduction between
    two groups: evidence of collaboration (a coordinator asking for themselves is not)."""
    rows = await session.execute(
        select(Introduction.from_group_id, Introduction.to_group_id, Introduction.answered_at,
               Introduction.asked_at)
        .where(Introduction.status == ACCEPTED, Introduction.from_group_id.is_not(None))
        .order_by(Introduction.id))
    return [(int(a), int(b), answered or asked) for a, b, answered, asked in rows if a is not None]


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """Introductions this person asked for or answered (no message text is ever stored)."""
    asked = await session.scalars(select(Introduction).where(Introduction.asked_by == user_id))
    answered = await session.scalars(
        select(Introduction).where(Introduction.answered_by == user_id))
    return {"introductions_you_asked": [
        {"introduction": i.ref, "asked_at": i.asked_at.isoformat(), "status": i.status}
        for i in asked],
        "introductions_you_answered": [i.ref for i in answered]}


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """The tie is between groups and stays; who asked and who answered go."""
    return await replace_person(
        session, (Introduction.asked_by, Introduction.answered_by), user_id, FORGOTTEN)
