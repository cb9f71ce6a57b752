"""Taking personal data out of a room: a message carrying it is redacted once the
command that stored it has committed; where the bot lacks the power to redact, the
sender is told by DM to delete it themselves.

In a shared room, the command's answer to the sender says how that went, in one DM: it is queued
with the command (so it is never lost) but held until the redaction has been tried,
then given the outcome and let go. Were it written before the attempt, a reply saying
"I removed your message" would be followed, when the bot has no power there, by a
second one saying it could not. Should the bot stop between the commit and the
attempt, the held answer goes out by itself a little later, saying only what is
true either way (``UNCONFIRMED``).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any

from bot.events import Incoming
from bot.host import Host
from bot.transport.base import TransportError
from storage import outbox

log = logging.getLogger("grapevine")

REMOVED = "I removed your message from the chat."
UNREDACTED = ("I stored what you sent, but I couldn't remove your message from "
              "the room (I need moderator power there). Please delete it "
              "yourself, and send personal details to me here instead.")
UNCONFIRMED = "If your message is still showing in the chat, please delete it yourself."
# How long an answer waits for the attempt before it goes without its outcome (the
# attempt runs right after the commit; this is only for a bot stopped in between).
HOLD = timedelta(minutes=2)


@dataclass
class Redaction:
    """One message to redact after its command commits, and the answers to its sender
    (outbox row ids) that wait to carry the outcome; the first one carries it."""

    host: Host
    message: Incoming
    held: list[int] = field(default_factory=list)

    def hold(self, fields: MutableMapping[str, Any], now: datetime) -> bool:
        """Make an answer about to be queued wait for the outcome if it goes to the
        sender's DM; True if held. (A message in the DM itself is removed all the same,
        but nobody else saw it there, so its answers are not held for that.)"""
        if fields.get("to_user") != self.message.sender:
            return False
        fields["not_before"] = max(fields.get("not_before") or now, now + HOLD)
        if not self.held:
            fields["body"] = _with(fields["body"], UNCONFIRMED)
            if fields.get("html"):
                fields["html"] = _with_html(fields["html"], UNCONFIRMED)
        return True

    async def run(self) -> None:
        """Try the redaction, then let the held answers go, the first saying what happened."""
        removed = True
        try:
            await self.host.transport.redact(self.message.room_id, self.message.event_id,
                                             "personal data stored")
        except TransportError as exc:
            # Usually no power to redact here (it needs 50): the person must know
            # their details are still on show, and how to take them down.
            log.warning("could not redact %s: %s", self.message.event_id, exc.errcode)
            removed = False
        outcome = REMOVED if removed else UNREDACTED
        async with self.host.db.transaction() as session:
            now = self.host.clock.now()
            rows = await outbox.unsent_by_id(session, self.held)
            if rows:
                first = rows[0]
                first.body = _with(first.body.removesuffix("\n" + UNCONFIRMED), outcome)
                if first.html:
                    first.html = _with_html(
                        first.html.removesuffix(_html_line(UNCONFIRMED)), outcome)
                for row in rows:
                    row.not_before = now
            elif not removed:
                # No answer waiting (none was due, or it has gone): tell them on their own.
                await outbox.enqueue(
                    session, now=now, to_user=self.message.sender, kind="dm",
                    dedupe_key=f"unredacted:{self.message.event_id}", body=UNREDACTED,
                )
        self.host.queued()


def _with(body: str, sentence: str) -> str:
    return f"{body}\n{sentence}"


def _html_line(sentence: str) -> str:
    return f"<br>{escape(sentence)}"


def _with_html(html: str, sentence: str) -> str:
    return html + _html_line(sentence)
