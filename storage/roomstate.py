"""The room state the bot reads (creation, power levels, encryption), kept from sync.

One row per room holds those few state events as the last sync left them, so a
restart knows every room's creators and power levels without asking the
homeserver for each room's whole state. It is a copy of what every member of
the room can see, refreshed by the sync loop; rows naming a person are dropped
by ``!privacy forget`` and read again from the homeserver if ever needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

# A room's kept events: [{"type", "state_key", "sender", "content"}, ...]
StateEvents = list[dict[str, Any]]


class RoomStateRow(Base):
    __tablename__ = "room_state"
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Power levels and creation name people (who may do what, who made the room).
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, info={"person": [{
        "type": "m.room.power_levels", "state_key": "", "sender": "{user}",
        "content": {"users": {"{user}": 50}},
    }]})
    updated_at: Mapped[datetime]


async def load_all(session: AsyncSession) -> dict[str, StateEvents]:
    rows = await session.execute(select(RoomStateRow.room_id, RoomStateRow.events))
    return {room_id: list(events or []) for room_id, events in rows}


async def save(
    session: AsyncSession, changed: dict[str, StateEvents | None], now: datetime
) -> None:
    """Write each changed room's events; None removes the room (the bot left it)."""
    gone = [room_id for room_id, events in changed.items() if events is None]
    if gone:
        await session.execute(delete(RoomStateRow).where(RoomStateRow.room_id.in_(gone)))
    kept = {room_id: events for room_id, events in changed.items() if events is not None}
    if not kept:
        return
    existing = {
        row.room_id: row
        for row in await session.scalars(
            select(RoomStateRow).where(RoomStateRow.room_id.in_(list(kept)))
        )
    }
    for room_id, events in kept.items():
        row = existing.get(room_id)
        if row is None:
            session.add(RoomStateRow(room_id=room_id, events=events, updated_at=now))
        else:
            row.events, row.updated_at = events, now


async def _naming(session: AsyncSession, user_id: str) -> dict[str, StateEvents]:
    return {
        room_id: events
        for room_id, events in (await load_all(session)).items()
        if user_id in repr(events)
    }


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """The rooms whose kept state names the person, and in which events."""
    return {
        room_id: sorted({e["type"] for e in events if user_id in repr(e)})
        for room_id, events in (await _naming(session, user_id)).items()
    }


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """Drop the copies that name the person (power levels, creators); sync refills them."""
    named = list(await _naming(session, user_id))
    if named:
        await session.execute(delete(RoomStateRow).where(RoomStateRow.room_id.in_(named)))
    return len(named)
