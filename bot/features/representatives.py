"""Who represents a group: the joined members with power 50+ in the group's own room.

Read live (a room's admins change), once per command, never stored; read before the
command's transaction, never inside it (bot.prefetch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot import prefetch
from bot.transport.base import TransportError
from storage import groups
from storage import mediation as cases

if TYPE_CHECKING:
    from bot.host import Host


class Reps:
    """Representatives of groups, looked up once per command (a room's admins change)."""

    def __init__(self, app: Host, session: AsyncSession) -> None:
        self.app = app
        self.session = session
        self._cache: dict[int, frozenset[str]] = {}

    async def of(self, group_id: int) -> frozenset[str]:
        if group_id not in self._cache:
            self._cache[group_id] = await self._lookup(group_id)
        return self._cache[group_id]

    async def _lookup(self, group_id: int) -> frozenset[str]:
        group = await groups.by_id(self.session, group_id)
        if group is None or group.room_id is None:
            return frozenset()
        try:
            members = await prefetch.members(self.app, group.room_id)
            levels = await prefetch.power_levels(self.app, group.room_id)
        except TransportError:
            return frozenset()
        # Not the bot, nor a bridge's bot (it holds power in every portal room it runs).
        return frozenset(u for u in members
                         if not self.app.is_ignored_sender(u) and levels.level(u) >= 50)

    async def groups_of(self, case_id: int, user_id: str) -> list[cases.Party]:
        """The parties of a case that ``user_id`` represents."""
        return [p for p in await cases.parties(self.session, case_id)
                if user_id in await self.of(p.group_id)]
