"""Taking personal data out of a room: a message carrying it is redacted once the
command that stored it has committed; where the bot lacks the power to redact, the
sender is told by DM to delete it themselves."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.events import Incoming
from bot.host import Host
from bot.transport.base import TransportError
from storage import outbox

log = logging.getLogger("grapevine")

UNREDACTED = ("I stored what you sent, but I couldn't remove your message from "
              "the room (I need moderator power there). Please delete it "
              "yourself, and send personal details to me here instead.")


def redaction(host: Host, message: Incoming) -> Callable[[], Awaitable[None]]:
    """The after-commit action that removes ``message`` from its room."""

    async def redact() -> None:
        try:
            await host.transport.redact(message.room_id, message.event_id,
                                        "personal data stored")
        except TransportError as exc:
            # Usually no power to redact here (it needs 50): the person must know
            # their details are still on show, and how to take them down.
            log.warning("could not redact %s: %s", message.event_id, exc.errcode)
            async with host.db.transaction() as session:
                await outbox.enqueue(
                    session, now=host.clock.now(), to_user=message.sender, kind="dm",
                    dedupe_key=f"unredacted:{message.event_id}", body=UNREDACTED,
                )
            host.queued()

    return redact
