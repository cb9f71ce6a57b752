"""Whether the bot's direct messages reach a bridged person: invites watched, and what was learned.

One row per person. While a DM invite to them is watched it holds their Matrix
id (the bot must look them up in the DM room) and the room to tell if the
invite is not taken. What was learned ("their bridge did not carry the bot's
DM, until ...") is only ever looked up, so it is kept under a digest of the id
(:func:`storage.outbox.person_key`), never the id. A watch lasts minutes and a
fact a day (bot.dm_reach); ``!privacy forget`` deletes the person's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.outbox import person_key


class DmReachRow(Base):
    __tablename__ = "dm_reach"
    person: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Set only while an invite is watched.
    user_id: Mapped[str | None] = mapped_column(String(255))
    room_id: Mapped[str | None] = mapped_column(String(255))
    watched_since: Mapped[datetime | None]
    unreachable_until: Mapped[datetime | None]


@dataclass(frozen=True)
class Watch:
    user_id: str
    room_id: str
    since: datetime


async def load(session: AsyncSession) -> tuple[list[Watch], dict[str, datetime]]:
    """The invites watched and the facts learned (person digest -> until)."""
    watches: list[Watch] = []
    unreachable: dict[str, datetime] = {}
    for row in await session.scalars(select(DmReachRow)):
        if row.user_id and row.room_id and row.watched_since:
            watches.append(Watch(row.user_id, row.room_id, row.watched_since))
        if row.unreachable_until is not None:
            unreachable[row.person] = row.unreachable_until
    return watches, unreachable


async def watch(session: AsyncSession, user_id: str, room_id: str, now: datetime) -> None:
    """Start watching the person's DM invite (a watch already open is kept)."""
    row = await session.get(DmReachRow, person_key(user_id))
    if row is None:
        session.add(DmReachRow(person=person_key(user_id), user_id=user_id, room_id=room_id,
                               watched_since=now))
    elif row.watched_since is None:
        row.user_id, row.room_id, row.watched_since = user_id, room_id, now


async def settle(session: AsyncSession, user_id: str, unreachable_until: datetime | None
                 ) -> bool:
    """The watch ends: the invite was taken (None: nothing to remember) or not (remember
    until then). False if the person has no row (forgotten meanwhile): nothing is written."""
    key = person_key(user_id)
    if unreachable_until is None:
        result = await session.execute(delete(DmReachRow).where(DmReachRow.person == key))
    else:
        result = await session.execute(
            update(DmReachRow).where(DmReachRow.person == key).values(
                user_id=None, room_id=None, watched_since=None,
                unreachable_until=unreachable_until))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def expire(session: AsyncSession, now: datetime, watched_before: datetime) -> int:
    """Facts past their time and watches older than ``watched_before`` (never settled:
    the DM was never sent) go; returns the rows changed."""
    changed = 0
    stale_watch = DmReachRow.watched_since < watched_before
    stale_fact = DmReachRow.unreachable_until <= now
    statements: list[Any] = [
        delete(DmReachRow).where(
            or_(DmReachRow.watched_since.is_(None), stale_watch),
            or_(DmReachRow.unreachable_until.is_(None), stale_fact)),
        update(DmReachRow).where(stale_watch).values(
            user_id=None, room_id=None, watched_since=None),
        update(DmReachRow).where(stale_fact).values(unreachable_until=None),
    ]
    for statement in statements:
        changed += int((await session.execute(statement)).rowcount or 0)  # type: ignore[attr-defined]
    return changed


def _theirs(user_id: str) -> Any:
    return or_(DmReachRow.person == person_key(user_id), DmReachRow.user_id == user_id)


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any] | None:
    row = await session.scalar(select(DmReachRow).where(_theirs(user_id)))
    if row is None:
        return None
    return {
        "direct_message_invite_watched_from_room": row.room_id,
        "watched_since": row.watched_since.isoformat() if row.watched_since else None,
        "bridge_did_not_carry_my_messages_until": (
            row.unreachable_until.isoformat() if row.unreachable_until else None),
    }


async def forget_person(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(delete(DmReachRow).where(_theirs(user_id)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
