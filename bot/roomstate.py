"""What the bot knows of each room's state, kept from sync instead of downloaded.

The sync loop feeds every state event it sees (state blocks and timeline
state events) through :meth:`RoomStates.apply`; only the few types the bot
reads are kept (creation, power levels, encryption, and the alias and join
rule that say how people can reach a group's room). Everything else, above
all the membership events of busy and bridged rooms, costs nothing. Changes
are written to the database with the sync token (:meth:`RoomStates.save`), so
a restart loads every room at once (:meth:`RoomStates.load`) and asks the
homeserver for none. A room the bot has no copy of (joined before this was
kept, or an in-process world) is read once by whoever needs it and
remembered through :meth:`RoomStates.remember`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.power import PowerLevels
from storage import roomstate

CREATE = "m.room.create"
POWER_LEVELS = "m.room.power_levels"
ENCRYPTION = "m.room.encryption"
CANONICAL_ALIAS = "m.room.canonical_alias"
JOIN_RULES = "m.room.join_rules"
KEPT_TYPES = frozenset({CREATE, POWER_LEVELS, ENCRYPTION, CANONICAL_ALIAS, JOIN_RULES})

# (type, state_key) -> {"type", "state_key", "sender", "content"}
_Room = dict[tuple[str, str], dict[str, Any]]


def _kept(event: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = event.get("type")
    if kind not in KEPT_TYPES or event.get("state_key") != "":
        return None
    content = event.get("content")
    return {
        "type": kind,
        "state_key": "",
        "sender": str(event.get("sender") or ""),
        "content": dict(content) if isinstance(content, Mapping) else {},
    }


class RoomStates:
    """Per-room creation, power levels, encryption, alias and join rule; in memory,
    saved with the sync token."""

    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}
        self._changed: set[str] = set()
        # Written in a transaction that has not reported its commit yet.
        self._saving: set[str] = set()

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)

    # -- feeding ------------------------------------------------------------------------

    def apply(self, room_id: str, events: Iterable[Mapping[str, Any]]) -> bool:
        """Take the kept state events (raw event dicts, in order); True if anything changed."""
        room = self._rooms.get(room_id)
        changed = False
        for event in events:
            kept = _kept(event)
            if kept is None:
                continue
            if room is None:
                room = self._rooms.setdefault(room_id, {})
            key = (kept["type"], "")
            if room.get(key) != kept:
                room[key] = kept
                changed = True
        if changed:
            self._changed.add(room_id)
        return changed

    def remember(self, room_id: str, events: Iterable[Mapping[str, Any]]) -> None:
        """A room's whole state read from the homeserver: replaces what was kept."""
        self._rooms[room_id] = {}
        self.apply(room_id, events)
        self._changed.add(room_id)

    def forget(self, room_id: str) -> None:
        """The bot left: nothing of the room is kept."""
        if self._rooms.pop(room_id, None) is not None:
            self._changed.add(room_id)

    # -- reading ------------------------------------------------------------------------

    def event(self, room_id: str, event_type: str) -> dict[str, Any] | None:
        room = self._rooms.get(room_id)
        return None if room is None else room.get((event_type, ""))

    def power_levels(self, room_id: str) -> PowerLevels | None:
        """None when the room's creation event has not been seen (nothing to go on)."""
        create = self.event(room_id, CREATE)
        if create is None:
            return None
        power = self.event(room_id, POWER_LEVELS)
        return PowerLevels.from_state(create, power["content"] if power else None)

    def creator(self, room_id: str) -> str | None:
        create = self.event(room_id, CREATE)
        return create["sender"] if create else None

    def alias(self, room_id: str) -> str | None:
        event = self.event(room_id, CANONICAL_ALIAS)
        alias = event["content"].get("alias") if event else None
        return str(alias) if alias else None

    def join_rule(self, room_id: str) -> str | None:
        event = self.event(room_id, JOIN_RULES)
        rule = event["content"].get("join_rule") if event else None
        return str(rule) if rule else None

    def encrypted(self, room_id: str) -> bool | None:
        """None when the room is unknown, else whether it has m.room.encryption."""
        if room_id not in self._rooms:
            return None
        return self.event(room_id, ENCRYPTION) is not None

    # -- the database -------------------------------------------------------------------

    async def load(self, session: AsyncSession) -> None:
        for room_id, events in (await roomstate.load_all(session)).items():
            self._rooms[room_id] = {}
            self.apply(room_id, events)
        self._changed.clear()

    @property
    def unsaved(self) -> int:
        return len(self._changed | self._saving)

    async def save(self, session: AsyncSession, now: datetime) -> int:
        """Write the rooms changed since the last committed save; returns how many.

        Call :meth:`saved` once the transaction has committed; until then the
        same rooms are written again by the next save.
        """
        self._saving |= self._changed
        self._changed = set()
        if not self._saving:
            return 0
        changed = {
            room_id: list(self._rooms[room_id].values()) if room_id in self._rooms else None
            for room_id in self._saving
        }
        await roomstate.save(session, changed, now)
        return len(changed)

    def saved(self) -> None:
        self._saving.clear()
