"""Groups on another council's homeserver: the bot on ``home``, the people on ``away``.

Two Synapses federate on loopback with verified TLS (see twoservers.py). What the
people on ``away`` should see is what they would see on the bot's own server:
notices once, direct messages live in their /sync (not only by scrolling back),
case rooms they are really invited to, and rooms they are entitled to join.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botfixture import RunningBot, bring_bot_in
from people import MatrixRequestFailed, Person
from sqlalchemy import select
from twoservers import FederatedBotFactory, Federation, PeopleOn

from bot.features.case_rooms import invite_retry_after, provision_rooms
from bot.features.tree_build import builder_for
from storage import mediation as cases
from storage import tree
from storage.groups import Group
from storage.models import OutboxMessage
from tests.small_county import write_test_areas

WAIT = 45.0
WISBECH = "E04001668"
WISBY = "E04900001"  # in tests/small_county.py
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


async def dms_ready(bot: RunningBot, user_id: str, count: int = 1) -> bool:
    """The bot has done what it will do now with its first ``count`` DMs to ``user_id``:
    the first sent or held for their join, the others sent or waiting untried behind it."""
    async with bot.app.db.transaction() as session:
        rows = list(await session.scalars(
            select(OutboxMessage).where(OutboxMessage.to_user == user_id)
            .order_by(OutboxMessage.id).limit(count)))
    return len(rows) == count and (rows[0].sent_at is not None
                                   or rows[0].join_wait_until is not None) and all(
        r.sent_at is not None or r.attempts == 0 for r in rows[1:])


def dm_bodies(person: Person, room: str) -> list[str]:
    """The messages this person's /sync timeline brought from the room, in order."""
    return [str(e["content"]["body"]) for e in person.events
            if e.get("room_id") == room and e.get("type") == "m.room.message"]


def arrived_after_joining(person: Person, room: str, event: dict[str, Any]) -> bool:
    """The event came to the person's server live: after their own join in their timeline.

    One sent before their server was in the room can only come with the join (before
    it, fetched as history): no push, no bridge, no notification ever sees it.
    """
    timeline = [e for e in person.events if e.get("room_id") == room]
    joins = [i for i, e in enumerate(timeline) if e.get("type") == "m.room.member"
             and e.get("state_key") == person.user_id
             and e.get("content", {}).get("membership") == "join"]
    return bool(joins) and timeline.index(event) > joins[0]


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


async def group_with_volunteer(
    federation: Federation, factory: FederatedBotFactory, people_on: PeopleOn
) -> tuple[Person, Person, RunningBot, str]:
    """Ann's verified group room on ``away``, with Vic (also on ``away``) in it."""
    ann = await people_on(federation.away, "Ann")
    vic = await people_on(federation.away, "Vic")
    bot = await factory()
    room = await bring_bot_in(ann, bot, "Wisbech Food Bank")
    # The bot may remove Vic's details from the room: no second DM saying it could not,
    # which would carry the first one to Vic's server along with it.
    await ann.set_power_level(room, bot.user_id, 50)
    await ann.invite(room, vic.user_id)
    await vic.join(room)
    now = bot.app.clock.now()
    async with bot.app.db.transaction() as session:
        session.add(Group(name="Wisbech Food Bank", type="charity", area_code=WISBECH,
                          themes=[], size="small", registered_by=ann.user_id,
                          registered_at=now, verified_at=now, room_id=room))
    return ann, vic, bot, room


REGISTER = "!volunteer register skills=driving area=Wisbech availability=weekends over18=yes"


async def register_then_accept(vic: Person, room: str, bot: RunningBot, *more: str) -> str:
    """Vic registers (and sends ``more`` commands answered by DM) in the group room, then
    accepts the new DM once the bot has its DMs ready: the first sent or held for his
    join, the rest sent or queued behind it. As a person reading the invite a little
    later would: what the bot sends must still come to his /sync timeline live."""
    for command in (REGISTER, *more):
        await say(vic, room, bot, command, "I've sent you a direct message")
    dm = await vic.wait_for_invite(timeout=WAIT)
    await until(lambda: dms_ready(bot, vic.user_id, 1 + len(more)), "the DMs to be ready")
    await vic.wait_for_invite(timeout=WAIT, room_id=dm, joined=True)
    return dm


