"""The room tree the bot built: which room or space serves which area or theme.

Each room is recorded in its own short transaction the moment it exists, so a
setup interrupted half-way (a crash, a rate limit) resumes where it stopped.
Setup runs are rows too: an unfinished one is picked up again after a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id, add_row


class TreeRoom(Base):
    """One room or space of the tree; ``key`` names what it is for (see bot/features/tree_plan)."""

    __tablename__ = "tree_rooms"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), unique=True)
    # The full alias, e.g. "#fenland-wisbech:example.org".
    alias: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(16), index=True)
    theme: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    parent_key: Mapped[str | None] = mapped_column(String(80))
    # Users the bot gave moderator power here, so a revoked moderator can be taken out again.
    moderators: Mapped[list[str]] = mapped_column(JSON, default=list, info={"kept_on_forget": (
        "mirrors the room's public power levels, and is how the bot takes a forgotten "
        "person's moderator power back at the area's next refresh (which drops them here)")})
    created_at: Mapped[datetime]
    # Locality rooms: the topic the bot last set (it names the parish council); None: never.
    topic: Mapped[str | None] = mapped_column(String(500))


class SetupRun(Base):
    """A requested build or refresh of one area's part of the tree (or of its power levels)."""

    __tablename__ = "tree_setup_runs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    area_code: Mapped[str] = mapped_column(String(16))
    # Only power levels (after a role change), not the whole tree.
    power_only: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(255))
    # Where progress and the result are reported (None: nobody is waiting).
    report_room: Mapped[str | None] = mapped_column(String(255))
    report_event: Mapped[str | None] = mapped_column(String(255))
    requested_at: Mapped[datetime]
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))


async def all_rooms(session: AsyncSession) -> dict[str, TreeRoom]:
    return {row.key: row for row in await session.scalars(select(TreeRoom))}


async def record_room(session: AsyncSession, row: TreeRoom) -> None:
    session.add(row)


async def set_moderators(session: AsyncSession, key: str, users: list[str]) -> None:
    row = await session.get(TreeRoom, key)
    if row is not None:
        row.moderators = sorted(users)


async def set_topic(session: AsyncSession, key: str, topic: str) -> None:
    row = await session.get(TreeRoom, key)
    if row is not None:
        row.topic = topic


async def start_run(
    session: AsyncSession,
    *,
    area_code: str,
    requested_by: str,
    at: datetime,
    power_only: bool = False,
    report_room: str | None = None,
    report_event: str | None = None,
) -> SetupRun:
    run = SetupRun(
        area_code=area_code, power_only=power_only, requested_by=requested_by,
        report_room=report_room, report_event=report_event, requested_at=at,
        done=0, total=0, created=0, changed=0,
    )
    return await add_row(session, run)


async def unfinished_runs(session: AsyncSession) -> list[SetupRun]:
    return list(
        await session.scalars(
            select(SetupRun).where(SetupRun.finished_at.is_(None)).order_by(SetupRun.id)
        )
    )


async def get_run(session: AsyncSession, run_id: int) -> SetupRun | None:
    return await session.get(SetupRun, run_id)
