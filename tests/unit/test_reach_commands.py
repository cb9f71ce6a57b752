"""!reach as a coordinator meets it: statistics, predictions, gaps, seeding, a report with a
chart and a map, only for coordinators and only where no one else can read the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.features.intake import intake_of
from bot.ratelimit import RateLimiter
from storage.groups import Group
from storage.models import OutboxMessage
from tests.botworld import BotWorld, bot_world

CORA, CARL, ADA, MO, BEA = (f"@{n}:grapevine.local" for n in ("cora", "carl", "ada", "mo", "bea"))
WISBECH, CHATTERIS, ABBEY = "E04001668", "E04012516", "E05013050"
POST = ('!funding post https://example.org/food title="Food Fund" funder="Trust" '
        "deadline=2026-12-18 areas=fenland themes=food")


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[BotWorld]:
    """Five food groups, three in Fenland and two in Cambridge, with Mo and Bea active in
    several; F1 goes to the Fenland ones, and people there reply, react and pass it on."""
    async with bot_world(tmp_path, roles={"coordinators": [CORA, CARL]}) as bw:
        for name in ("cora", "carl", "ada", "mo", "bea"):
            bw.world.user(name, name.title())
        bw.app.limiter = RateLimiter(10_000)
        rooms = {}
        for name, area in (("Wisbech Pantry", WISBECH), ("Wisbech Fridge", WISBECH),
                           ("Chatteris Larder", CHATTERIS), ("Abbey Food Hub", ABBEY),
                           ("Abbey Kitchen", ABBEY)):
            room = bw.world.create_room(ADA, name=name, members=[MO, BEA])
            await bw.world.join(bw.bot, room)
            async with bw.app.db.transaction() as session:
                session.add(Group(room_id=room, name=name, type="charity", area_code=area,
                                  themes=["food"], size="small", registered_by=ADA,
                                  registered_at=bw.clock.now()))
            rooms[name] = room
        await bw.deliver()
        for room in rooms.values():
            await bw.world.say(MO, room, "hello")
            await bw.world.say(BEA, room, "hi")
        dm = await bw.transport.direct_room(CORA)
        await bw.say(CORA, dm, POST)
        wisbech = rooms["Wisbech Pantry"]
        [post] = [e["event_id"] for e in bw.world.room(wisbech).timeline if e["sender"] == bw.bot
                  and e["content"].get("body", "").startswith("Funding F1")]
        await bw.world.say(MO, wisbech, "Let's apply", reply_to=post)
        await bw.world.react(BEA, wisbech, post, "👍")
        await bw.world.say(MO, rooms["Abbey Kitchen"], "F1 is worth a look")
        await intake_of(bw.app).flush()
        yield bw


async def attachments(bw: BotWorld) -> list[OutboxMessage]:
    async with bw.app.db.transaction() as session:
        return list(await session.scalars(
            select(OutboxMessage).where(OutboxMessage.file_data.is_not(None))
            .order_by(OutboxMessage.id)))


async def test_only_coordinators_may_ask(county: BotWorld) -> None:
    dm = await county.transport.direct_room(MO)
    [answer] = await county.say(MO, dm, "!reach stats")
    assert answer.startswith("!reach stats needs the coordinator role")


async def test_asked_in_a_room_with_other_people_the_answer_goes_by_dm(county: BotWorld) -> None:
    room = county.world.create_room(ADA, name="Chat", members=[CORA, MO])
    await county.world.join(county.bot, room)
    await county.deliver()
    assert await county.say(CORA, room, "!reach stats") == ["I've sent you a direct message."]
    assert county.dms(CORA)[-1].startswith("District: rooms, groups")


async def test_a_room_of_coordinators_gets_the_answer_in_the_room(county: BotWorld) -> None:
    room = county.world.create_room(CORA, name="Coordinators", members=[CARL])
    await county.world.join(county.bot, room)
    await county.deliver()
    [answer] = await county.say(CORA, room, "!reach stats")
    assert answer.startswith("District: rooms, groups")


async def test_an_area_with_no_group_rooms_is_said_where_it_was_asked(county: BotWorld) -> None:
    # The records are read after the command's transaction; the refusal still comes
    # where the command was asked, not by DM (there is nothing private in it).
    room = county.world.create_room(ADA, name="Chat", members=[CORA, MO])
    await county.world.join(county.bot, room)
    await county.deliver()
    [answer] = await county.say(CORA, room, "!reach map area=E07000012")
    assert answer == ("I know no group rooms in South Cambridgeshire yet; groups get an area "
                      "when they register.")
    assert await attachments(county) == []  # and no map


async def test_stats_per_district_show_small_counts_as_under_five(county: BotWorld) -> None:
    dm = await county.transport.direct_room(CORA)
    [answer] = await county.say(CORA, dm, "!reach stats")
    lines = answer.splitlines()
    # Fenland: no plain rooms, 3 groups, Mo and Bea active, 6 messages and a reply.
    assert "Fenland: <5, <5, <5, 7, " in answer
    # Cambridge: 2 groups, the same two people, 4 messages and the mention of F1.
    assert "Cambridge: <5, <5, <5, 5, " in answer
    assert not any(n.isdigit() and int(n) < 5
                   for line in lines[1:] for n in line.split(": ", 1)[1].split(", "))


async def test_predict_report_seed_gaps_and_map_answer_a_coordinator(county: BotWorld) -> None:
    dm = await county.transport.direct_room(CORA)
    [predicted] = await county.say(CORA, dm, "!reach predict F1")
    assert predicted.startswith(
        "F1: Posted in 3 room(s), the rooms expected to be reached (90% intervals):")
    # The quantity the report observes: rooms that get it and leave a trace, not deliveries.
    assert "\nReached = a room that got the notice (posted or passed on) and left a trace" \
        in predicted
    assert "\nA room that gets it but where no one leaves a trace" in predicted
    assert "Fenland: <5 of <5 rooms (<5-<5" in predicted
    await county.world.say(CORA, dm, "!reach report F1")
    await county.world.say(CORA, dm, "!reach map")
    # Read the charts before they are sent: the outbox keeps no copy of a sent DM.
    files = await attachments(county)
    assert [f.file_name for f in files] == ["reach-F1.png", "reach-map.png"]
    assert all(f.file_mime == "image/png" and (f.file_data or b"").startswith(b"\x89PNG")
               for f in files)
    await county.deliver()
    reported, mapped = county.world.messages(dm, sender=county.bot)[-2:]
    assert reported.startswith("F1: Reached = a room that got the notice")
    assert "link opened by a person (link previews and repeat opens are not counted)" in reported
    total = next(line for line in reported.splitlines() if line.startswith("All rooms:"))
    assert total.endswith("90% interval), observed <5")
    assert "\nBy deprivation (IMD 1 = most deprived): IMD 1-3: predicted <5" in reported
    assert reported.endswith("No earlier notices yet to check the model's 90% interval against.")
    assert mapped.startswith("The network: 5 rooms and groups")
    [seeded] = await county.say(CORA, dm, "!reach seed F1 k=2 equity=1")
    assert seeded.startswith("F1: Post in these 2 room(s) (equity 1):")
    assert "1-1/e-0.2" in seeded
    await county.world.say(CORA, dm, "!reach gaps area=fenland")
    [gap_map] = await attachments(county)
    assert gap_map.file_name == "reach-gaps-map.png" and gap_map.file_mime == "image/png"
    await county.deliver()
    gaps, alt = county.world.messages(dm, sender=county.bot)[-2:]
    assert gap_map.body == alt  # the image's text alternative
    assert gaps.startswith("Localities most in need")
    # Fenland's most deprived localities with no group on chat head the list, each with the
    # ties that would bring it in, then the reach-funding table.
    assert "\n1. Christchurch (IMD 2): no room on chat; past grants <5, £0" in gaps
    assert "; close it with a tie: its first group on chat - G" in gaps
    assert gaps.endswith("\nGroups with no tie outside their circle: <5")
    assert len(gaps.splitlines()) <= 12  # one screen, no "!more"
    assert "\n- no room on chat: 14 (6), <5 grants £0, <5 collaborations" in gaps
    assert alt.startswith("Map of 16 localities at their ONS points")


async def test_predict_with_other_seeds_and_refusals_say_what_to_do(county: BotWorld) -> None:
    dm = await county.transport.direct_room(CORA)
    [answer] = await county.say(CORA, dm, "!reach predict F1 seeds=G4,G5")
    assert answer.startswith("F1: Posted in 2 room(s)")
    [answer] = await county.say(CORA, dm, "!reach predict F9")
    assert answer.startswith("There is no notice F9")
    [answer] = await county.say(CORA, dm, "!reach predict F1 seeds=G99")
    assert answer.startswith("seeds: I don't know the room G99")


def test_past_notices_are_checked_against_what_was_known_before_them() -> None:
    from bot.features.reach_network import history_before, history_without

    histories = {1: [("!a", True)], 2: [("!b", False)], 3: [("!c", True)]}
    assert history_before(histories, 2) == [("!a", True)]
    assert history_before(histories, 1) == []
    assert history_without(histories, 2) == [("!a", True), ("!c", True)]


async def test_gaps_put_past_grants_and_collaborations_beside_reach(county: BotWorld) -> None:
    """Grants imported from 360Giving and collaboration records are summed per locality and
    shown in the reach-funding table; a grant in another currency counts but adds no pounds."""
    from storage import collab, funding

    def grant(n: int, area: str, amount: float, currency: str = "GBP") -> dict[str, object]:
        return {"grant_id": f"360G-test-{n}", "title": "Food", "funder_id": "GB-CHC-1",
                "funder_name": "Trust", "recipient_id": f"GB-CHC-{n}", "recipient_name": "Group",
                "amount": amount, "currency": currency, "awarded_on": "2025-01-01",
                "area_code": area, "themes": ["food"]}

    async with county.app.db.transaction() as session:
        await funding.upsert_grants(session, [
            grant(1, WISBECH, 4_000), grant(2, WISBECH, 3_500), grant(3, CHATTERIS, 1_000),
            grant(4, CHATTERIS, 900, "EUR"), grant(5, "E07000010", 50_000)])  # 5: district only
        for _ in range(5):
            await collab.record(session, type="shared-event", group_ids=[1, 3], amount=None,
                                note=None, author=ADA, at=county.clock.now())
    dm = await county.transport.direct_room(CORA)
    await county.world.say(CORA, dm, "!reach gaps area=fenland")
    await county.deliver()
    gaps = county.world.messages(dm, sender=county.bot)[-2]
    table = gaps.split("past grants, collaborations):\n", 1)[1].splitlines()
    # Wisbech (£7,500) and Chatteris (£1,000 and a grant in euros) are the two localities
    # on chat; each has the five records of G1 (Wisbech) with G3 (Chatteris).
    on_chat = [line for line in table if line.startswith("- ") and "no room" not in line]
    pounds = sorted(line.split(" grants ")[1].split(", ")[0] for line in on_chat)
    assert pounds == ["£1,000", "£7,500"]
    assert all(line.endswith(", 5 collaborations") for line in on_chat)
    assert "- no room on chat: 14 (6), <5 grants £0, <5 collaborations" in table


async def test_every_reach_command_answers_the_same_from_the_services_process_pool(
    county: BotWorld,
) -> None:
    """Under the service the model runs in another process (bot.offload): everything a
    command sends there and gets back crosses a pickle, and the answers (text and charts)
    are those of the thread the test worlds use."""
    from bot.offload import InProcesses

    dm = await county.transport.direct_room(CORA)
    commands = ["!reach stats", "!reach predict F1", "!reach predict F1 seeds=G4,G5",
                "!reach gaps area=fenland", "!reach seed F1 k=2", "!reach report F1",
                "!reach map", "!reach stats area=E05013050"]

    async def answers() -> list[tuple[list[str], list[tuple[str, bytes | None]]]]:
        said = []
        for command in commands:
            before = len(county.world.messages(dm, sender=county.bot))
            await county.world.say(CORA, dm, command)
            files = [(f.file_name or "", f.file_data) for f in await attachments(county)]
            await county.deliver()
            said.append((county.world.messages(dm, sender=county.bot)[before:], files))
        return said

    in_a_thread = await answers()
    county.app.offload = pool = InProcesses(workers=1)
    try:
        elsewhere = await answers()
        workers = pool.processes()  # they did run in another process
    finally:
        pool.close()
    assert len(workers) == 1
    assert elsewhere == in_a_thread
    assert all(texts for texts, _ in elsewhere)
    assert [name for _, files in elsewhere for name, _ in files] == [
        "reach-gaps-map.png", "reach-F1.png", "reach-map.png"]
