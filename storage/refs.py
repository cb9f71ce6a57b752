"""Short ids: the letter and number by which people name a row in chat (K12, P3, L40, I7).

The number is the row's primary key, so a ref needs no counter of its own; what each
kind of record adds is only its letter, and (for records that can be withdrawn)
whether a withdrawn row can still be found by its ref. Commands parse the ref with
``bot.commands.values.Ref``; storage formats it and finds the row here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from sqlalchemy.orm import Mapped


class Referenced:
    """Mixin for a model shown in chat as ``LETTER<id>``."""

    LETTER: ClassVar[str]
    if TYPE_CHECKING:
        id: Mapped[int]

    @classmethod
    def ref_of(cls, number: int) -> str:
        """The ref of the row with this id, for text about a row not loaded (exports)."""
        return f"{cls.LETTER}{number}"

    @property
    def ref(self) -> str:
        return self.ref_of(self.id)

    @property
    def findable(self) -> bool:
        """Whether its ref still finds it; a record kept after removal says no."""
        return True


R = TypeVar("R", bound=Referenced)


async def by_number(session: AsyncSession, model: type[R], number: int) -> R | None:
    """The row a ref names (its number, as ``Ref`` parsed it), or None if there is none
    or it was removed."""
    row = await session.get(model, number)
    return row if row is not None and row.findable else None
