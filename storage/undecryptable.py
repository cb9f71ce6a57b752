"""Encrypted messages the bot could not open yet: which, where, from whom, since when.

The sync position moves past an unreadable message at once, so without a row
here a restart would forget it for good. A row holds no content, not even the
ciphertext (the bot could open that later, so it counts as text): the runtime
fetches the event from the homeserver by id when it needs it again.

A row whose ``told_at`` is set is the mark that its sender was told, in that
room, that a message of theirs could not be read: later ones in the same room
are given up without a second notice. No row outlives :data:`KEEP` (the
retention sweep), and ``!privacy forget`` deletes the person's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

# The retention sweep runs hourly: rows older than this go, so none reaches a day.
KEEP = timedelta(hours=23)


class UndecryptableEvent(Base):
    __tablename__ = "undecryptable_events"
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255), index=True)
    since: Mapped[datetime] = mapped_column(index=True)
    told_at: Mapped[datetime | None]


async def add(session: AsyncSession, event_id: str, room_id: str, sender: str,
              since: datetime) -> None:
    """Note a message waiting for its key (once: a second add of it changes nothing)."""
    if await session.get(UndecryptableEvent, event_id) is None:
        session.add(UndecryptableEvent(event_id=event_id, room_id=room_id, sender=sender,
                                       since=since))


async def load(session: AsyncSession, after: datetime) -> list[UndecryptableEvent]:
    """Rows newer than ``after``, waiting ones and told marks, oldest first."""
    rows = await session.scalars(select(UndecryptableEvent)
                                 .where(UndecryptableEvent.since > after)
                                 .order_by(UndecryptableEvent.since))
    return list(rows)


async def drop(session: AsyncSession, event_ids: Iterable[str]) -> None:
    ids = list(event_ids)
    if ids:
        await session.execute(
            delete(UndecryptableEvent).where(UndecryptableEvent.event_id.in_(ids)))


async def told(session: AsyncSession, event_id: str, at: datetime) -> None:
    """Keep the row as the mark that its sender was told in its room."""
    await session.execute(update(UndecryptableEvent)
                          .where(UndecryptableEvent.event_id == event_id)
                          .values(told_at=at))


async def expire(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(UndecryptableEvent).where(UndecryptableEvent.since < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def export_person(session: AsyncSession, user_id: str) -> list[dict[str, Any]]:
    """The person's messages the bot could not read (room and time; there is no text)."""
    rows = await session.scalars(select(UndecryptableEvent)
                                 .where(UndecryptableEvent.sender == user_id)
                                 .order_by(UndecryptableEvent.since))
    return [{"room_id": r.room_id, "unreadable_since": r.since.isoformat(),
             "told_unreadable": r.told_at is not None} for r in rows]


async def forget_person(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(
        delete(UndecryptableEvent).where(UndecryptableEvent.sender == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
