"""`!privacy forget` and `!privacy export` cover every table, found by walking the models.

Every column that can hold a Matrix user id (or the pseudonymous key derived from one)
is found from the SQLAlchemy metadata: by its name (``user_id``, ``*_by``, ``mediator``,
``sender_key`` ...) or by a ``person`` entry in its ``info`` saying what such a value
looks like there (``"dm:{user}"``, a reply naming ``{user}``). For each one, a row holding
the person there (and only there) is written, then:

- the export must change because of it (the person is shown the row);
- after forget the row must be gone, or the column must no longer hold the person.

A column forget deliberately keeps says why in ``info["kept_on_forget"]``. A new table
with a column named like a person and neither covered nor explained fails this test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import count
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

import storage.all_models  # noqa: F401 (every feature's tables on Base.metadata)
from bot.features.privacy import export_everything, forget_everything
from storage.engine import Database
from storage.flow import pseudonym
from storage.mentions import free_text_columns
from storage.models import Base

ANN = "@ann:grapevine.local"
ANN_KEY = pseudonym(b"deployment-secret", ANN)
OTHER = "@someone.else:grapevine.local"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

# Column names that hold a person, wherever they appear.
PERSON_NAME = re.compile(
    r"(^|_)(user|user_id|to_user|mediator|owner|author|attendees|invited|moderators|members"
    r"|sender|sender_key|pseudonym)$|_by$"
)


def person_value(column: Column[Any]) -> Any | None:
    """What the person looks like in this column, or None if it cannot hold one."""
    template = column.info.get("person")
    if template is False:
        return None
    if template is None:
        if not PERSON_NAME.search(column.name):
            return None
        template = "{key}" if re.search(r"key|pseudonym", column.name) else "{user}"
        if isinstance(column.type, JSON):
            template = [template]
    return _fill(template, user=ANN, key=ANN_KEY)


def _fill(template: Any, **values: str) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, list):
        return [_fill(t, **values) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, **values) for k, v in template.items()}
    return template


def person_columns(metadata: MetaData) -> Iterator[Column[Any]]:
    for table in metadata.sorted_tables:
        for column in table.columns:
            if person_value(column) is not None:
                yield column


def holds_person(value: Any) -> bool:
    if value is None:
        return False
    text = value.decode(errors="replace") if isinstance(value, bytes) else json.dumps(
        value, default=str)
    return ANN in text or ANN_KEY in text


class RowMaker:
    """Plausible rows for any table: unique values, parents made for foreign keys."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.numbers = count(1000)

    def plain_value(self, column: Column[Any]) -> Any:
        n = next(self.numbers)
        kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
        if isinstance(kind, Boolean):
            return False
        if isinstance(kind, Integer):
            return n
        if isinstance(kind, Float):
            return 1.5
        if isinstance(kind, DateTime):
            return NOW
        if isinstance(kind, Date):
            return date(2026, 11, 20)
        if isinstance(kind, JSON):
            return []
        if isinstance(kind, LargeBinary):
            return b"bytes"
        if isinstance(kind, String | Text):
            length = getattr(kind, "length", None) or 64
            return f"v{n}"[:length]
        raise AssertionError(f"no plain value for {column} of type {kind!r}")

    async def insert(self, table: Table, overrides: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        """Insert one row (and its parents); returns its values."""
        overrides = overrides or {}
        values: dict[str, Any] = {}
        for column in table.columns:
            if column.name in overrides:
                values[column.name] = overrides[column.name]
            elif column.foreign_keys:
                [fk] = column.foreign_keys
                parent = await self.insert(fk.column.table)
                values[column.name] = parent[fk.column.name]
            elif column.nullable and not column.primary_key:
                values[column.name] = None
            else:
                values[column.name] = self.plain_value(column)
        await self.session.execute(table.insert().values(values))
        return values


@dataclass(frozen=True)
class Gap:
    column: str
    what: str

    def __str__(self) -> str:
        return f"{self.column}: {self.what}"


async def gaps(database: Database, columns: Iterable[Column[Any]]) -> list[Gap]:
    """Every one of ``columns`` that export does not show or forget does not erase."""
    found: list[Gap] = []
    for column in columns:
        name = f"{column.table.name}.{column.name}"
        async with database.sessions() as session:
            transaction = await session.begin()
            try:
                maker = RowMaker(session)
                before = await export_everything(session, ANN, ANN_KEY, NOW)
                row = await maker.insert(column.table, {column.name: person_value(column)})
                after = await export_everything(session, ANN, ANN_KEY, NOW)
                if json.dumps(after, default=str) == json.dumps(before, default=str):
                    found.append(Gap(name, "the export does not show it"))
                await forget_everything(session, ANN, ANN_KEY, NOW)
                session.expunge_all()
                key = [column.table.c[c.name] == row[c.name]
                       for c in column.table.primary_key.columns]
                left = (await session.execute(select(column).where(*key))).first()
                kept = column.info.get("kept_on_forget")
                if left is not None and holds_person(left[0]) and not kept:
                    found.append(Gap(name, "forget leaves the person there"))
            finally:
                await transaction.rollback()
    return found


async def test_every_column_holding_a_person_is_exported_and_forgotten(
    database: Database,
) -> None:
    assert [str(g) for g in await gaps(database, person_columns(Base.metadata))] == []
    columns = {f"{c.table.name}.{c.name}" for c in person_columns(Base.metadata)}
    # The walk finds the obvious ones by name and the annotated ones by their info.
    assert {"role_grants.user_id", "volunteers.user_id", "flow_events.sender_key",
            "outbox.to_user", "outbox.body", "bot_state.key"} <= columns


async def test_a_new_table_holding_a_person_that_forget_misses_fails(
    database: Database,
) -> None:
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    signups = Table("throwaway_signups", metadata,
                    Column("id", Integer, primary_key=True),
                    Column("signed_up_by", String(255), nullable=False))
    async with database.engine.begin() as connection:
        await connection.run_sync(signups.create)
    try:
        found = await gaps(database, [c for c in person_columns(metadata) if c.table is signups])
    finally:
        async with database.engine.begin() as connection:
            await connection.run_sync(signups.drop)
    assert [str(g) for g in found] == [
        "throwaway_signups.signed_up_by: the export does not show it",
        "throwaway_signups.signed_up_by: forget leaves the person there",
    ]


async def test_free_text_that_names_a_person_is_forgotten_in_every_table(
    database: Database,
) -> None:
    """People type ids into free text (a note, a title, a description): wherever any text
    or JSON column of any table holds one, forget takes it out (storage.mentions)."""
    columns = [c for c in free_text_columns(Base.metadata) if person_value(c) is None]
    named = {f"{c.table.name}.{c.name}" for c in columns}
    assert "groups.name" in named and len(named) > 20  # found by walking, not listed
    missed: list[str] = []
    for column in columns:
        kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
        length = getattr(kind, "length", None)
        if length is not None and length < len(ANN):
            continue  # cannot hold this id (nor anything longer than it)
        text = f"ask {ANN}"[-length:] if length else f"please ask {ANN} about it"
        value: Any = [text] if isinstance(kind, JSON) else text
        async with database.sessions() as session:
            transaction = await session.begin()
            try:
                row = await RowMaker(session).insert(column.table, {column.name: value})
                await forget_everything(session, ANN, ANN_KEY, NOW)
                session.expunge_all()
                key = [column.table.c[c.name] == row[c.name]
                       for c in column.table.primary_key.columns]
                left = (await session.execute(select(column).where(*key))).first()
                if left is not None and holds_person(left[0]):
                    missed.append(f"{column.table.name}.{column.name}")
            finally:
                await transaction.rollback()
    assert missed == []
