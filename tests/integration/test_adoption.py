"""Issue 19 on a real Synapse: the adoption report over a seeded month of activity, whose
figures equal counts made here straight from the database; and funding partners that respect
eligibility, opt-out and area, one of them turned into an introduction by one command."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from botfixture import BotFactory, RunningBot
from people import Person
from sqlalchemy import distinct, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from test_reach_roundtrip import group_room, open_dm

from bot.features.adoption import shown
from storage import activity, collab, flow
from storage.activity import CommandDay
from storage.collab import CollabRecord
from storage.flow import FlowEvent, FlowRow
from storage.funding import PUBLISHED, FundingDelivery, FundingNotice
from storage.groups import Group
from storage.introductions import Introduction
from storage.models import KnownRoom
from storage.volunteer_models import VolunteerRequest
from tests.clocks import london

WAIT = 60.0
WISBECH, MARCH, ABBEY = "E04001668", "E04001661", "E05013050"
OCT, NOV, DEC = london(date(2026, 10, 1)), london(date(2026, 11, 1)), london(date(2026, 12, 1))


@pytest.fixture
async def people(person_factory: Any) -> dict[str, Person]:
    return {name: await person_factory(name, e2e=False) for name in ("Ada", "Bob", "Cora")}


async def said(person: Person, room: str, bot: RunningBot, text: str,
               expect: str) -> dict[str, Any]:
    await person.send(room, text)
    return await person.wait_for_message(room, sender=bot.user_id, contains=expect, timeout=WAIT)


async def download(person: Person, homeserver: str, mxc: str) -> bytes:
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    url = f"{homeserver}/_matrix/client/v1/media/download/{server}/{media_id}"
    headers = {"Authorization": f"Bearer {person.user.access_token}"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def seed_october(session: AsyncSession, first_group: int) -> None:
    """Ten groups registered in October (seven verified), their rooms on WhatsApp and Telegram,
    and what they did: commands, a notice sent and answered, introductions, filled shifts and
    collaborations. Written with the bot's own storage functions where it has them."""
    areas = [WISBECH] * 5 + [MARCH] * 3 + [ABBEY] * 2
    ids = []
    for n, area in enumerate(areas):
        at = OCT + timedelta(days=2 + n, hours=10)
        room = f"!seed{n}:adoption.test"
        session.add(KnownRoom(room_id=room, joined_at=at, network=("whatsapp", "telegram")[n % 2]))
        group = Group(room_id=room, name=f"Seeded {n}", type="charity", area_code=area,
                      themes=["food"], size="small", registered_by="@someone:adoption.test",
                      registered_at=at, verified_at=at + timedelta(days=1) if n < 7 else None)
        session.add(group)
        await session.flush()
        ids.append(group.id)
        # Commands in eight rooms: six in mid-October, two within the last 30 days.
        if n < 8:
            day = OCT + timedelta(days=14 if n < 6 else 25, hours=11)
            await activity.note_command(session, room, day.date(), day)
    assert ids[0] == first_group
    notice = FundingNotice(title="Seeded Fund", funder="Trust", url="https://example.org/s",
                           status=PUBLISHED, created_at=OCT, closes_at=OCT + timedelta(days=20),
                           areas=[], themes=["food"])
    session.add(notice)
    await session.flush()
    for n in range(9):  # sent to nine rooms, answered in six (on the day after)
        sent = OCT + timedelta(days=12, hours=n)
        session.add(FundingDelivery(notice_id=notice.id, room_id=f"!seed{n}:adoption.test",
                                    via="group", dedupe_key=f"seed:{n}", room_key=f"k{n}",
                                    queued_at=sent, sent_at=sent, event_id=f"$post{n}"))
    await flow.add_events(session, [
        FlowRow(event_id=f"$reply{n}", room_id=f"!seed{n}:adoption.test", sender_key=f"p{n}",
                at=OCT + timedelta(days=13, hours=n), kind="reply", notice_id=notice.id,
                target_event=f"$post{n}") for n in range(6)])
    for n in range(6):
        session.add(Introduction(from_group_id=ids[9], from_room_id="!seed9:adoption.test",
                                 to_group_id=ids[n], asked_by="@someone:adoption.test",
                                 asked_at=OCT + timedelta(days=15, hours=n)))
    for n in range(7):  # five shifts filled, one short of people, one cancelled
        start = OCT + timedelta(days=18, hours=9 + n)
        session.add(VolunteerRequest(
            group_id=ids[n], room_id=f"!seed{n}:adoption.test", created_by="@someone:x",
            count=2, role="Driver", starts_at=start, ends_at=start + timedelta(hours=2),
            slots=1, area_code=areas[n], lat=52.6, lon=0.16, accepted=2 if n != 5 else 1,
            created_at=OCT, cancelled_at=OCT + timedelta(days=3) if n == 6 else None))
    for n in range(6):
        await collab.record(session, type="shared-event", group_ids=[ids[n], ids[n + 1]],
                            amount=None, note=None, author="@someone:adoption.test",
                            at=OCT + timedelta(days=20, hours=n))


