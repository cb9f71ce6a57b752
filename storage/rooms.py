"""What the bot knows about the rooms it is in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import KnownRoom


async def get(session: AsyncSession, room_id: str) -> KnownRoom | None:
    return await session.get(KnownRoom, room_id)


async def joined(
    session: AsyncSession,
    room_id: str,
    at: datetime,
    *,
    is_direct: bool = False,
    encrypted: bool = False,
) -> KnownRoom:
    room = await session.get(KnownRoom, room_id)
    if room is None:
        room = KnownRoom(room_id=room_id, joined_at=at, is_direct=is_direct, encrypted=encrypted)
        session.add(room)
    else:
        room.left_at = None
        room.is_direct = room.is_direct or is_direct
        room.encrypted = room.encrypted or encrypted
    return room


async def left(session: AsyncSession, room_id: str, at: datetime) -> None:
    room = await session.get(KnownRoom, room_id)
    if room is not None:
        room.left_at = at


async def active(session: AsyncSession) -> list[KnownRoom]:
    return list(await session.scalars(select(KnownRoom).where(KnownRoom.left_at.is_(None))))
