"""Group profiles: the community groups, their rooms, and what notices are targeted by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id
from storage.refs import Referenced, by_number


class Group(Referenced, Base):
    """One community group. ``G<id>`` in chat. A room has at most one group."""

    LETTER = "G"
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # None for a group that is not on chat (reached by email digest and printed sheets).
    room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    area_code: Mapped[str] = mapped_column(String(16), index=True)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    size: Mapped[str] = mapped_column(String(16))
    reach: Mapped[str] = mapped_column(String(16), default="locality")
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    contact: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(320))
    registered_by: Mapped[str] = mapped_column(String(255))
    registered_at: Mapped[datetime]
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[str | None] = mapped_column(String(255))
    # Let other groups' volunteer requests reach volunteers who came through this group.
    share_volunteers: Mapped[bool] = mapped_column(Boolean, default=False)
    # The bot's own posts a day in the group's room (the rest fold into a digest).
    max_posts: Mapped[int] = mapped_column(Integer, default=3)
    # Answer only the room's admins in the group's room.
    quiet: Mapped[bool] = mapped_column(Boolean, default=False)
    unregistered_at: Mapped[datetime | None]
    # Where introductions through the directory arrive: "room" (its own room) or "admins" (DMs).
    introductions: Mapped[str] = mapped_column(String(8), default="room", server_default="room")

    @property
    def findable(self) -> bool:
        return self.unregistered_at is None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


# Built once: every command in a room reads the room's group.
_BY_ROOM = select(Group).where(Group.room_id == bindparam("room_id"),
                               Group.unregistered_at.is_(None))


async def by_room(session: AsyncSession, room_id: str) -> Group | None:
    return await session.scalar(_BY_ROOM, {"room_id": room_id})


async def by_id(session: AsyncSession, group_id: int) -> Group | None:
    return await by_number(session, Group, group_id)


async def active(session: AsyncSession) -> list[Group]:
    return list(
        await session.scalars(
            select(Group).where(Group.unregistered_at.is_(None)).order_by(Group.id)
        )
    )


async def by_room_any(session: AsyncSession, room_id: str) -> Group | None:
    """The room's group even if unregistered: registering again brings back the same G<n>."""
    return await session.scalar(select(Group).where(Group.room_id == room_id))


async def listed(session: AsyncSession) -> list[Group]:
    """Groups that opted in to the directory."""
    return list(
        await session.scalars(
            select(Group)
            .where(Group.unregistered_at.is_(None), Group.listed.is_(True))
            .order_by(Group.name, Group.id)
        )
    )
