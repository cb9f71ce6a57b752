"""What bridges tell the bot about a room: which bridge, which remote chat, what it can show.

``KnownRoom.network`` holds the network for everyone; this table keeps the
rest, including ``com.beeper.room_features`` where a bridge publishes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, OutboxMessage


class BridgedRoom(Base):
    __tablename__ = "bridged_rooms"
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    network: Mapped[str | None] = mapped_column(String(64))
    # The appservice registration id that vouched for it.
    bridge_id: Mapped[str | None] = mapped_column(String(255))
    channel_name: Mapped[str | None] = mapped_column(String(300))
    # com.beeper.room_features content, when the bridge publishes it.
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime]


async def get(session: AsyncSession, room_id: str) -> BridgedRoom | None:
    return await session.get(BridgedRoom, room_id)


async def upsert(session: AsyncSession, room_id: str, now: datetime, **fields: Any) -> BridgedRoom:
    row = await session.get(BridgedRoom, room_id)
    if row is None:
        row = BridgedRoom(room_id=room_id, updated_at=now)
        session.add(row)
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = now
    return row


async def features(session: AsyncSession, room_id: str) -> dict[str, Any] | None:
    row = await session.get(BridgedRoom, room_id)
    return row.features if row is not None else None


async def refused_rooms(session: AsyncSession, since: datetime) -> dict[str, datetime]:
    """Rooms where the outbox gave up on a message because the server said M_FORBIDDEN.

    Each room with the time of its latest refusal since ``since``. That is how an
    announcement-only WhatsApp group (only admins may post) looks from here.
    """
    rows = await session.execute(
        select(OutboxMessage.room_id, func.max(OutboxMessage.failed_at))
        .where(
            OutboxMessage.room_id.is_not(None),
            OutboxMessage.failed_at >= since,
            OutboxMessage.last_error.like("M_FORBIDDEN%"),
        )
        .group_by(OutboxMessage.room_id)
    )
    return {room: at for room, at in rows.tuples() if room is not None and at is not None}
