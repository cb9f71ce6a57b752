"""Groups on another council's homeserver: the bot on ``home``, the people on ``away``.

Two Synapses federate on loopback with verified TLS (see twoservers.py). What the
people on ``away`` should see is what they would see on the bot's own server:
notices once, direct messages live in their /sync (not only by scrolling back),
case rooms they are really invited to, and rooms they are entitled to join.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from botfixture import RunningBot, bring_bot_in
from people import Person
from twoservers import FederatedBotFactory, Federation, PeopleOn

WAIT = 45.0
FOOD_NOTICE = ('!funding post https://example.org/food title="Food Fund" funder="Trust" '
               "deadline=+30d amount=500-5000 areas=fenland themes=food")


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def say(person: Person, room: str, bot: RunningBot, text: str, expect: str) -> str:
    """``person`` types ``text`` in ``room``; the bot's answer there containing ``expect``."""
    await person.send(room, text)
    event = await person.wait_for_message(room, sender=bot.user_id, contains=expect,
                                          timeout=WAIT)
    return str(event["content"]["body"])


async def dm_with(person: Person, bot: RunningBot) -> str:
    """A DM the person opens with the bot, once the bot has joined it."""
    room = await person.create_dm(bot.user_id, encrypted=False)

    async def bot_joined() -> bool:
        member = await person.state(room, "m.room.member", bot.user_id)
        return bool(member and member.get("membership") == "join")

    await until(bot_joined, "the bot to join the DM")
    return room


def bodies(person: Person, room: str, starting: str) -> list[str]:
    """What this person's /sync timeline brought from the room, starting with ``starting``."""
    return [str(e["content"].get("body")) for e in person.events
            if e.get("room_id") == room and e.get("type") == "m.room.message"
            and str(e.get("content", {}).get("body", "")).startswith(starting)]


async def subscribed_group(bot: RunningBot, ann: Person) -> str:
    """Ann's group room on ``away``, with the bot in it, registered and subscribed."""
    room = await bring_bot_in(ann, bot, "Wisbech Food Bank")
    registered = await say(ann, room, bot, '!group register name="Wisbech Food Bank" '
                           "type=charity area=wisbech themes=food size=small", "Registered")
    assert registered.startswith("Registered G1 Wisbech Food Bank")
    assert (await say(ann, room, bot, "!funding subscribe", "Subscribed")).startswith(
        "Subscribed")
    return room


async def group_and_coordinator(
    federation: Federation, factory: FederatedBotFactory, people_on: PeopleOn
) -> tuple[Person, Person, RunningBot, str, str]:
    """Ann's subscribed group room on ``away``; Cora, a coordinator on ``home``, and her DM."""
    ann = await people_on(federation.away, "Ann")
    cora = await people_on(federation.home, "Cora")
    bot = await factory(roles={"coordinators": [cora.user_id]})
    room = await subscribed_group(bot, ann)
    return ann, cora, bot, room, await dm_with(cora, bot)


async def test_a_group_room_on_another_server_is_served_as_a_local_one(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    ann, cora, bot, room, cora_dm = await group_and_coordinator(
        federation, federated_bot_factory, people_on)
    published = await say(cora, cora_dm, bot, FOOD_NOTICE, "published")
    assert published == "F1 published: going to 1 room now."
    heard = await ann.wait_for_message(room, sender=bot.user_id, contains="Funding F1",
                                       timeout=WAIT)
    assert "Food Fund" in heard["content"]["body"]
    await asyncio.sleep(1.0)  # a second copy would have come by now
    history = [e for e in await ann.messages(room, limit=100)
               if str(e.get("content", {}).get("body", "")).startswith("Funding F1")]
    assert len(history) == 1 and len(bodies(ann, room, "Funding F1")) == 1


async def test_a_notice_queued_while_the_other_server_is_down_arrives_once(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    ann, cora, bot, room, cora_dm = await group_and_coordinator(
        federation, federated_bot_factory, people_on)

    since = await ann.mark()
    async with federation.outage():
        await say(cora, cora_dm, bot, FOOD_NOTICE, "F1 published")

    await ann.wait_for_message(room, sender=bot.user_id, contains="Funding F1", since=since,
                               timeout=WAIT)
    await asyncio.sleep(1.0)
    history = [e for e in await ann.messages(room, limit=100)
               if str(e.get("content", {}).get("body", "")).startswith("Funding F1")]
    assert len(history) == 1


async def test_invites_from_a_server_not_listed_are_declined(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    ann = await people_on(federation.away, "Ann")
    bot = await federated_bot_factory(matrix={"autojoin_servers": []})
    room = await ann.create_room(name="Not ours", invite=[bot.user_id])

    async def declined() -> bool:
        member = await ann.state(room, "m.room.member", bot.user_id)
        return bool(member and member.get("membership") == "leave")

    await until(declined, "the bot to decline the invite")