async def direct_counts(session: AsyncSession, start: datetime, end: datetime,
                        now: datetime) -> dict[str, int]:
    """The month's figures counted here in SQL, independently of the feature's arithmetic."""
    def within(column: Any) -> Any:
        return (column >= start) & (column < end)

    async def count(query: Any) -> int:
        return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    group_rooms = select(Group.room_id).where(Group.room_id.is_not(None))
    commanded = select(CommandDay.room_id.label("room")).where(
        CommandDay.day >= start.date().isoformat(), CommandDay.day < end.date().isoformat(),
        CommandDay.room_id.in_(group_rooms))
    engaged_here = select(FlowEvent.room_id.label("room")).where(
        FlowEvent.notice_id.is_not(None), within(FlowEvent.at), FlowEvent.room_id.in_(group_rooms))
    engaged_ever = select(FlowEvent.room_id, FlowEvent.notice_id).where(
        FlowEvent.notice_id.is_not(None)).distinct()
    delivered = select(FundingDelivery.room_id, FundingDelivery.notice_id).where(
        within(FundingDelivery.sent_at), FundingDelivery.room_id.in_(group_rooms))
    recent = select(CommandDay.room_id.label("room")).where(
        CommandDay.last_at > now - timedelta(days=30), CommandDay.room_id.in_(group_rooms))
    active = union(commanded, engaged_here).subquery()
    return {
        "groups registered": await count(select(Group.id).where(within(Group.registered_at))),
        "groups verified": await count(select(Group.id).where(within(Group.verified_at))),
        "active rooms": await count(select(distinct(active.c.room))),
        "notices delivered": await count(delivered),
        "notices engaged with": await count(delivered.where(
            FundingDelivery.room_id.in_(select(engaged_ever.subquery().c.room_id)))),
        "introductions": await count(select(Introduction.id).where(within(Introduction.asked_at))),
        "volunteer requests filled": await count(select(VolunteerRequest.id).where(
            within(VolunteerRequest.starts_at), VolunteerRequest.cancelled_at.is_(None),
            VolunteerRequest.accepted >= VolunteerRequest.count)),
        "collaborations": await count(select(CollabRecord.id).where(
            within(CollabRecord.recorded_at), CollabRecord.removed_at.is_(None))),
        "recent": await count(select(distinct(recent.subquery().c.room))),
    }


