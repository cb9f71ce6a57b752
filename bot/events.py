"""What the bot hears, as plain data: the same for Matrix and for the in-process world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Incoming:
    """A message event (m.text, m.notice, m.emote ...) in a room."""

    event_id: str
    room_id: str
    sender: str
    body: str
    timestamp: datetime
    msgtype: str = "m.text"
    # The event this one replies to (m.relates_to / m.in_reply_to), if any.
    reply_to: str | None = None
    # Edits (m.replace) carry the event they replace; the bot does not act on them.
    replaces: str | None = None
    content: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reaction:
    event_id: str
    room_id: str
    sender: str
    target_event_id: str
    key: str
    timestamp: datetime


@dataclass(frozen=True)
class Receipt:
    """A read receipt; the bot keeps only counts per room per notice, never per person."""

    room_id: str
    sender: str
    event_id: str
    timestamp: datetime


@dataclass(frozen=True)
class StateChange:
    """A state event (membership, power levels, bridge info ...) seen in a room."""

    event_id: str
    room_id: str
    sender: str
    event_type: str
    state_key: str
    content: Mapping[str, Any]
    timestamp: datetime


@dataclass(frozen=True)
class Invite:
    room_id: str
    inviter: str
    is_direct: bool = False


class EventSink(Protocol):
    """What the runtime (Matrix sync loop or the in-process world) delivers events to.

    The runtime decides nothing about meaning: it delivers each event once per
    sync (a replay after a crash may deliver again; the sink is idempotent on
    event ids) and never delivers timeline events from the very first sync.
    """

    async def on_message(self, message: Incoming) -> None: ...

    async def on_reaction(self, reaction: Reaction) -> None: ...

    async def on_receipt(self, receipt: Receipt) -> None: ...

    async def on_state(self, change: StateChange) -> None: ...

    async def on_joined(self, room_id: str, *, is_direct: bool) -> None: ...

    async def on_joined_many(self, joins: Sequence[tuple[str, bool]]) -> None:
        """Rooms joined in one sync batch, as ``(room_id, is_direct)``: recorded together."""
        ...

    async def on_left(self, room_id: str) -> None: ...


@dataclass(frozen=True)
class RoomContext:
    """What kind of room an event arrived in (from the rooms table, else the server once)."""

    room_id: str
    is_direct: bool
    network: str | None = None
