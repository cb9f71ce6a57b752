"""The volunteer pool as people meet it, in the in-process world: register by DM, a group
asks in its room, offers reach only the eligible, places fill exactly, bad input changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.service import assemble
from storage import volunteers as store
from storage.groups import Group
from storage.models import OutboxMessage
from storage.volunteers import Volunteer, VolunteerOffer, VolunteerRequest
from tests.botworld import BotWorld, bot_world
from tests.clocks import london

SHIFT = 'when="2026-12-05 10:00-13:00"'  # a Saturday morning into the afternoon
ADULT = "over18=yes"


class Pool:
    """A group room with its admin, and volunteers who each talk to the bot by DM."""

    def __init__(self, bw: BotWorld) -> None:
        self.bw = bw
        self.admin = bw.world.user("hana", "Hana Host")
        self.member = bw.world.user("mo", "Mo Member")
        self.room = ""
        self.group_id = 0
        self._dms: dict[str, str] = {}

    async def open_group(self, name: str = "Wisbech Food Bank", *, verified: bool = True,
                         share: bool = False, admin: str | None = None) -> tuple[str, int]:
        admin = admin or self.admin
        room = self.bw.world.create_room(admin, name=name, members=[self.member])
        await self.bw.world.join(self.bw.bot, room)
        now = self.bw.clock.now()
        async with self.bw.app.db.transaction() as session:
            group = Group(name=name, type="charity", area_code="E04001668", themes=[],
                          size="small", registered_by=admin, registered_at=now,
                          verified_at=now if verified else None, share_volunteers=share,
                          room_id=room)
            session.add(group)
            await session.flush()
            group_id = group.id
        await self.bw.deliver()
        if not self.room:
            self.room, self.group_id = room, group_id
        return room, group_id

    def dm_room(self, user: str) -> str:
        if user not in self._dms:
            self._dms[user] = self.bw.world.create_room(user, direct=True, members=[self.bw.bot])
        return self._dms[user]

    async def dm(self, user: str, text: str) -> list[str]:
        return await self.bw.say(user, self.dm_room(user), text)

    async def register(self, name: str, options: str = "") -> str:
        user = self.bw.world.user(name, name.title())
        given = dict(o.split("=", 1) for o in options.split())
        fields = {"skills": "driving,communication", "area": "Wisbech",
                  "availability": "weekends", **given}
        line = " ".join(f"{k}={v}" for k, v in fields.items())
        replies = await self.dm(user, f"!volunteer register {line} {ADULT}")
        assert replies and replies[0].startswith("Welcome to the volunteer pool"), replies
        return user

    async def ask(self, text: str, user: str | None = None, room: str | None = None
                  ) -> list[str]:
        return await self.bw.say(user or self.admin, room or self.room, text)

    def offers_to(self, user: str) -> list[str]:
        return [m.split(":")[0] for m in self.bw.dms(user) if m.startswith("O")]


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[Pool]:
    async with bot_world(tmp_path, roles={"coordinators": ["@cora:grapevine.local"]}) as bw:
        p = Pool(bw)
        await p.open_group()
        yield p


async def counts(bw: BotWorld) -> dict[str, int]:
    async with bw.app.db.transaction() as session:
        return {
            model.__tablename__: int(await session.scalar(
                select(func.count()).select_from(model)) or 0)
            for model in (Volunteer, VolunteerRequest, VolunteerOffer, store.VolunteerHours)
        }


async def test_thirty_register_by_dm_and_a_request_is_offered_only_to_the_eligible(
    pool: Pool,
) -> None:
    checked = "dbs=standard dbs_checked=2025-06-01"
    eligible = [await pool.register(f"able{i}", checked) for i in range(6)]
    # Each four break exactly one hard rule.
    breakers = {
        "busy": f"{checked} availability=weekday-evenings",
        "far": f"{checked} area=Huntingdon radius=5",
        "nodbs": "",
        # Re-check due 2026-12-01: fresh today, but due before the shift on 5 December.
        "stale": "dbs=standard dbs_checked=2023-12-01",
        "private": f"{checked} share=no",  # came through no group and won't share
        "paused": checked,
    }
    left_out: list[str] = []
    for kind, options in breakers.items():
        left_out += [await pool.register(f"{kind}{i}", options) for i in range(4)]
    for i in range(4):
        [paused] = await pool.dm(f"@paused{i}:grapevine.local",
                                 "!volunteer pause until=2026-12-10")
        assert paused.startswith("Paused: no new offers until Thu 10 Dec 2026")
    assert len(eligible) + len(left_out) == 30

    [reply] = await pool.ask(f'!volunteer need 3 role="Driver" {SHIFT} area=Wisbech dbs=standard')
    assert reply.startswith("V1: 3 x Driver, Sat 5 Dec 2026 10:00-13:00, Wisbech")
    assert "Offered to 6 volunteers" in reply
    assert all(pool.offers_to(user) for user in eligible)
    assert not any(pool.offers_to(user) for user in left_out)


async def test_an_offer_says_what_where_when_and_how_to_answer(pool: Pool) -> None:
    ann = await pool.register("ann", "dbs=enhanced dbs_workforce=adult dbs_checked=2025-06-01")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech dbs=standard')
    [offer] = pool.bw.dms(ann)[-1:]
    assert offer.startswith("O1: Wisbech Food Bank needs 1 x Driver, Sat 5 Dec 2026 10:00-13:00")
    assert "you meet its DBS requirement" in offer
    assert "!volunteer accept O1" in offer and "by Sat 21 Nov 2026 10:00" in offer


async def test_a_profile_command_in_a_group_room_answers_by_dm_and_reveals_nothing(
    pool: Pool,
) -> None:
    mo = pool.member
    room_before = pool.bw.world.messages(pool.room)
    said = await pool.bw.say(
        mo, pool.room, "!volunteer register skills=driving area=Wisbech availability=weekends "
        f"dbs=enhanced dbs_workforce=child dbs_checked=2025-06-01 {ADULT}")
    assert said == ["I've sent you a direct message."]
    assert "Welcome to the volunteer pool" in pool.bw.dms(mo)[-1]
    assert "enhanced" in pool.bw.dms(mo)[-1]
    # The command itself is redacted from the room: nothing about the DBS check is left there.
    room_now = pool.bw.world.messages(pool.room)
    assert [m for m in room_now if m not in room_before] == ["I've sent you a direct message."]
    assert await pool.bw.say(mo, pool.room, "!volunteer") == ["I've sent you a direct message."]
    assert pool.bw.dms(mo)[-1].startswith("Your volunteer profile (only you can see it)")
    assert not any("DBS" in m or "enhanced" in m for m in pool.bw.world.messages(pool.room))


async def test_being_18_or_over_is_asked_and_a_minor_is_not_stored(pool: Pool) -> None:
    kid = pool.bw.world.user("kid")
    [question] = await pool.dm(kid, "!volunteer register skills=art area=Wisbech "
                                    "availability=weekends")
    assert question.startswith("Are you 18 or over?")
    [refused] = await pool.dm(kid, "no")
    assert refused.startswith("Sorry: the pool is for adults")
    assert (await counts(pool.bw))["volunteers"] == 0


async def test_the_host_learns_a_name_only_on_accept_and_never_dbs_details(pool: Pool) -> None:
    ann = await pool.register("ann", "dbs=enhanced dbs_workforce=adult dbs_checked=2025-06-01")
    await pool.register("bo", "dbs=standard dbs_checked=2025-06-01")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech dbs=standard')
    host_sees = pool.bw.world.messages(pool.room) + pool.bw.dms(pool.admin)
    assert not any(ann in m for m in host_sees)
    [accepted] = await pool.dm(ann, "!volunteer accept O1")
    assert accepted.startswith("You're in for V1: Driver for Wisbech Food Bank")
    [told] = pool.bw.dms(pool.admin)
    assert told == (f"{ann} accepted V1 (Driver) and meets the DBS requirement: "
                    "1/1 places filled.")
    bot_said = pool.bw.world.messages(pool.room, sender=pool.bw.bot) + pool.bw.dms(pool.admin)
    everything_host_saw = "\n".join(bot_said)
    for secret in ("enhanced", "standard", "2025", "2028", "adult"):
        assert secret not in everything_host_saw


async def test_accepts_beyond_the_places_join_a_waitlist_and_a_dropout_promotes_the_next(
    pool: Pool,
) -> None:
    people = [await pool.register(f"p{i}") for i in range(5)]
    await pool.ask(f'!volunteer need 2 role="Packing" {SHIFT} area=Wisbech')
    ids = {user: pool.offers_to(user)[0] for user in people}
    answers = await asyncio.gather(*(pool.dm(u, f"!volunteer accept {o}") for u, o in ids.items()))
    firsts = [a[0] for a in answers]
    assert sum(a.startswith("You're in") for a in firsts) == 2
    assert sum("on the waitlist" in a for a in firsts) == 3
    [status] = await pool.ask("!volunteer requests")
    assert status.startswith("V1 Packing, Sat 5 Dec 2026 10:00-13:00: 2/2 filled, 3 waitlisted")
    leaver = next(u for u, a in zip(ids, firsts, strict=True) if a.startswith("You're in"))
    first_waiting = next(u for u, a in zip(ids, firsts, strict=True) if "number 1" in a)
    [bye] = await pool.dm(leaver, f"!volunteer decline {ids[leaver]}")
    assert "given up your place" in bye
    assert pool.bw.dms(first_waiting)[-1].startswith("A place freed up: you're in for V1")
    assert f"{first_waiting} moved up from the waitlist" in pool.bw.dms(pool.admin)[-1]
    [status] = await pool.ask("!volunteer requests")
    assert "2/2 filled, 2 waitlisted" in status


async def test_an_offer_survives_a_restart_of_the_bot(pool: Pool) -> None:
    ann = await pool.register("ann")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    old = pool.bw
    fresh = assemble(old.app.settings, old.app.db, old.transport, clock=old.clock)
    old.transport.attach(fresh)
    pool.bw = BotWorld(old.world, fresh, old.transport, old.clock)
    pool.bw.clock.advance(hours=5)
    [accepted] = await pool.dm(ann, "!volunteer accept O1")
    assert accepted.startswith("You're in for V1: Driver")


async def test_a_decline_offers_the_place_to_the_next_best(pool: Pool) -> None:
    people = [await pool.register(f"p{i}") for i in range(5)]
    [reply] = await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    assert "Offered to 3 volunteers" in reply
    offered = [u for u in people if pool.offers_to(u)]
    await pool.dm(offered[0], f"!volunteer decline {pool.offers_to(offered[0])[0]}")
    assert len([u for u in people if pool.offers_to(u)]) == 4


async def test_cancelling_a_request_tells_everyone_who_accepted(pool: Pool) -> None:
    ann, bo = await pool.register("ann"), await pool.register("bo")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    await pool.dm(ann, f"!volunteer accept {pool.offers_to(ann)[0]}")
    await pool.dm(bo, f"!volunteer accept {pool.offers_to(bo)[0]}")
    [reply] = await pool.ask("!volunteer cancel V1")
    assert reply == "Cancelled V1; told the 2 volunteers who had accepted or were waiting."
    for user in (ann, bo):
        assert "V1 (Driver, Sat 5 Dec 2026 10:00-13:00) from Wisbech Food Bank is cancelled" in (
            pool.bw.dms(user)[-1])


async def test_sharing_needs_the_group_to_opt_in_and_an_unverified_group_reaches_only_its_own(
    pool: Pool,
) -> None:
    olu = pool.bw.world.user("olu")
    lunch_room, lunch = await pool.open_group("March Lunch Club", admin=olu)
    new_room, new = await pool.open_group("New Choir", admin=olu, verified=False)
    via_lunch = await pool.register("ann", f"group=G{lunch}")
    via_new = await pool.register("bo", f"group=G{new}")
    [r1] = await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    assert "No volunteer in the pool matches yet" in r1
    assert await pool.ask("!volunteer share on", olu, lunch_room) == [
        f"Volunteers who came through G{lunch} can now get other groups' requests, "
        "when they have agreed to it too (share=yes)."]
    [r2] = await pool.ask(f'!volunteer need 1 role="Cook" {SHIFT} area=Wisbech')
    assert "Offered to 1 volunteers" in r2 and pool.offers_to(via_lunch) == ["O1"]
    [r3] = await pool.ask(f'!volunteer need 1 role="Singer" {SHIFT} area=Wisbech', olu, new_room)
    assert "an unverified group reaches only its own volunteers" in r3
    assert pool.offers_to(via_new) == ["O2"] and pool.offers_to(via_lunch) == ["O1"]


async def test_browse_and_take_a_request_nobody_offered_you(pool: Pool) -> None:
    ann = await pool.register("ann")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    bo = await pool.register("bo", "skills=cooking")
    [listing] = await pool.dm(bo, "!volunteer browse area=fenland")
    assert listing.startswith("V1 Driver for Wisbech Food Bank, Sat 5 Dec 2026 10:00-13:00")
    [none] = await pool.dm(bo, "!volunteer browse skills=singing")
    assert none.startswith("No open requests fit you")
    [took] = await pool.dm(bo, "!volunteer take V1")
    assert took.startswith("You're in for V1: Driver")
    [late] = await pool.dm(ann, f"!volunteer accept {pool.offers_to(ann)[0]}")
    assert "full, so you're number 1 on the waitlist" in late


async def test_hours_are_confirmed_by_the_host_and_make_a_certificate(pool: Pool) -> None:
    ann = await pool.register("ann")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    await pool.dm(ann, "!volunteer accept O1")
    pool.bw.clock.current = datetime(2026, 12, 5, 14, tzinfo=UTC)
    assert await pool.ask("!volunteer hours V1 3") == ["Recorded 3 hours for 1 volunteer on V1."]
    await pool.bw.world.say(ann, pool.dm_room(ann), "!volunteer certificate 2026")
    async with pool.bw.app.db.transaction() as session:
        pdf = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.file_name.is_not(None)))
        # Read before it is sent: the outbox blanks a direct message once delivered.
        assert pdf is not None and pdf.file_name == "volunteering-2026.pdf"
        assert pdf.file_data is not None and pdf.file_data.startswith(b"%PDF")
    await pool.bw.deliver()
    text = pool.bw.dms(ann)[-1]
    assert text.startswith(f"{ann}: 3 hours volunteering in 2026\nWisbech Food Bank: 3 hours")


async def test_pause_resume_and_delete(pool: Pool) -> None:
    ann = await pool.register("ann")
    [paused] = await pool.dm(ann, "!volunteer pause")
    assert paused.startswith("Paused: no new offers; !volunteer resume")
    [reply] = await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    assert "No volunteer in the pool matches yet" in reply
    assert await pool.dm(ann, "!volunteer resume") == ["Welcome back: offers will reach you again."]
    await pool.ask(f'!volunteer need 1 role="Cook" {SHIFT} area=Wisbech')
    await pool.dm(ann, f"!volunteer accept {pool.offers_to(ann)[0]}")
    [gone] = await pool.dm(ann, "!volunteer delete")
    assert gone.startswith("Your profile is deleted and left 1 open offers or places")
    assert "can no longer make V2" in pool.bw.dms(pool.admin)[-1]
    assert (await counts(pool.bw))["volunteers"] == 0


BAD_DM: list[tuple[str, str]] = [
    ("!volunteer register skills=driving area=Wisbech availability=someday " + ADULT,
     "availability: 'someday' is not a time I know"),
    ("!volunteer register skills=driving area=Atlantis availability=weekends " + ADULT,
     "area: 'Atlantis' is not an area I know"),
    ("!volunteer register skills=driving area=Wisbech availability=weekends radius=500 " + ADULT,
     "radius: should be between 0.5 and 50"),
    ("!volunteer register skills=driving area=Wisbech availability=weekends dbs=gold " + ADULT,
     "dbs: should be one of none, basic, standard, enhanced"),
    ("!volunteer register skills=driving area=Wisbech availability=weekends dbs=basic "
     "dbs_checked=2027-01-01 " + ADULT, "dbs_checked: that date is in the future"),
    ("!volunteer register skills=driving area=Wisbech availability=weekends dbs=basic "
     "dbs_checked=2020-01-01 " + ADULT, "is past the 3-year re-check"),
    ("!volunteer register skills=driving area=Wisbech availability=weekends group=G99 " + ADULT,
     "There's no group G99"),
    ("!volunteer register skills=driving area=Wisbech availability=weekends colour=red " + ADULT,
     "colour= is not an option of !volunteer register"),
    ("!volunteer", "You aren't in the volunteer pool yet"),
    ("!volunteer set radius=3", "You aren't in the volunteer pool yet"),
    ("!volunteer frobnicate", "!volunteer needs one of:"),
    ("!volunteer accept O99", "You have no offer O99"),
    ("!volunteer accept banana", "offer: should be an id like O12"),
    ("!volunteer take V99", "You aren't in the volunteer pool yet"),
    ("!volunteer certificate", "No confirmed hours in 2026 yet"),
    ("!volunteer pause", "You aren't in the volunteer pool yet"),
]


@pytest.mark.parametrize(("command", "why"), BAD_DM)
async def test_every_bad_input_by_dm_gets_one_clear_reply_and_changes_nothing(
    pool: Pool, command: str, why: str,
) -> None:
    before = await counts(pool.bw)
    [reply] = await pool.dm(pool.bw.world.user("zed"), command)
    assert why in reply
    assert await counts(pool.bw) == before


BAD_ROOM: list[tuple[str, str, str]] = [
    ("admin", f'!volunteer need 0 role="Driver" {SHIFT} area=Wisbech',
     "count: should be between 1 and 100"),
    ("admin", '!volunteer need 2 role="Driver" when="2026-11-01 10:00-13:00" area=Wisbech',
     "when: that time has passed"),
    ("admin", '!volunteer need 2 role="Driver" when="2026-12-05 01:00-04:00" area=Wisbech',
     "shifts run between 06:00 and midnight"),
    ("admin", f'!volunteer need 2 role="Driver" {SHIFT} area=Atlantis',
     "area: 'Atlantis' is not an area I know"),
    ("admin", f'!volunteer need 2 role="Driver" {SHIFT} area=Wisbech dbs=gold',
     "dbs: should be one of none, basic, standard, enhanced"),
    ("member", f'!volunteer need 2 role="Driver" {SHIFT} area=Wisbech',
     "!volunteer need needs the group admin role"),
    ("admin", "!volunteer cancel V7", "has no request V7"),
    ("admin", "!volunteer hours V7 3", "has no request V7"),
    ("admin", "!volunteer hours V7 lots", "hours: should be a number like 2.5"),
    ("admin", "!volunteer share maybe", "setting: should be one of on, off"),
    ("member", "!volunteer share on", "!volunteer share needs the group admin role"),
]


@pytest.mark.parametrize(("who", "command", "why"), BAD_ROOM)
async def test_every_bad_request_in_a_room_gets_one_clear_reply_and_changes_nothing(
    pool: Pool, who: str, command: str, why: str,
) -> None:
    before = await counts(pool.bw)
    user = pool.admin if who == "admin" else pool.member
    [reply] = await pool.ask(command, user)
    assert why in reply
    assert await counts(pool.bw) == before


async def test_a_host_may_make_three_requests_a_day_and_a_coordinator_more(pool: Pool) -> None:
    for role in ("Driver", "Cook", "Packer"):
        [made] = await pool.ask(f'!volunteer need 1 role="{role}" {SHIFT} area=Wisbech')
        assert made.startswith("V")
    [refused] = await pool.ask(f'!volunteer need 1 role="Porter" {SHIFT} area=Wisbech')
    assert refused.startswith("You've made 3 volunteer requests in the last 24 hours, the "
                              "daily limit for anyone but a coordinator; you can make another "
                              "from ")
    assert refused.endswith(". Nothing was changed.")
    cora = pool.bw.world.user("cora", "Cora")
    room, _ = await pool.open_group("Cora's Pantry", admin=cora)
    for role in ("Driver", "Cook", "Packer", "Porter"):
        [made] = await pool.ask(f'!volunteer need 1 role="{role}" {SHIFT} area=Wisbech', cora,
                                room)
        assert made.startswith("V")


async def test_refusals_about_real_offers_and_requests_change_nothing(pool: Pool) -> None:
    ann, bo = await pool.register("ann"), await pool.register("bo")
    await pool.ask(f'!volunteer need 1 role="Driver" {SHIFT} area=Wisbech')
    anns = pool.offers_to(ann)[0]
    before = await counts(pool.bw)
    cases: list[tuple[str, str, str]] = [
        (bo, f"!volunteer accept {anns}", f"You have no offer {anns}"),
        (ann, "!volunteer register skills=x area=Wisbech availability=weekends " + ADULT,
         "You're already in the pool"),
        (ann, "!volunteer resume", "You're not paused"),
        (ann, "!volunteer pause until=2026-11-01", "until: give a date after today"),
        (ann, "!volunteer set", "Say what to change"),
    ]
    for user, command, why in cases:
        [reply] = await pool.dm(user, command)
        assert why in reply, (command, reply)
    [early] = await pool.ask("!volunteer hours V1 3")
    assert "V1 hasn't started yet" in early
    assert await counts(pool.bw) == before



async def test_a_window_that_could_mean_two_things_is_asked_as_a_numbered_choice(
    pool: Pool,
) -> None:
    [choice] = await pool.ask('!volunteer need 1 role="Driver" when="sat 12:00-01:00" '
                              "area=Wisbech")
    assert choice.splitlines() == [
        "Did you mean 12:00-13:00 or 00:00-01:00?",
        "1. Sat 21 Nov 2026 12:00-13:00",
        "2. Sat 21 Nov 2026 00:00-01:00",
        "Reply with a number (1-2), or !cancel.",
    ]
    async with pool.bw.app.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(VolunteerRequest)) == 0
    [made] = await pool.ask("1")
    assert made.startswith("V1")
    async with pool.bw.app.db.transaction() as session:
        req = await session.scalar(select(VolunteerRequest))
        assert req is not None
        assert (req.starts_at, req.ends_at) == (london(date(2026, 11, 21), 12),
                                                london(date(2026, 11, 21), 13))
