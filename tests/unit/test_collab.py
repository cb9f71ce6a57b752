"""Evidence that collaboration pays: recorded by group admins, summed per area and quarter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.features.impact import Evidence, quarter, summarise
from config.areas import AreaIndex
from config.settings import load_settings
from storage.collab import CollabRecord
from storage.groups import Group
from tests.botworld import BotWorld, bot_world

BOT = "@grapevine:grapevine.local"
WISBECH, MARCH, CAMBRIDGE, FENLAND = "E04001668", "E04001661", "E07000008", "E07000010"
LONDON = ZoneInfo("Europe/London")


@dataclass
class Place:
    bw: BotWorld
    ann: str  # admin of G1's room (Wisbech)
    zoe: str  # member of G1, not an admin
    cora: str  # coordinator
    room: str


@pytest.fixture
async def place(tmp_path: Path) -> AsyncIterator[Place]:
    settings = load_settings(
        None, bot={"data_dir": str(tmp_path), "commands_per_minute": 1000},
        matrix={"user_id": BOT}, roles={"coordinators": ["@cora:grapevine.local"]},
    )
    async with bot_world(tmp_path, settings=settings) as bw:
        ann, zoe, cora = (bw.world.user(n, n.title()) for n in ("ann", "zoe", "cora"))
        room = bw.world.create_room(ann, name="Wisbech Food Bank", members=[zoe, cora])
        await bw.world.join(bw.bot, room)
        async with bw.app.db.transaction() as session:
            for n, (name, area) in enumerate([("Wisbech Food Bank", WISBECH),
                                              ("March Men's Shed", MARCH),
                                              ("Cambridge Cyclists", CAMBRIDGE)]):
                session.add(Group(room_id=room if n == 0 else None, name=name,
                                  type="community-group", area_code=area, themes=[],
                                  size="small", registered_by=ann,
                                  registered_at=bw.clock.now()))
        await bw.deliver()
        yield Place(bw, ann, zoe, cora, room)


async def records(bw: BotWorld) -> int:
    async with bw.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(CollabRecord)
                                         .where(CollabRecord.removed_at.is_(None))) or 0)


async def test_a_group_admin_records_a_joint_bid_and_everyone_sees_it_count(place: Place) -> None:
    bw = place.bw
    [done] = await bw.say(place.ann, place.room, "!collab record type=joint-funding "
                          'groups=G1,G2 amount=£5,000 note="Warm spaces bid"')
    assert done == ("C1 recorded: joint funding bid between G1, G2, £5,000. "
                    "!collab impact shows the sums.")
    await bw.say(place.cora, place.room, "!collab record type=referral groups=G1,G3")
    [impact] = await bw.say(place.zoe, place.room, "!collab impact area=Fenland")
    assert impact.splitlines()[0] == ("Collaboration in Fenland: 2 records between 3 groups; "
                                      "joint bids won £5,000.")
    assert "Joint funding bids 1; referrals 1." in impact
    assert "By quarter: 2026 Q4 2 (£5,000)." in impact
    assert "Wisbech: 2 (£5,000)" in impact and "March: 1 (£5,000)" in impact
    [county] = await bw.say(place.zoe, place.room, "!collab impact")
    assert "Fenland: 2 (£5,000)" in county and "Cambridge: 1" in county


@pytest.mark.parametrize(("who", "command", "expected"), [
    ("zoe", "!collab record type=shared-event groups=G1,G2",
     "Only an admin of one of these groups' rooms, or a coordinator"),
    ("ann", "!collab record type=shared-event groups=G1,G2 amount=300",
     "amount= counts only for joint-funding"),
    ("ann", "!collab record type=joint-funding groups=G1,G2 amount=500-900",
     "amount= takes the one sum the bid won"),
    ("ann", "!collab record type=shared-event groups=G1,G9", "There is no group G9"),
    ("ann", "!collab record type=shared-event groups=G1", "Collaboration takes at least two"),
    ("ann", "!collab record type=party groups=G1,G2", "type: should be one of joint-funding"),
])
async def test_bad_records_get_a_clear_reply_and_record_nothing(
    place: Place, who: str, command: str, expected: str,
) -> None:
    [reply] = await place.bw.say(getattr(place, who), place.room, command)
    assert reply.startswith(expected), reply
    assert await records(place.bw) == 0


async def test_only_the_author_or_a_coordinator_removes_a_record(place: Place) -> None:
    bw = place.bw
    await bw.say(place.ann, place.room, "!collab record type=event groups=G1,G2")
    [refused] = await bw.say(place.zoe, place.room, "!collab remove C1")
    assert refused.startswith("Only @ann:grapevine.local, who recorded C1, or a coordinator")
    assert await records(bw) == 1
    [removed] = await bw.say(place.ann, place.room, "!collab remove C1")
    assert removed == "C1 removed; it no longer counts in !collab impact."
    [gone] = await bw.say(place.ann, place.room, "!collab remove C1")
    assert gone == "There is no record C1."
    [empty] = await bw.say(place.zoe, place.room, "!collab impact area=wisbech")
    assert empty.startswith("No collaboration recorded in Wisbech yet.")


def test_quarters_follow_local_time_not_utc() -> None:
    # 00:30 on 1 April in London (summer time) is still 31 March in UTC.
    assert quarter(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), LONDON) == "2026 Q2"
    assert quarter(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), LONDON) == "2026 Q4"


def test_impact_sums_funding_once_in_total_and_in_each_area_involved() -> None:
    areas = AreaIndex.load()
    groups = {1: WISBECH, 2: MARCH, 3: CAMBRIDGE}
    evidence = [
        Evidence("joint-funding", (1, 3), 10_000, datetime(2026, 2, 1, tzinfo=UTC)),
        Evidence("joint-funding", (1, 2), 2_500, datetime(2026, 5, 1, tzinfo=UTC)),
        Evidence("shared-volunteers", (2, 3), None, datetime(2026, 8, 1, tzinfo=UTC)),
    ]
    text = summarise(evidence, groups, areas, areas.root.code, LONDON)
    lines = text.splitlines()
    assert lines[0].endswith("3 records between 3 groups; joint bids won £12,500.")
    assert lines[2] == "By quarter: 2026 Q1 1 (£10,000), 2026 Q2 1 (£2,500), 2026 Q3 1."
    assert "Fenland: 3 (£12,500)" in lines and "Cambridge: 2 (£10,000)" in lines
    only_cambridge = summarise(evidence, groups, areas, CAMBRIDGE, LONDON)
    assert only_cambridge.splitlines()[0] == (
        "Collaboration in Cambridge: 2 records between 3 groups; joint bids won £10,000.")
