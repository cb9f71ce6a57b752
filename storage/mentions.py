"""Erasure from free text: any text or JSON column that names a person.

The forget walk of each module covers the columns that hold a person by design
(``user_id``, ``*_by``, annotated ones). But people type ids into free text too:
a mediation action's wording, a group's description, a notice's body, a reply
naming someone. This pass runs last in ``!privacy forget`` and replaces the
person's id wherever any such column still holds it, in every table, found from
the models, so a new table with a text column is covered without a line here.

Left alone, with reasons: primary and foreign keys (identities, not text),
columns in a unique constraint (forget of their own module makes them unique
without the person, e.g. outbox dedupe keys), columns a module keeps on purpose
(``info["kept_on_forget"]``), and strings too short to hold a Matrix id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import JSON, Column, MetaData, String, Table, Text, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from storage.personal import without

# "@a:b.c" at the shortest; a column shorter than this cannot name anyone.
SHORTEST_ID = 6


def free_text_columns(metadata: MetaData) -> Iterator[Column[Any]]:
    """Every column this pass scrubs (see the module docstring for what it leaves)."""
    for table in metadata.sorted_tables:
        unique = {c.name for constraint in table.constraints
                  if constraint.__class__.__name__ == "UniqueConstraint"
                  for c in getattr(constraint, "columns", ())}
        for column in table.columns:
            kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
            if not isinstance(kind, String | Text | JSON):
                continue
            length = getattr(kind, "length", None)
            if (column.primary_key or column.foreign_keys or column.unique
                    or column.name in unique or column.info.get("kept_on_forget")
                    or (length is not None and length < SHORTEST_ID)):
                continue
            yield column


async def forget_mentions(session: AsyncSession, user_id: str) -> int:
    """Replace ``user_id`` in every free-text column of every table; rows changed.
    One query per table finds its rows naming the person in any such column."""
    import storage.all_models  # noqa: F401 (every table on the metadata; here, not above: it imports us)
    from storage.models import Base

    by_table: dict[Table, list[Column[Any]]] = {}
    for column in free_text_columns(Base.metadata):
        by_table.setdefault(column.table, []).append(column)
    changed = 0
    for table, columns in by_table.items():
        keys = list(table.primary_key.columns)
        if not keys:
            continue
        found = await session.execute(select(*keys, *columns).where(or_(
            *[cast(c, Text).contains(user_id, autoescape=True) for c in columns])))
        for row in found.all():
            key, values = row[:len(keys)], row[len(keys):]
            fresh = {c.name: _fitted(c, without(v, user_id))
                     for c, v in zip(columns, values, strict=True)
                     if v is not None and user_id in str(v)}
            await session.execute(
                table.update().where(*[k == v for k, v in zip(keys, key, strict=True)])
                .values(fresh))
            changed += 1
    return changed


def _fitted(column: Column[Any], value: Any) -> Any:
    """A scrubbed string cut to the column's length (the placeholder is longer than
    some ids); other values as they are."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    length = getattr(kind, "length", None)
    if isinstance(value, str) and length is not None and len(value) > length:
        return value[:length]
    return value
