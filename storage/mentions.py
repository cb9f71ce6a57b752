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

from sqlalchemy import JSON, Column, MetaData, String, Text, cast, select
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
    """Replace ``user_id`` in every free-text column of every table; rows changed."""
    import storage.all_models  # noqa: F401 (every table on the metadata; here, not above: it imports us)
    from storage.models import Base

    changed = 0
    for column in free_text_columns(Base.metadata):
        table = column.table
        keys = list(table.primary_key.columns)
        if not keys:
            continue
        found = await session.execute(
            select(*keys, column).where(cast(column, Text).contains(user_id, autoescape=True)))
        for *key, value in found.all():
            await session.execute(
                table.update().where(*[k == v for k, v in zip(keys, key, strict=True)])
                .values({column.name: without(value, user_id)}))
            changed += 1
    return changed
