"""The one answer to a command the chat server kept failing us on.

The router tries a command whose preparation fails on a transient server error
again with backoff; when it gives up, the person is told once (and the event is
recorded as handled with that answer), rather than hearing nothing.
"""

from __future__ import annotations

from bot.events import Incoming
from bot.host import Host
from storage import outbox, state

GAVE_UP = ("Sorry, I couldn't handle that just now: the chat server kept failing. "
           "Please send it again in a few minutes.")


async def apologise(host: Host, message: Incoming) -> None:
    """Answer ``message`` with :data:`GAVE_UP`, unless it was handled meanwhile."""
    async with host.db.transaction() as session:
        if await state.is_handled(session, message.event_id):
            return
        now = host.clock.now()
        await state.mark_handled(session, message.event_id, message.room_id, now)
        await outbox.enqueue(
            session, now=now, room_id=message.room_id, kind="reply", body=GAVE_UP,
            extra={"m.relates_to": {"m.in_reply_to": {"event_id": message.event_id}}},
        )
    host.queued()
