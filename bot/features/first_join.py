"""Messages held for a room's first join go out when someone joins it.

The outbox holds the first message in a room the bot has just made (a new DM, a
case room's introduction) until a person joins, so that every server in the room
receives it live (see :mod:`bot.runtime.outbox_worker`). This hook sees the join
come down the sync and releases them; the app then wakes the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import StateChange
from storage import outbox

if TYPE_CHECKING:
    from bot.host import Host


def install(app: Host) -> None:
    def wants(change: StateChange) -> bool:
        # Only rooms the bot made hold a first message: others' member churn costs nothing.
        return (change.event_type == "m.room.member"
                and change.content.get("membership") == "join"
                and change.state_key != app.transport.user_id
                and app.kept_creator(change.room_id) in (None, app.transport.user_id))

    async def on_state(session: AsyncSession, change: StateChange) -> None:
        await outbox.release_joined(session, change.room_id)

    app.hooks.add_state(wants, on_state)
