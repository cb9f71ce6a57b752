"""Every command answered exactly once while the network between the bot and Synapse fails.

A :class:`faultproxy.FaultProxy` between the bot and the real Synapse resets
connections (before and after the server handled the request), answers 502 or
delays one request in ten (seeded). Four people in two rooms send 200 commands;
each must get exactly one reply (replies name the command they answer), and the
bot must say nothing else: no apology, no double post.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nio
from botfixture import BotDatabases, RunningBot, make_bot_setup
from faultproxy import FAULTS, FaultProxy
from people import Person

from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.runtime.backoff import Backoff

COMMANDS_EACH = 50
WAIT = 150.0


async def history(person: Person, room_id: str) -> list[dict[str, Any]]:
    """Every message event in the room, read page by page from the server."""
    events: list[dict[str, Any]] = []
    start: str | None = None
    while True:
        response = await person.client.room_messages(room_id, start=start, limit=500)
        assert isinstance(response, nio.RoomMessagesResponse), response
        events += [e.source for e in response.chunk if e.source.get("type") == "m.room.message"]
        if not response.chunk or not response.end or response.end == start:
            return events
        start = response.end


def replies_per_command(events: list[dict[str, Any]], bot: str) -> Counter[str]:
    answered: Counter[str] = Counter()
    for event in events:
        if event["sender"] == bot:
            relates = event["content"].get("m.relates_to") or {}
            answered[(relates.get("m.in_reply_to") or {}).get("event_id", "none")] += 1
    return answered


async def test_two_hundred_commands_through_a_failing_network_get_one_answer_each(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, person_factory: Any,
    tmp_path: Path, bot_databases: BotDatabases,
) -> None:
    upstream = urlsplit(synapse.base_url)
    assert upstream.hostname is not None and upstream.port is not None
    proxy = await FaultProxy(upstream.hostname, upstream.port, seed=12).start()
    setup = await make_bot_setup(
        synapse, synapse_admin, tmp_path / "bot", bot_databases,
        matrix={"homeserver": proxy.url, "encryption": False},
        bot={"commands_per_minute": 100_000},
    )
    bot = await RunningBot(setup).start()
    try:
        assert bot.service is not None and bot.service.sync is not None
        bot.service.sync.backoff.initial, bot.service.sync.backoff.cap = 0.2, 2.0
        bot.app.retry_backoff = lambda: Backoff(initial=0.2, cap=2.0)
        people: list[Person] = []
        for name in ("Ada", "Mo", "Bea", "Cy"):
            person = await person_factory(name, e2e=False)
            await synapse.override_ratelimit(person.user_id, synapse_admin.access_token)
            people.append(person)
        rooms = []
        for host, guest, name in ((people[0], people[1], "Wisbech"),
                                  (people[2], people[3], "Chatteris")):
            room = await host.create_room(name=name, invite=[bot.user_id, guest.user_id])
            await guest.join(room)
            await host.wait_for_message(room, sender=bot.user_id,
                                        contains="never what anyone writes", timeout=30)
            rooms.append(room)
        speakers = [(people[0], rooms[0]), (people[1], rooms[0]),
                    (people[2], rooms[1]), (people[3], rooms[1])]

        proxy.rate = 0.1
        asked: dict[str, list[str]] = {room: [] for room in rooms}

        async def talk(person: Person, room: str) -> None:
            for i in range(COMMANDS_EACH):
                asked[room].append(await person.send(room, "!about" if i % 2 else "!help"))

        await asyncio.gather(*(talk(person, room) for person, room in speakers))
        assert sum(len(ids) for ids in asked.values()) == 4 * COMMANDS_EACH

        hosts = {rooms[0]: people[0], rooms[1]: people[2]}
        deadline = time.monotonic() + WAIT
        while True:
            waiting = []
            for room, host in hosts.items():
                answered = replies_per_command(await history(host, room), bot.user_id)
                waiting += [e for e in asked[room] if answered[e] == 0]
            if not waiting:
                break
            assert time.monotonic() < deadline, f"unanswered: {waiting}; {proxy.counts}"
            await asyncio.sleep(2.0)
        proxy.rate = 0.0
        await asyncio.sleep(1.0)  # a second copy of any reply would arrive by now
        for room, host in hosts.items():
            said = replies_per_command(await history(host, room), bot.user_id)
            assert {e: said[e] for e in asked[room]} == dict.fromkeys(asked[room], 1)
            assert sum(said.values()) == len(asked[room]) + 1  # and the greeting, nothing else
        faults = sum(proxy.counts[f] for f in FAULTS)
        assert all(proxy.counts[f] > 0 for f in FAULTS), proxy.counts
        assert faults >= 0.05 * sum(proxy.counts.values()), proxy.counts
    finally:
        await bot.stop()
        await proxy.stop()
