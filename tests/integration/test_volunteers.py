"""The volunteer pool on a real Synapse: thirty people register by DM, a group asks in its
room, only the eligible are offered, simultaneous accepts fill exactly the places, an offer
outlives a restart, and a profile command typed in the group room stays out of it."""

from __future__ import annotations

import asyncio
from typing import Any

from botfixture import BotFactory, RunningBot, bring_bot_in
from people import Person

from bot.homeserver import EmbeddedSynapse, RegisteredUser
from storage import volunteers as store
from storage.groups import Group

WAIT = 90.0
SHIFT = 'when="sat 10am-1pm"'


DMS: dict[str, str] = {}  # person -> their direct-message room with the bot


async def dm_bot(person: Person, bot: RunningBot, text: str, expect: str) -> str:
    """Say ``text`` in the DM with the bot; the reply that contains ``expect``."""
    room = DMS[person.user_id]
    await person.send(room, text)
    event = await person.wait_for_message(room, sender=bot.user_id, contains=expect, timeout=WAIT)
    return str(event["content"]["body"])


async def open_dm(person: Person, bot: RunningBot) -> None:
    room = await person.create_dm(bot.user_id, encrypted=False)
    for _ in range(int(WAIT * 4)):
        state = await person.state(room, "m.room.member", bot.user_id)
        if state and state.get("membership") == "join":
            break
        await asyncio.sleep(0.25)
    DMS[person.user_id] = room


async def make_people(person_factory: Any, synapse: EmbeddedSynapse,
                      admin: RegisteredUser, names: list[str]) -> list[Person]:
    gate = asyncio.Semaphore(6)

    async def one(name: str) -> Person:
        async with gate:
            person: Person = await person_factory(name, e2e=False)
            await synapse.override_ratelimit(person.user_id, admin.access_token)
            return person

    return list(await asyncio.gather(*(one(n) for n in names)))


async def register_group(bot: RunningBot, room: str, host: str) -> None:
    now = bot.app.clock.now()
    async with bot.app.db.transaction() as session:
        session.add(Group(name="Wisbech Food Bank", type="charity", area_code="E04001668",
                          themes=[], size="small", registered_by=host, registered_at=now,
                          verified_at=now, room_id=room))


async def test_thirty_volunteers_a_request_and_a_full_shift_on_synapse(
    bot_factory: BotFactory, person_factory: Any, synapse: EmbeddedSynapse,
    synapse_admin: RegisteredUser,
) -> None:
    bot = await bot_factory(bot={"commands_per_minute": 1000})
    host, member = await make_people(person_factory, synapse, synapse_admin, ["Hana", "Mo"])
    room = await bring_bot_in(host, bot, "Wisbech Food Bank")
    await host.invite(room, member.user_id)
    await member.join(room)
    # Redacting someone else's message needs the room's redact level (50).
    await host.set_power_level(room, bot.user_id, 50)
    await register_group(bot, room, host.user_id)

    able = await make_people(person_factory, synapse, synapse_admin,
                             [f"Able{i}" for i in range(6)])
    busy = await make_people(person_factory, synapse, synapse_admin,
                             [f"Busy{i}" for i in range(8)])
    far = await make_people(person_factory, synapse, synapse_admin,
                            [f"Far{i}" for i in range(8)])
    paused = await make_people(person_factory, synapse, synapse_admin,
                               [f"Rest{i}" for i in range(8)])
    base = "skills=driving area=Wisbech over18=yes"
    plans = ([(p, f"{base} availability=weekends") for p in able]
             + [(p, f"{base} availability=weekday-evenings") for p in busy]
             + [(p, "skills=driving area=Huntingdon radius=5 availability=weekends over18=yes")
                for p in far]
             + [(p, f"{base} availability=weekends") for p in paused])
    assert len(plans) == 30

    async def register(person: Person, options: str) -> None:
        await open_dm(person, bot)
        await dm_bot(person, bot, f"!volunteer register {options}", "Welcome to the volunteer pool")

    gate = asyncio.Semaphore(10)

    async def gently(person: Person, options: str) -> None:
        async with gate:
            await register(person, options)

    await asyncio.gather(*(gently(p, o) for p, o in plans))
    await asyncio.gather(*(dm_bot(p, bot, "!volunteer pause", "Paused") for p in paused))
    async with bot.app.db.transaction() as session:
        assert len(await store.all_candidates(session)) == 30

    # A profile command typed in the group room: the room hears only that a DM was sent.
    typed = await member.send(room, "!volunteer register skills=first-aid area=Wisbech "
                                    "availability=anytime dbs=basic dbs_checked=2025-05-01 "
                                    "over18=yes")
    await member.wait_for_message(room, sender=bot.user_id, contains="I've sent you a direct "
                                  "message", timeout=WAIT)
    for _ in range(int(WAIT * 4)):
        kept = [e for e in await member.messages(room, limit=30) if e["event_id"] == typed]
        if kept and not kept[0]["content"]:
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("the profile command was not redacted from the group room")
    from_bot = [e["content"].get("body", "") for e in await member.messages(room, limit=30)
                if e.get("sender") == bot.user_id]
    assert not any("first" in b.lower() or "basic" in b.lower() for b in from_bot)
    await pause_member(member, bot)

    await host.send(room, f'!volunteer need 2 role="Driver" {SHIFT} area=Wisbech')
    reply = await host.wait_for_message(room, sender=bot.user_id, contains="V1:", timeout=WAIT)
    assert "Offered to 6 volunteers" in reply["content"]["body"]
    offers: dict[str, str] = {}
    for person in able:
        body = await person.wait_for_message(DMS[person.user_id], sender=bot.user_id,
                                             contains="needs 2 x Driver", timeout=WAIT)
        offers[person.user_id] = body["content"]["body"].split(":")[0]
    for person in busy + far + paused:
        await person.sync(timeout=0)
        assert not [e for e in person.events if "needs 2 x Driver" in
                    str(e.get("content", {}).get("body", ""))]

    # The bot restarts between the offers and the answers; the offers still stand.
    await bot.restart()
    answers = await asyncio.gather(*(
        dm_bot(p, bot, f"!volunteer accept {offers[p.user_id]}", "V1") for p in able))
    assert sum(a.startswith("You're in") for a in answers) == 2
    assert sum("on the waitlist" in a for a in answers) == 4
    async with bot.app.db.transaction() as session:
        fill = await store.fill(session, 1)
    assert (fill.accepted, fill.waitlisted) == (2, 4)


async def pause_member(member: Person, bot: RunningBot) -> None:
    """Mo's profile is paused so the head-count of eligible people stays the six."""
    await open_dm(member, bot)
    await dm_bot(member, bot, "!volunteer pause", "Paused")
