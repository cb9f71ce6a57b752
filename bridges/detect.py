"""Which network a room is bridged to, from ``m.bridge`` / ``uk.half-shot.bridge`` state.

The event (MSC2346) can be sent by anyone with enough power, so it counts only
when both its sender and its ``bridgebot`` belong to one configured appservice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bridges.namespaces import Namespaces
from storage import rooms

log = logging.getLogger(__name__)

BRIDGE_EVENT_TYPES = ("m.bridge", "uk.half-shot.bridge")


@dataclass(frozen=True)
class BridgeInfo:
    """A believed bridge-info event. ``network`` is the protocol id (whatsapp, telegram ...)."""

    network: str
    bridge_id: str
    bridgebot: str
    channel_id: str | None = None
    channel_name: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_bridge_event(
    event_type: str, sender: str, content: Mapping[str, Any], namespaces: Namespaces
) -> BridgeInfo | None:
    """The bridge an event announces, or None when it is not one, is forged or is malformed."""
    if event_type not in BRIDGE_EVENT_TYPES:
        return None
    bridge = namespaces.bridge_of(sender)
    bridgebot = _text(content.get("bridgebot")) or sender
    if bridge is None or not bridge.owns(bridgebot):
        log.info("ignoring %s from %s: not a configured bridge", event_type, sender)
        return None
    protocol = content.get("protocol")
    network = _text(protocol.get("id")) if isinstance(protocol, Mapping) else None
    if network is None:
        return None
    channel = content.get("channel")
    channel = channel if isinstance(channel, Mapping) else {}
    return BridgeInfo(
        network=network.lower(), bridge_id=bridge.id, bridgebot=bridgebot,
        channel_id=_text(channel.get("id")), channel_name=_text(channel.get("displayname")),
    )


def network_from_state(events: Iterable[Mapping[str, Any]], namespaces: Namespaces) -> str | None:
    """The network a room's full state names (any state key, either event type)."""
    for event in events:
        info = read_bridge_event(
            str(event.get("type", "")), str(event.get("sender", "")),
            event.get("content") or {}, namespaces,
        )
        if info is not None:
            return info.network
    return None


async def record_network(session: AsyncSession, room_id: str, network: str | None) -> bool:
    """Store the room's network; True when it changed. Rooms the bot never joined are skipped."""
    room = await rooms.get(session, room_id)
    if room is None:
        return False
    if room.network == network:
        return False
    room.network = network
    return True


def network_of_member(user_id: str, namespaces: Namespaces) -> str | None:
    """The fallback when a room has no bridge event: a bridge's user in it names the network.

    Its ghosts join when remote people are there, its bot when it plumbs the room
    (heisenbridge, which sends no ``m.bridge``). The network is the one the bridge's
    registration names or its id is known for (bridges.known), else its id. A believed
    ``m.bridge`` event wins over this guess.
    """
    bridge = namespaces.bridge_of(user_id)
    if bridge is None:
        return None
    return bridge.network or bridge.id.lower()
