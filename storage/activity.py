"""Which group rooms ran a command on which day: the "active room" half that flow records miss.

Flow intake never records commands (they are not message flow), and handled-event
ids are pruned within hours, so the adoption report could not otherwise tell that
a room used the bot last month. A row is a room and a local day, nothing about who:
no person's id is held, so privacy export and forget have nothing to cover here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.engine import upsert
from storage.models import Base


class CommandDay(Base):
    """A group room ran at least one command on ``day`` (the deployment's local date)."""

    __tablename__ = "command_days"
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date, local
    commands: Mapped[int] = mapped_column(Integer, default=1)
    last_at: Mapped[datetime] = mapped_column(index=True)


_NOTE = upsert(CommandDay, ["room_id", "day"], {
    "commands": f"{CommandDay.__tablename__}.commands + 1", "last_at": "excluded.last_at"})


async def note_command(session: AsyncSession, room_id: str, day: date, at: datetime) -> None:
    """Count one command in the room on that day (one upsert, in the command's transaction)."""
    await session.execute(_NOTE, {"room_id": room_id, "day": day.isoformat(), "commands": 1,
                                  "last_at": at})


async def days(session: AsyncSession) -> list[tuple[str, date, datetime]]:
    """Every (room, day, last command that day)."""
    rows = await session.execute(
        select(CommandDay.room_id, CommandDay.day, CommandDay.last_at).order_by(CommandDay.day))
    return [(room, date.fromisoformat(day), at) for room, day, at in rows.tuples()]
