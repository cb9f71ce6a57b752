"""Unreadable messages: opened when their key comes, else one plain notice per sender and room."""

from __future__ import annotations

from typing import Any, cast

import nio

from bot.runtime.undecryptable import GRACE, NOTICE, Undecryptable
from tests.clocks import ManualClock


class Keys:
    """A stand-in for nio's client: sessions it holds keys for, and key requests made."""

    def __init__(self) -> None:
        self.olm = object()
        self.sessions: set[str] = set()
        self.requested: list[str] = []

    def decrypt_event(self, event: nio.MegolmEvent) -> dict[str, Any]:
        if event.session_id not in self.sessions:
            raise nio.EncryptionError("no session")
        return {"event_id": event.event_id}

    async def request_room_key(self, event: nio.MegolmEvent) -> None:
        self.requested.append(event.session_id)


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str | None]] = []

    async def send(self, room_id: str, content: dict[str, Any], *, txn_id: str | None = None
                   ) -> str:
        self.messages.append((room_id, content["body"], txn_id))
        return "$sent"


def megolm(event_id: str, sender: str, session: str) -> nio.MegolmEvent:
    return nio.MegolmEvent.from_dict({
        "event_id": event_id, "sender": sender, "origin_server_ts": 0,
        "type": "m.room.encrypted", "room_id": "!r",
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x",
                    "sender_key": "k", "device_id": "D", "session_id": session}})


def setup() -> tuple[Undecryptable, Keys, Sent, ManualClock]:
    keys, sent, clock = Keys(), Sent(), ManualClock()
    return Undecryptable(cast(Any, keys), cast(Any, sent), clock), keys, sent, clock


async def test_a_late_key_opens_the_message_and_no_one_is_told() -> None:
    waiting, keys, sent, clock = setup()
    await waiting.add("!r", megolm("$1", "@ann:hs", "s1"))
    assert waiting.retry() == [] and keys.requested == ["s1"]

    keys.sessions.add("s1")
    clock.advance(seconds=5)
    assert waiting.retry() == [("!r", {"event_id": "$1"})]
    clock.advance(seconds=GRACE.total_seconds())
    await waiting.tell_overdue()
    assert sent.messages == [] and waiting.waiting == 0


async def test_each_sender_is_told_once_per_room_however_many_messages_stay_unreadable() -> None:
    waiting, _, sent, clock = setup()
    for n in range(3):
        await waiting.add("!r", megolm(f"$a{n}", "@ann:hs", "s1"))
    await waiting.add("!r", megolm("$b", "@bob:hs", "s2"))
    await waiting.add("!other", megolm("$c", "@ann:hs", "s3"))
    clock.advance(seconds=GRACE.total_seconds() - 1)
    await waiting.tell_overdue()
    assert sent.messages == []  # not yet: keys are often late

    clock.advance(seconds=2)
    await waiting.tell_overdue()
    await waiting.add("!r", megolm("$a9", "@ann:hs", "s1"))
    clock.advance(seconds=GRACE.total_seconds() + 1)
    await waiting.tell_overdue()

    assert sorted(room for room, _, _ in sent.messages) == ["!other", "!r", "!r"]
    assert {body for _, body, _ in sent.messages} == {NOTICE}
    assert "$" not in NOTICE and "session" not in NOTICE  # names nothing of the event
