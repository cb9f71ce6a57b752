"""Encrypted rooms when the bot runs without encryption: say so once, rather than go deaf.

With ``[matrix] encryption = false`` the bot cannot read an end-to-end
encrypted room (a DM from Element is one by default), and people would wait
for answers that never come. When it learns a room is encrypted (the
``m.room.encryption`` state, on joining or later), it says in that room, once
ever, that it cannot read it and what to do instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.events import StateChange
from storage import outbox

if TYPE_CHECKING:
    from bot.host import Host

CANNOT_READ = (
    "This room is end-to-end encrypted and I'm running without encryption, so I can't read "
    "anything said here. Talk to me in an unencrypted room, or ask whoever runs me to turn "
    "encryption on."
)


def notice_key(room_id: str) -> str:
    return f"cannot-read:{room_id}"


def install(app: Host) -> None:
    def wants(change: StateChange) -> bool:
        return change.event_type == "m.room.encryption" and not app.settings.matrix.encryption

    async def on_state(session: AsyncSession, change: StateChange) -> None:
        # Not an own post (it answers being brought in): never capped or held for the night.
        await outbox.enqueue(session, now=app.clock.now(), room_id=change.room_id,
                             kind="cannot-read", body=CANNOT_READ,
                             dedupe_key=notice_key(change.room_id))

    app.hooks.add_state(wants, on_state)
