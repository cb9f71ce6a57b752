"""The directory across a bridge, on a real Synapse: a Matrix group and a WhatsApp group
(the stand-in bridge) find each other, are introduced through the bot, and each gets a
route it can use from its own network; a group that opted out is never introduced."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from botfixture import BotFactory
from people import FakeBridge, Person
from test_bridges import (
    REGISTER,
    WAIT,
    ask,
    bot_events,
    bot_says,
    network_of,
    portal_with_bot,
    start_bot,
)
from test_bridges import until as until_true

YOUTH = ('!group register name="Chatteris Youth Club" type=club area=Chatteris themes=youth '
         "size=micro email=youth@chatteris.example")


async def test_a_matrix_group_and_a_whatsapp_group_are_introduced_and_can_reach_each_other(
    bot_factory: BotFactory, whatsapp_bridge: FakeBridge, person_factory: Any, tmp_path: Path,
) -> None:
    fake = whatsapp_bridge
    alice: Person = await person_factory("Alice", e2e=False)
    bot = await start_bot(bot_factory, fake, tmp_path)
    portal, gail, mo = await portal_with_bot(fake, bot)

    async def bridged() -> bool:
        return await network_of(bot, portal) == "whatsapp"

    await until_true(bridged, "the portal to be known as WhatsApp")
    await ask(fake, gail, portal, bot, REGISTER, "Registered G1")

    alias_part = f"chatterisyouth{uuid.uuid4().hex[:8]}"
    alias = f"#{alias_part}:{bot.user_id.split(':', 1)[1]}"
    youth = await alice.create_room(name="Chatteris Youth", invite=[bot.user_id],
                                    alias=alias_part)
    await alice.wait_for_message(youth, sender=bot.user_id, contains="never what", timeout=WAIT)

    async def said(text: str, expect: str) -> str:
        await alice.send(youth, text)
        event = await alice.wait_for_message(youth, sender=bot.user_id, contains=expect,
                                             timeout=WAIT)
        return str(event["content"]["body"])

    await said(YOUTH, "Registered G2")

    # Alice, on Matrix, gets the youth club's alias; nobody gets a raw room id.
    listed = await said("!directory area=Chatteris", "G1 Chatteris Food Bank")
    assert f"G2 Chatteris Youth Club (sports-club, Chatteris) unverified; youth: {alias}" in listed
    assert "G1 Chatteris Food Bank (charity, Chatteris) unverified; food: ask via !directory "\
        "contact G1" in listed
    assert portal not in listed and youth not in listed
    # Mo, on WhatsApp, can open no Matrix link: he is told to ask through the bot.
    seen = await ask(fake, mo, portal, bot, "!directory youth", "G2 Chatteris Youth Club")
    assert seen["content"]["body"].endswith("youth: ask via !directory contact G2")

    asked = await said('!directory contact G1 message="Could we borrow your van on Saturday?"',
                       "Asked G1")
    assert asked == "Asked G1 Chatteris Food Bank (I1); you hear here when it answers."
    intro = await bot_says(fake, portal, bot, "Introduction I1")
    body = intro["content"]["body"]
    assert "G2 Chatteris Youth Club would like to be in touch" in body
    assert '"Could we borrow your van on Saturday?"' in body and "!directory accept I1" in body
    assert intro["content"]["msgtype"] == "m.text"

    # Gail accepts from WhatsApp: she gets the club's email (a route WhatsApp people can use),
    # and Alice's room a Matrix link to Gail herself (the bridge carries it to WhatsApp).
    accepted = await ask(fake, gail, portal, bot, "!directory accept", "Accepted I1")
    assert accepted["content"]["body"] == (
        "Accepted I1: reach G2 Chatteris Youth Club at email youth@chatteris.example")
    told = await alice.wait_for_message(youth, sender=bot.user_id, contains="accepted I1",
                                        timeout=WAIT)
    assert told["content"]["body"] == (
        f"G1 Chatteris Food Bank accepted I1: reach them at write to its admin "
        f"https://matrix.to/#/{gail}")

    # Once the food bank opts out, it is never introduced again.
    await ask(fake, gail, portal, bot, "!group set contact=no", "G1 updated")
    refused = await said('!directory contact G1 message="And in December?"', "opted in")
    assert refused == "G1 Chatteris Food Bank has not opted in to introductions."
    intros = [e for e in await bot_events(fake, portal, bot)
              if "Introduction I" in str(e["content"].get("body"))]
    assert len(intros) == 1
