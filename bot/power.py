"""Power levels read correctly for every room version, including v12 creators.

matrix-nio's helpers predate room v12 (creators hold unlimited power and are
absent from ``users``), so the bot reads power from the raw state instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Room versions in which creators outrank everyone (MSC4289); later versions inherit it.
_CREATOR_PRIVILEGE_VERSIONS = {"org.matrix.hydra.11"}

ACTION_DEFAULTS = {"kick": 50, "ban": 50, "redact": 50, "invite": 0}


def creators_are_privileged(room_version: str) -> bool:
    if room_version in _CREATOR_PRIVILEGE_VERSIONS:
        return True
    return room_version.isdigit() and int(room_version) >= 12


@dataclass(frozen=True)
class PowerLevels:
    content: Mapping[str, Any] = field(default_factory=dict)
    creators: frozenset[str] = frozenset()
    # Before v12 a room with no power-levels event gives its creator 100.
    legacy_creator: str | None = None

    @classmethod
    def from_state(
        cls, create_event: Mapping[str, Any] | None, power_content: Mapping[str, Any] | None
    ) -> PowerLevels:
        """``create_event`` is the whole m.room.create event (its sender is the creator)."""
        create_event = create_event or {}
        create = create_event.get("content", {})
        version = str(create.get("room_version", "1"))
        creator = create_event.get("sender") or create.get("creator")
        if creators_are_privileged(version):
            extra = create.get("additional_creators") or []
            creators = frozenset([c for c in [creator, *extra] if isinstance(c, str)])
            return cls(power_content or {}, creators)
        return cls(power_content or {}, frozenset(), creator if power_content is None else None)

    def level(self, user_id: str) -> float:
        if user_id in self.creators:
            return math.inf
        users = self.content.get("users") or {}
        if user_id in users:
            return _int(users[user_id], 0)
        if self.legacy_creator == user_id:
            return 100
        return _int(self.content.get("users_default"), 0)

    def required(self, action: str) -> int:
        """The level an action (kick, ban, redact, invite) needs."""
        return _int(self.content.get(action), ACTION_DEFAULTS[action])

    def can(self, user_id: str, action: str) -> bool:
        return self.level(user_id) >= self.required(action)

    def required_for_state(self, event_type: str) -> int:
        events = self.content.get("events") or {}
        if event_type in events:
            return _int(events[event_type], 50)
        return _int(self.content.get("state_default"), 50)

    def can_send_state(self, user_id: str, event_type: str) -> bool:
        return self.level(user_id) >= self.required_for_state(event_type)

    def with_users(self, levels: Mapping[str, int | None]) -> dict[str, Any]:
        """A whole new power-levels content (read-modify-write): set or, with None, remove users.

        Creators are skipped in v12 rooms: listing them is refused by the server.
        """
        content = {key: value for key, value in self.content.items()}
        users = dict(content.get("users") or {})
        for user_id, level in levels.items():
            if user_id in self.creators:
                continue
            if level is None:
                users.pop(user_id, None)
            else:
                users[user_id] = level
        content["users"] = users
        return content


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