async def test_an_adoption_report_over_a_seeded_month_matches_the_database(
        bot_factory: BotFactory, people: dict[str, Person]) -> None:
    ada, cora = people["Ada"], people["Cora"]
    bot = await bot_factory(roles={"coordinators": [cora.user_id]})
    # A few real commands this month: two groups registered, one verified, a collaboration.
    food = await group_room(ada, [], bot, "Wisbech Food Bank")
    await said(ada, food, bot, '!group register name="Wisbech Food Bank" type=charity '
               "area=Wisbech themes=food size=small", "Registered G1")
    shed = await group_room(ada, [], bot, "March Shed")
    await said(ada, shed, bot, '!group register name="March Shed" type=charity area=March '
               "themes=community size=small", "Registered G2")
    dm = await open_dm(cora, bot)
    await said(cora, dm, bot, "!group verify G1", "G1")
    await said(ada, food, bot, "!collab record type=referral groups=G1,G2", "recorded")
    async with bot.app.db.transaction() as session:
        await seed_october(session, first_group=3)

    event = await said(cora, dm, bot, "!report adoption from=2026-10-01 to=2026-11-30",
                       "Adoption in")
    assert event["content"]["msgtype"] == "m.image"
    assert event["content"]["info"]["mimetype"] == "image/png"
    text = event["content"]["body"]
    sheet = await cora.wait_for_message(dm, sender=bot.user_id, contains="per district and IMD",
                                        timeout=WAIT)
    assert sheet["content"]["msgtype"] == "m.file"
    homeserver = bot.setup.settings().matrix.homeserver.rstrip("/")
    data = await download(cora, homeserver, sheet["content"]["url"])
    table = list(csv.DictReader(io.StringIO(data.decode())))
    figures = {(r["period"], r["measure"]): r["count"] for r in table if r["district"] == "all"}

    now = bot.app.clock.now()
    async with bot.app.db.transaction() as session:
        october = await direct_counts(session, OCT, NOV, now)
        november = await direct_counts(session, NOV, DEC, now)
    # The seeded month is big enough to show real numbers, not just "<5".
    assert october["groups registered"] == 10 and october["active rooms"] == 8
    assert october["notices delivered"] == 9 and october["notices engaged with"] == 6
    assert (october["introductions"], october["volunteer requests filled"],
            october["collaborations"]) == (6, 5, 6)
    for month, counts in (("2026-10", october), ("2026-11", november)):
        for measure, n in counts.items():
            if measure != "recent":
                assert figures[(month, measure)] == shown(n), (month, measure)
    recent = next(v for (p, m), v in figures.items() if p.startswith("last 30 days"))
    assert recent == shown(october["recent"]) == "<5"  # the two late-October rooms, and G1
    assert november["recent"] == 3
    assert f"Groups registered {shown(10 + 2)}, verified {shown(7 + 1)}" in text
    assert "Group rooms by network: Telegram 5, WhatsApp 5, Matrix <5." in text
    # Eight seeded rooms ran commands, and G1's (its !collab record; registering is no use).
    assert "Fenland: registered 10, active rooms 9," in text


async def test_funding_partners_respect_eligibility_opt_out_and_area(
        bot_factory: BotFactory, people: dict[str, Person]) -> None:
    ada, bob, cora = people["Ada"], people["Bob"], people["Cora"]
    bot = await bot_factory(roles={"coordinators": [cora.user_id]})
    food = await group_room(ada, [], bot, "Wisbech Food Bank")
    await said(ada, food, bot, '!group register name="Wisbech Food Bank" type=charity '
               "area=Wisbech themes=food size=small", "Registered G1")
    advice = await group_room(bob, [], bot, "March Advice")
    await said(bob, advice, bot, '!group register name="March Advice" type=charity area=March '
               "themes=advice size=small", "Registered G2")
    dm = await open_dm(cora, bot)
    for ref in ("G1", "G2"):
        await said(cora, dm, bot, f"!group verify {ref}", ref)
    async with bot.app.db.transaction() as session:
        now = bot.app.clock.now()
        for name, area, themes, kind, contact in (
                ("Opted-out Advice", MARCH, ["advice"], "charity", False),
                ("Cambridge Advice", ABBEY, ["advice"], "charity", True),
                ("Business Advice", MARCH, ["advice"], "business", True),
                ("Wisbech Walks", WISBECH, ["health"], "charity", True)):
            session.add(Group(room_id=None, name=name, type=kind, area_code=area, themes=themes,
                              size="small", contact=contact, email="x@example.org",
                              registered_by=cora.user_id, registered_at=now, verified_at=now))
    await said(cora, dm, bot, '!funding post https://example.org/fen title="Fen Fund" '
               'funder="Trust" deadline=+30d areas=fenland themes=food,advice,health '
               "eligibility=charity", "F1")

    listed = (await said(ada, food, bot, "!funding partners F1", "could bid"))["content"]["body"]
    lines = listed.splitlines()
    assert lines[1].startswith("1. G2 March Advice (March)")
    assert lines[2].startswith("2. G6 Wisbech Walks")
    assert not any(name in listed for name in ("Opted-out", "Cambridge", "Business"))

    asked = await said(ada, food, bot, "!funding partners F1 introduce=1", "Asked G2")
    assert asked["content"]["body"].startswith("Asked G2 March Advice (I1)")
    intro = await bob.wait_for_message(advice, sender=bot.user_id, contains="Introduction I1",
                                       timeout=WAIT)
    assert "G1 Wisbech Food Bank would like to be in touch" in intro["content"]["body"]
    async with bot.app.db.transaction() as session:
        rows = list(await session.scalars(select(Introduction)))
    assert [(i.from_group_id, i.to_group_id, i.status) for i in rows] == [(1, 2, "pending")]