async def test_a_volunteer_on_another_server_gets_the_first_dm_and_the_offer_live(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    ann, vic, bot, room = await group_with_volunteer(federation, federated_bot_factory,
                                                     people_on)
    dm = await register_then_accept(vic, room, bot)
    # Live, while the bot sends nothing else there that would carry it along.
    welcome = await vic.wait_for_message(dm, sender=bot.user_id, contains="Welcome to the "
                                         "volunteer pool", since=0, timeout=WAIT)
    assert welcome["content"]["body"].startswith("Welcome to the volunteer pool")
    assert arrived_after_joining(vic, dm, welcome)
    assert dm_bodies(vic, dm) == [welcome["content"]["body"]]
    assert "I removed your message" in welcome["content"]["body"]

    asked = await say(ann, room, bot, '!volunteer need 1 role="Driver" when="sat 10am-1pm" '
                      "area=Wisbech", "V1")
    assert "Offered to 1 volunteers" in asked
    offer = await vic.wait_for_message(dm, sender=bot.user_id, contains="needs 1 x Driver",
                                       timeout=WAIT)
    assert offer["content"]["body"].startswith("O1: Wisbech Food Bank needs 1 x Driver")


async def test_back_to_back_dms_to_a_volunteer_on_another_server_arrive_in_order(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    _, vic, bot, room = await group_with_volunteer(federation, federated_bot_factory,
                                                   people_on)
    # Before he has accepted the new DM, Vic asks for his profile: a second DM that
    # must wait behind the welcome, not overtake it while the welcome waits for him.
    dm = await register_then_accept(vic, room, bot, "!volunteer")
    profile = await vic.wait_for_message(dm, sender=bot.user_id, since=0, timeout=WAIT,
                                         predicate=lambda e: str(e["content"]["body"])
                                         .startswith("Your volunteer profile"))
    welcome, shown = dm_bodies(vic, dm)
    assert welcome.startswith("Welcome to the volunteer pool")
    assert shown == profile["content"]["body"]
    assert arrived_after_joining(vic, dm, profile)


async def two_groups_and_a_coordinator(bot: RunningBot, ann: Person, bea: Person,
                                       cora: Person) -> str:
    """Ann's group G1 and Bea's G2, each in its own room with the bot; Cora's DM with it."""
    food = await bring_bot_in(ann, bot, "Wisbech Food Bank")
    youth = await bring_bot_in(bea, bot, "Wisbech Youth Club")
    now = bot.clock.now()
    async with bot.app.db.transaction() as session:
        for room, name, admin in ((food, "Wisbech Food Bank", ann), (youth, "Wisbech Youth Club",
                                                                     bea)):
            session.add(Group(name=name, type="charity", area_code=WISBECH, themes=[],
                              size="small", registered_by=admin.user_id, registered_at=now,
                              room_id=room))
    return await dm_with(cora, bot)


async def test_a_case_opened_while_a_party_s_server_is_down_invites_them_once_it_is_back(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    ann, mia, cora = [await people_on(federation.home, n) for n in ("Ann", "Mia", "Cora")]
    bea = await people_on(federation.away, "Bea")
    bot = await federated_bot_factory(roles={"coordinators": [cora.user_id]})
    cora_dm = await two_groups_and_a_coordinator(bot, ann, bea, cora)

    async with federation.outage():
        await say(cora, cora_dm, bot, f'!mediation open title="Shared hall" groups=G1,G2 '
                  f"mediator={mia.user_id}", "M1 opened")
        ready = await cora.wait_for_message(cora_dm, sender=bot.user_id, contains="room is ready",
                                            timeout=WAIT)
        told = ready["content"]["body"]
        assert told.startswith(f"M1's private room is ready; invited: {ann.user_id}, "
                               f"{mia.user_id}. Not invited yet: {bea.user_id} (their server "
                               f"{federation.away.server_name} refused or did not answer")
        async with bot.app.db.transaction() as session:
            opened = await cases.get(session, 1)
            assert opened is not None and opened.invite_retry_at is not None
        # The next try is announced for the time it is due: five minutes after this one.
        assert opened.room_tried_at is not None
        assert opened.invite_retry_at - opened.room_tried_at >= invite_retry_after(1)
        retry_at = opened.invite_retry_at.astimezone(bot.app.settings.bot.tz)
        assert f"I'll try again at {retry_at:%H:%M}" in told
        case_room = await ann.wait_for_invite(timeout=WAIT, joined=True)
        intro = await ann.wait_for_message(case_room, sender=bot.user_id, contains="M1: Shared",
                                           since=0, timeout=WAIT)
        assert arrived_after_joining(ann, case_room, intro)
        listed = await say(cora, cora_dm, bot, "!mediation", "M1 Shared hall")
        assert listed == (f"M1 Shared hall (open, not invited yet: {bea.user_id} "
                          f"(next try {retry_at:%H:%M}))")
        assert await ann.state(case_room, "m.room.member", bea.user_id) is None

    # Back, but the next try is when Cora was told, not sooner.
    await provision_rooms(bot.app)
    await bea.sync()
    assert case_room not in bea.invites
    bot.advance_to(opened.invite_retry_at)
    await provision_rooms(bot.app)
    await bea.wait_for_invite(timeout=WAIT, room_id=case_room, joined=True)
    now_invited = await cora.wait_for_message(cora_dm, sender=bot.user_id, contains="now invited",
                                              timeout=WAIT)
    assert now_invited["content"]["body"] == f"M1: I've now invited {bea.user_id}."
    async with bot.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.pending == [] and case.invite_retry_at is None
        assert sorted(case.invited) == sorted([ann.user_id, mia.user_id, bea.user_id])


async def test_an_encrypted_case_room_s_introduction_reaches_a_party_on_another_server(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
) -> None:
    ann, mia, cora = [await people_on(federation.home, n) for n in ("Ann", "Mia", "Cora")]
    bea = await people_on(federation.away, "Bea", e2e=True)  # Element-like: keys and all
    bot = await federated_bot_factory(roles={"coordinators": [cora.user_id]},
                                      matrix={"encryption": True})
    cora_dm = await two_groups_and_a_coordinator(bot, ann, bea, cora)
    await say(cora, cora_dm, bot, f'!mediation open title="Shared hall" groups=G1,G2 '
              f"mediator={mia.user_id}", "M1 opened")

    # Bea, on the other server, is the first to accept: the introduction, held until
    # then, goes out encrypted for her device, and her client reads it as it comes.
    case_room = await bea.wait_for_invite(timeout=WAIT, joined=True)
    assert await bea.state(case_room, "m.room.encryption") is not None
    intro = await bea.wait_for_message(case_room, sender=bot.user_id, contains="M1: Shared",
                                       since=0, timeout=WAIT)
    assert intro["content"]["body"].startswith("M1: Shared hall. Parties: ")
    assert arrived_after_joining(bea, case_room, intro)
    assert not [e for e in bea.events if e.get("room_id") == case_room
                and e.get("type") == "m.room.encrypted"]  # nothing she could not read
    # Her server holds only ciphertext: the bot did encrypt it, for her.
    path = (f"/_matrix/client/v3/rooms/{quote(case_room, safe='')}/event/"
            f"{quote(intro['event_id'], safe='')}")
    stored = await federation.away.request("GET", path, token=bea.user.access_token)
    assert stored["type"] == "m.room.encrypted" and "body" not in stored["content"]


async def test_a_moderator_on_another_server_gets_into_their_locality_room(
    federation: Federation, federated_bot_factory: FederatedBotFactory, people_on: PeopleOn,
    tmp_path: Path,
) -> None:
    ada = await people_on(federation.home, "Ada")
    mo = await people_on(federation.away, "Mo")
    # A small county, its aliases tagged: the home server outlives this test.
    areas = write_test_areas(tmp_path / "areas.csv", uuid.uuid4().hex[:6])
    bot = await federated_bot_factory(roles={"admins": [ada.user_id],
                                             "moderators": {WISBY: [mo.user_id]}},
                                      areas={"file": str(areas)})
    ada_dm = await dm_with(ada, bot)
    await say(ada, ada_dm, bot, "!rooms setup area=Wisby", "Making")

    async def locality_room() -> list[tree.TreeRoom]:
        await builder_for(bot.app).idle()
        async with bot.app.db.transaction() as session:
            return [r for r in (await tree.all_rooms(session)).values()
                    if r.area_code == WISBY and r.kind == "locality"]

    [wisby] = await until(locality_room, "Wisby's room to be built", timeout=2 * WAIT)

    mo_dm = await dm_with(mo, bot)
    listing = await say(mo, mo_dm, bot, "!rooms area=Wisby", wisby.alias)
    assert listing.splitlines()[-1].startswith("To get in: !rooms join <area or alias>")
    # The room is restricted to members of its space: the alias alone does not let Mo in.
    with pytest.raises(MatrixRequestFailed):
        await mo.join(wisby.alias)
    invited = await say(mo, mo_dm, bot, "!rooms join Wisby", "invited you")
    assert invited == (f"I've invited you to {wisby.name} ({wisby.alias}), because you "
                       "moderate Wisby: accept the invite in your Matrix client.")
    await mo.wait_for_invite(timeout=WAIT, room_id=wisby.room_id, joined=True)
    power = await mo.state(wisby.room_id, "m.room.power_levels")
    assert power is not None and power["users"].get(mo.user_id) == 50
