"""The backbone's tables. Features add their own modules of models on the same Base.

Every table is created by an Alembic migration (storage/migrations); a test
checks that the migrations and these models agree on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column

from storage.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer ids that autoincrement on SQLite and use BIGSERIAL-like identity on PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


Row = TypeVar("Row", bound=Base)


async def add_row(session: AsyncSession, row: Row) -> Row:
    """Add ``row`` and flush, so its id (the ref people see in chat) exists before the
    caller quotes it; returns the row for ``return await add_row(...)``."""
    session.add(row)
    await session.flush()
    return row


# ``info={"person": ...}`` marks a column whose name does not say it can hold a person,
# with what the person looks like there; tests/unit/test_privacy_coverage.py checks that
# `!privacy export` shows and `!privacy forget` erases every such column.


# Who "forget" leaves behind in a record that must stay (a case, a tie, a poll, a claim):
# the record keeps what was agreed or said, the Matrix id goes. One value everywhere, so
# an export and every feature recognise it alike.
FORGOTTEN = "(a person who asked to be forgotten)"


async def replace_person(session: AsyncSession, columns: Sequence[InstrumentedAttribute[Any]],
                         user_id: str, placeholder: str) -> int:
    """Forget a person who is one side of a record that must stay (a tie between groups,
    a claim on a listing): each of ``columns`` holding them gets ``placeholder`` instead."""
    changed = 0
    for column in columns:
        result = await session.execute(
            update(column.class_).where(column == user_id).values({column.key: placeholder}))
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return changed


class BotState(Base):
    """Small named values the runtime must not lose: sync token, device id, access token."""

    __tablename__ = "bot_state"
    # "dm:@user:server" names a person's direct-message room with the bot.
    key: Mapped[str] = mapped_column(String(64), primary_key=True,
                                     info={"person": "dm:{user}"})
    value: Mapped[str] = mapped_column(Text)


class HandledEvent(Base):
    """Events already acted on, written in the same transaction as the action's effects."""

    __tablename__ = "handled_events"
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    handled_at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A durable send. Its id makes the Matrix transaction id, so a resend is deduplicated."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # Either a room or a person (a DM room is found or made when it is sent).
    room_id: Mapped[str | None] = mapped_column(String(255))
    to_user: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    # A reply or notice may name people: by id in the text and in m.mentions.
    body: Mapped[str] = mapped_column(Text, info={"person": "Thanks {user}, you're on the rota"})
    html: Mapped[str | None] = mapped_column(Text, info={"person": "<b>{user}</b> is on it"})
    extra: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, info={"person": {"m.mentions": {"user_ids": ["{user}"]}}})
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_mime: Mapped[str | None] = mapped_column(String(100))
    file_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Unique when set: "this notice to this room" can be queued once, ever.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True,
                                                   info={"person": "held:F1:{user}"})
    # Posts the bot makes on its own count toward a room's daily cap; replies do not.
    own_post: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    not_before: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempted_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    # Held until someone other than the bot joins its room, or until this moment: a
    # homeserver sends an event only to servers already in the room, so a first message
    # sent before a person on another server joins would reach them only by scrolling back.
    join_wait_until: Mapped[datetime | None] = mapped_column(index=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_pending", "sent_at", "failed_at", "not_before"),)


class RoleGrant(Base):
    """Roles granted by command (config roles are a floor and never stored here)."""

    __tablename__ = "role_grants"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(32))
    # "" for roles without an area, so the unique constraint holds on every database.
    area_code: Mapped[str] = mapped_column(String(16), default="")
    granted_by: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("user_id", "role", "area_code"),)


class KnownRoom(Base):
    """Rooms the bot is in, and what it has learnt about each."""

    __tablename__ = "rooms"
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    is_direct: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bridged network (protocol id from m.bridge), None for plain Matrix rooms.
    network: Mapped[str | None] = mapped_column(String(64))
    # When the three-line privacy notice was posted; set once.
    greeted_at: Mapped[datetime | None]


class JobRun(Base):
    """When each scheduled job last ran, so a run missed while the bot was down is made up."""

    __tablename__ = "job_runs"
    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_run_at: Mapped[datetime]


class PendingPrompt(Base):
    """A command waiting for a missing option or a choice from its sender in that room."""

    __tablename__ = "pending_prompts"
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    command_line: Mapped[str] = mapped_column(Text)
    # What the next message answers: {"option": "deadline"} or {"choice": "area", ...}
    waiting_for: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime]
