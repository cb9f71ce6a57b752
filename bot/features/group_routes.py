"""How someone can reach a listed group, from the network they are on.

A raw room id is useless to a person, and a Matrix link is useless to someone
on WhatsApp or IRC: a Matrix person gets the room's alias (or a matrix.to link
when the room is public but has no alias); everyone else is told how to ask
through the bot. The alias and join rule come from the room state kept from
sync (``bot.roomstate``), which follows their changes: a listing of many groups
makes no server call, and none inside the command's transaction. A room the bot
has no copy of yet gives no route (the asker is told how to ask through the bot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from storage.groups import Group

if TYPE_CHECKING:
    from bot.host import Host

OPEN_RULES = frozenset({"public", "knock"})


def matrix_route(host: Host, room_id: str) -> str | None:
    """The room's alias, else a matrix.to link if anyone may join or knock; else None."""
    kept = host.room_states
    alias = kept.alias(room_id)
    if alias:
        return alias
    if kept.join_rule(room_id) in OPEN_RULES:
        server = room_id.partition(":")[2] or host.transport.server_name
        return f"https://matrix.to/#/{quote(room_id, safe='')}?via={quote(server, safe='')}"
    return None


def route_for(host: Host, group: Group, *, on_matrix: bool) -> str | None:
    """A route the asker can use directly, or None (then they ask through the bot)."""
    if group.room_id is None or not on_matrix:
        return None
    return matrix_route(host, group.room_id)
