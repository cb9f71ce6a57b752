"""Joining a room: remember whose DM it is, and say hello once to a group that brought
the bot into its own chat (never in rooms the bot made itself, never twice)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from bot.host import Host
from bot.transport.base import TransportError
from storage import outbox, rooms, state

GREETING = (
    "Hello, I'm Grapevine, the community groups' helper bot.\n"
    "I record who talks to whom and when (message-flow metadata), never what anyone writes.\n"
    "Type {prefix}privacy for what that means and how to opt out, {prefix}help for commands."
)


async def joined(host: Host, room_id: str, *, is_direct: bool) -> None:
    """Record the join (and queue the greeting) in one transaction; the caller wakes
    the outbox after it commits."""
    await joined_many(host, [(room_id, is_direct)])


async def joined_many(host: Host, joins: Sequence[tuple[str, bool]]) -> None:
    """Record rooms joined together (one sync batch of a mass join) in one transaction.

    A transaction per room held the sync loop, and SQLite's write lock, long enough
    for a person's command in the same batch to wait seconds (issue 20); the reads a
    room needs (its creator, a DM's members) are made before the transaction opens."""
    transport = host.transport
    plans: list[tuple[str, bool, bool, list[str]]] = []
    for room_id, is_direct in joins:
        # Rooms the bot made itself (the room tree, case rooms, DMs) are not greeted:
        # the greeting is for groups bringing it into their own chats.
        own_room = is_direct or await created_by_me(host, room_id)
        # A DM someone opened with the bot is where their offers and reminders should go.
        others: list[str] = []
        if is_direct:
            with contextlib.suppress(TransportError):
                others = [u for u in await transport.members(room_id) if u != transport.user_id]
        plans.append((room_id, is_direct, own_room, others))
    if not plans:
        return
    async with host.db.transaction() as session:
        now = host.clock.now()
        for room_id, is_direct, own_room, others in plans:
            if len(others) == 1:
                await state.remember_direct_room(session, others[0], room_id)
            known = await rooms.get(session, room_id)
            room = await rooms.joined(session, room_id, now, is_direct=is_direct)
            if known is None and not own_room and room.greeted_at is None:
                room.greeted_at = now
                await outbox.enqueue(
                    session, now=now, room_id=room_id, kind="greeting",
                    body=GREETING.format(prefix=host.settings.bot.prefix),
                    dedupe_key=f"greeting:{room_id}",
                )


async def created_by_me(host: Host, room_id: str) -> bool:
    """From the room state kept from sync (read from the server only if never seen)."""
    return await host.room_creator(room_id) == host.transport.user_id
