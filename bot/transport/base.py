"""The one small interface the features use to talk to chat.

Two implementations: :mod:`bot.transport.matrix` (matrix-nio against a
homeserver) and :mod:`bot.transport.world` (in-process, for ``grapevine shell``
and fast tests). Errors are raised, never returned: a caller cannot forget to check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class TransportError(Exception):
    """The homeserver (or world) refused; ``errcode`` is the Matrix error code."""

    def __init__(self, errcode: str, message: str = "", *, status: int | None = None) -> None:
        self.errcode = errcode
        self.message = message
        self.status = status
        super().__init__(f"{errcode}: {message}" if message else errcode)


class RateLimited(TransportError):
    def __init__(self, retry_after_ms: int | None, message: str = "") -> None:
        super().__init__("M_LIMIT_EXCEEDED", message, status=429)
        self.retry_after_ms = retry_after_ms


class UnknownToken(TransportError):
    """The access token no longer works (M_UNKNOWN_TOKEN): log in afresh."""


# errcode for failures that never reached a homeserver answer (reset, refused, timed out)
NETWORK = "GV_NETWORK"


def is_transient(err: TransportError) -> bool:
    """Worth trying again after a wait; any other refusal is not going to change."""
    retryable = err.errcode in (NETWORK, "M_LIMIT_EXCEEDED", "M_UNKNOWN_TOKEN")
    return retryable or (err.status or 0) >= 500


@dataclass(frozen=True)
class RoomSpec:
    """Everything needed to create a room or space in one request."""

    name: str
    alias_localpart: str | None = None
    topic: str | None = None
    space: bool = False
    # Restricted join: members of these rooms (spaces) may join without an invite.
    restricted_to: Sequence[str] = ()
    invite: Sequence[str] = ()
    # Extra users' power levels; the creator (the bot) must not be listed in v12 rooms.
    power_users: Mapping[str, int] = field(default_factory=dict)
    power_overrides: Mapping[str, Any] = field(default_factory=dict)
    federate: bool = True
    direct: bool = False
    encrypted: bool = False
    public: bool = False
    initial_state: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class RoomInfo:
    room_id: str
    name: str | None
    member_count: int
    encrypted: bool
    is_direct: bool


class Transport(Protocol):
    """What the features may do in chat. Every method raises TransportError on refusal."""

    @property
    def user_id(self) -> str: ...

    @property
    def server_name(self) -> str: ...

    async def send(
        self, room_id: str, content: Mapping[str, Any], *, txn_id: str | None = None,
        event_type: str = "m.room.message",
    ) -> str:
        """Send an event; the same ``txn_id`` twice sends once. Returns the event id."""
        ...

    async def upload(self, data: bytes, mime: str, filename: str, *, room_id: str | None = None
                     ) -> dict[str, Any]:
        """Upload a file for ``room_id``; returns the content keys that point to it.

        ``{"url": "mxc://..."}`` in plain rooms; in encrypted rooms the file is
        encrypted first and ``{"file": {"url", "key", "iv", "hashes", "v"}}`` comes back.
        """
        ...

    async def create_room(self, spec: RoomSpec) -> str: ...

    async def put_state(
        self, room_id: str, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> str: ...

    async def get_state(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        """The content of one state event, or None when there is none."""
        ...

    async def room_state(self, room_id: str) -> list[dict[str, Any]]:
        """Every current state event of the room (type, state_key, sender, content)."""
        ...

    async def room_info(self, room_id: str) -> RoomInfo: ...

    async def members(self, room_id: str) -> dict[str, str | None]:
        """Joined members and their display names."""
        ...

    async def invite(self, room_id: str, user_id: str) -> None: ...

    async def kick(self, room_id: str, user_id: str, reason: str = "") -> None: ...

    async def redact(self, room_id: str, event_id: str, reason: str = "") -> None: ...

    async def join(self, room: str, via: Sequence[str] = ()) -> str:
        """Join by id (with ``via`` servers) or alias; returns the room id."""
        ...

    async def leave(self, room_id: str) -> None: ...

    async def resolve_alias(self, alias: str) -> str | None: ...

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The room's latest timeline events, newest first (to find the bot's own sends)."""
        ...

    async def direct_room(self, user_id: str) -> str:
        """The bot's direct-message room with ``user_id``, made (and remembered) if need be."""
        ...


def text_content(
    body: str,
    html: str | None = None,
    *,
    mentions: Sequence[str] = (),
    reply_to: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An m.text message with a plain body: bridges drop m.notice and mangle HTML."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": body}
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html
    content["m.mentions"] = {"user_ids": list(mentions)} if mentions else {}
    if reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    if extra:
        content.update(extra)
    return content
