"""How someone can reach a listed group, from the network they are on.

A raw room id is useless to a person, and a Matrix link is useless to someone
on WhatsApp or IRC: a Matrix person gets the room's alias (or a matrix.to link
when the room is public but has no alias); everyone else is told how to ask
through the bot. The room's state is read live (aliases and join rules change).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from bot.transport.base import TransportError
from storage.groups import Group

if TYPE_CHECKING:
    from bot.transport.base import Transport

OPEN_RULES = frozenset({"public", "knock"})


async def matrix_route(transport: Transport, room_id: str) -> str | None:
    """The room's alias, else a matrix.to link if anyone may join or knock; else None."""
    try:
        state = await transport.room_state(room_id)
    except TransportError:
        return None
    alias: str | None = None
    rule = "invite"
    for event in state:
        content = event.get("content") or {}
        if event.get("type") == "m.room.canonical_alias" and event.get("state_key") == "":
            alias = content.get("alias") or alias
        elif event.get("type") == "m.room.join_rules" and event.get("state_key") == "":
            rule = str(content.get("join_rule") or rule)
    if alias:
        return str(alias)
    if rule in OPEN_RULES:
        server = room_id.partition(":")[2] or transport.server_name
        return f"https://matrix.to/#/{quote(room_id, safe='')}?via={quote(server, safe='')}"
    return None


async def route_for(transport: Transport, group: Group, *, on_matrix: bool) -> str | None:
    """A route the asker can use directly, or None (then they ask through the bot)."""
    if group.room_id is None or not on_matrix:
        return None
    return await matrix_route(transport, group.room_id)
