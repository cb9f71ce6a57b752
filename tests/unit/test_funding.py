"""Funding notices as people meet them: posting, approval, targeting, reminders, digests, links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.features import funding_jobs, funding_links
from bot.ratelimit import RateLimiter
from bot.transport.world import WorldTransport
from storage import funding, groups
from storage.funding import FundingDelivery, FundingNotice, FundingSource, FundingSubscription
from storage.tree import TreeRoom
from tests.botworld import BotWorld, bot_world

CORA, FEN, CAM, MO, ADA = (f"@{n}:grapevine.local" for n in ("cora", "fen", "cam", "mo", "ada"))
ROLES = {
    "coordinators": [CORA],
    "moderators": {"fenland": [FEN], "cambridge": [CAM]},
}
POST = ('!funding post https://example.org/warm title="Warm Spaces" funder="Community Fund" '
        "deadline=2026-12-18 amount=500-5000 areas=wisbech themes=food")


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path, roles=ROLES) as bw:
        for name in ("cora", "fen", "cam", "mo", "ada"):
            bw.world.user(name, name.title())
        # Ada sets up forty rooms in a minute; the flood guard is tested elsewhere.
        bw.app.limiter = RateLimiter(10_000)
        yield bw


async def room(bw: BotWorld, name: str, admin: str = ADA) -> str:
    """A group room: Ada created it (its admin); the others are members."""
    members = [u for u in (MO, CORA, FEN, CAM) if u in bw.world.display_names]
    room_id = bw.world.create_room(admin, name=name, members=members)
    await bw.world.join(bw.bot, room_id)
    await bw.deliver()
    return room_id


def notices_in(bw: BotWorld, room_id: str) -> list[str]:
    return [m for m in bw.world.messages(room_id, sender=bw.bot) if m.startswith("Funding F")]


async def count(bw: BotWorld, model: Any) -> int:
    async with bw.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def add_group(bw: BotWorld, room_id: str | None, area: str, themes: list[str],
                    type: str = "charity", size: str = "small", **kw: Any) -> None:
    async with bw.app.db.transaction() as session:
        session.add(groups.Group(
            room_id=room_id, name=f"Group in {area}", type=type, area_code=area, themes=themes,
            size=size, registered_by=ADA, registered_at=bw.clock.now(), **kw,
        ))


# -- posting and approval ----------------------------------------------------------------


async def test_a_moderators_post_in_their_area_is_published_to_the_rooms_that_want_it(
    town: BotWorld,
) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe areas=wisbech themes=food")
    # The poster's answer comes before the notice: answers go before the bot's own posts.
    [reply, notice] = await town.say(FEN, wisbech, POST)
    assert reply == "F1 published: going to 1 room now."
    assert notice.splitlines() == [
        "Funding F1: Warm Spaces (Community Fund)",
        "£500-£5,000 · closes Fri 18 Dec 2026",
        "For: Wisbech · food",
        "https://example.org/warm",
    ]
    # Bridges drop m.notice: the notice is m.text.
    [event] = [e for e in town.world.rooms[wisbech].timeline
               if e["content"].get("body", "").startswith("Funding F1")]
    assert event["content"]["msgtype"] == "m.text"


async def test_a_members_post_is_held_approvers_are_told_and_the_poster_hears_the_outcome(
    town: BotWorld,
) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe")
    [held] = await town.say(MO, wisbech, POST)
    assert held == ("F1 is held for approval by a coordinator or a moderator of Wisbech; "
                    "I'll tell you when it's decided.")
    assert notices_in(town, wisbech) == []
    assert any("F1 waits for approval" in m for m in town.dms(FEN))
    assert any("F1 waits for approval" in m for m in town.dms(CORA))
    assert town.dms(CAM) == []  # moderates Cambridge, not Wisbech

    [refused] = await town.say(MO, wisbech, "!funding approve F1")
    assert "needs the coordinator or moderator role" in refused
    [wrong_area] = await town.say(CAM, wisbech, "!funding approve F1")
    assert wrong_area == ("Only a coordinator or a moderator of every area it names (Wisbech) "
                          "may approve F1.")
    assert notices_in(town, wisbech) == []

    replies = await town.say(FEN, wisbech, "!funding approve F1")
    assert replies[0] == "F1 approved: going to 1 room now."
    assert len(notices_in(town, wisbech)) == 1
    assert town.dms(MO)[-1] == ("Your funding notice F1 (Warm Spaces) was approved "
                                "and is going to 1 room.")
    [again] = await town.say(CORA, wisbech, "!funding approve F1")
    assert again == "F1 is already published; nothing changed."


async def test_a_member_may_post_three_notices_a_day_and_hears_when_the_next_is_allowed(
    town: BotWorld,
) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    first_at = town.clock.now()  # Fri 20 Nov 2026 10:00 London
    for n in range(1, 4):
        [held] = await town.say(MO, wisbech, POST.replace("Warm Spaces", f"Fund {n}"))
        assert held.startswith(f"F{n} is held for approval")
        town.clock.advance(hours=1)
    approvers_told = len(town.dms(CORA))
    [refused] = await town.say(MO, wisbech, POST.replace("Warm Spaces", "Fund 4"))
    assert refused == ("You've made 3 funding notices in the last 24 hours, the daily limit "
                       "for anyone but a coordinator; you can make another from 10:00 on "
                       "Sat 21 Nov 2026. Nothing was changed.")
    assert await count(town, FundingNotice) == 3 and len(town.dms(CORA)) == approvers_told
    # A coordinator is not limited; the member may post again once the first is a day old.
    for n in range(4, 7):
        [published] = await town.say(CORA, wisbech, POST.replace("Warm Spaces", f"Fund {n}"))
        assert published.startswith(f"F{n} published")
    town.clock.current = first_at + timedelta(days=1)
    [held] = await town.say(MO, wisbech, POST.replace("Warm Spaces", "Fund 7"))
    assert held.startswith("F7 is held for approval")


async def test_a_notice_whose_deadline_passed_while_held_cannot_be_approved(
    town: BotWorld,
) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(MO, wisbech, POST)
    town.clock.current = datetime(2026, 12, 19, 10, tzinfo=UTC)
    [refused] = await town.say(CORA, wisbech, "!funding approve F1")
    assert refused == ("F1 closed on Fri 18 Dec 2026; reject it instead "
                       "(!funding reject F1).")


async def test_a_rejected_notice_goes_nowhere_and_the_poster_is_told_why(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe")
    await town.say(MO, wisbech, POST)
    [reply] = await town.say(CORA, wisbech, '!funding reject F1 reason="deadline is wrong"')
    assert reply == "F1 rejected: deadline is wrong."
    assert town.dms(MO)[-1] == ("Your funding notice F1 (Warm Spaces) was not published: "
                                "deadline is wrong.")
    assert notices_in(town, wisbech) == []
    assert await town.say(MO, wisbech, "!funding list") == ["No open funding notices match."]


async def test_a_county_wide_notice_needs_a_coordinator(town: BotWorld) -> None:
    lobby = await room(town, "County lobby")
    await town.say(ADA, lobby, "!funding subscribe")
    post = ('!funding post https://example.org/c title="County Fund" funder="Council" '
            "deadline=2026-12-18")
    [held] = await town.say(FEN, lobby, post)
    assert held == "F1 is held for approval by a coordinator; I'll tell you when it's decided."
    [refused] = await town.say(FEN, lobby, "!funding approve F1")
    assert refused == "Only a coordinator may approve F1."
    [reply, published] = await town.say(CORA, lobby, post)
    assert "For: all of Cambridgeshire and Peterborough" in published
    assert reply == "F2 published: going to 1 room now."


async def test_the_short_form_asks_for_the_rest_one_at_a_time(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    assert await town.say(CORA, wisbech, "!funding post https://example.org/f") == [
        "What is the fund called? (or !cancel)"]
    assert await town.say(CORA, wisbech, "Food Fund") == ["Who is the funder? (or !cancel)"]
    assert await town.say(CORA, wisbech, "Tesco") == [
        "When does it close? (a date, e.g. 5 Dec) (or !cancel)"]
    assert await town.say(CORA, wisbech, "10 Dec") == ["F1 published: going to 0 rooms now."]
    [shown] = await town.say(MO, wisbech, "!funding show F1")
    assert shown.splitlines()[:3] == [
        "F1 (published): Food Fund", "Funder: Tesco", "Closes Thu 10 Dec 2026"]


# -- bad input: a clear reply, nothing changed ---------------------------------------------


@pytest.mark.parametrize(("who", "command", "says"), [
    (CORA, POST.replace("2026-12-18", "2026-11-01"), "deadline: that has already passed"),
    (CORA, POST.replace("https://example.org/warm", "example"), "url: should be a web link"),
    (CORA, POST.replace("500-5000", "lots"), "amount: should be an amount or a range"),
    (CORA, POST.replace("wisbech", "atlantis"), "'atlantis' is not an area I know"),
    (CORA, POST + " eligibility=pirates", "eligibility: should be one of"),
    (CORA, POST + " size=huge", "size: should be one of micro, small, medium, large"),
    (CORA, POST + " colour=red", "colour= is not an option of !funding post"),
    (CORA, "!funding approve F99", "There is no notice F99"),
    (CORA, "!funding approve banana", "notice: should be an id like F12"),
    (CORA, "!funding reject F99", "There is no notice F99"),
    (MO, "!funding show F99", "There is no notice F99"),
    (MO, "!funding subscribe", "!funding subscribe needs the group admin role"),
    (ADA, "!funding subscribe digest=hourly", "digest: should be one of instant, daily, weekly"),
    (ADA, "!funding subscribe reminders=maybe", "reminders: should be yes or no"),
    (ADA, "!funding subscribe min=5000 max=100", "min is more than max"),
    (ADA, "!funding unsubscribe", "This room has no funding subscription; nothing changed."),
    (MO, "!funding source add https://example.org/feed", "needs the coordinator role"),
    (CORA, "!funding source add not-a-url", "url: should be a web link"),
    (CORA, "!funding source remove S9", "There is no feed S9"),
    (CORA, "!funding list area=atlantis", "'atlantis' is not an area I know"),
    (MO, "!funding lsit", "'lsit' is not a funding command; !help funding lists them"),
])
async def test_bad_input_gets_one_clear_reply_and_changes_nothing(
    town: BotWorld, who: str, command: str, says: str
) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    before = [await count(town, m) for m in (FundingNotice, FundingSubscription, FundingSource,
                                             FundingDelivery)]
    replies = await town.say(who, wisbech, command)
    assert len(replies) == 1 and says in replies[0], replies
    after = [await count(town, m) for m in (FundingNotice, FundingSubscription, FundingSource,
                                            FundingDelivery)]
    assert after == before


async def test_a_subscription_is_made_in_a_group_room_not_a_direct_message(
    town: BotWorld,
) -> None:
    dm = town.world.create_room(ADA, name="", members=[], direct=True)
    await town.world.join(town.bot, dm)
    [reply] = await town.say(ADA, dm, "!funding subscribe")
    assert reply == "Run !funding subscribe in your group's own room, not here."
    assert await count(town, FundingSubscription) == 0


async def test_a_duplicate_feed_is_refused(town: BotWorld) -> None:
    lobby = await room(town, "Coordinators")
    [added] = await town.say(CORA, lobby, "!funding source add https://example.org/feed.xml")
    assert added.startswith("S1 added")
    [again] = await town.say(CORA, lobby, "!funding source add https://example.org/feed.xml")
    assert again == "That feed is already S1; nothing changed."
    [removed] = await town.say(CORA, lobby, "!funding source remove S1")
    assert removed == "S1 removed; notices it brought stay as they are."
    assert await town.say(CORA, lobby, "!funding sources") == [
        "No feeds yet; add one with !funding source add <feed-url>."]


# -- targeting: 40 rooms, each gets exactly what it should, once ---------------------------

WISBECH, CHATTERIS, ABBEY, FENLAND, CAMBRIDGE = (
    "E04001668", "E04012516", "E05013050", "E07000010", "E07000008")


async def forty_rooms(bw: BotWorld) -> tuple[dict[str, str], set[str]]:
    """Rooms by name, and the names that should get a food notice for Fenland charities."""
    names = {}
    for i in range(40):
        names[f"r{i:02d}"] = await room(bw, f"Room {i}")
    subs = {  # subscriptions: (options, should match)
        "r00": ("", True), "r01": ("areas=wisbech", True), "r02": ("areas=all", True),
        "r03": ("themes=food,youth", True), "r04": ("min=1000", True),
        "r05": ("max=10000", True), "r06": ("areas=cambridge", False),
        "r07": ("themes=arts", False), "r08": ("min=10000", False), "r09": ("size=large", False),
        "r36": ("digest=daily", False),  # matches, but in tomorrow's digest, not now
        "r37": ("digest=weekly themes=food", False),
    }
    for name, (options, _) in subs.items():
        [reply] = await bw.say(ADA, names[name], f"!funding subscribe {options}")
        assert reply.startswith("Subscribed"), reply
    profiles: dict[str, tuple[str, list[str], str, str, dict[str, Any]]] = {
        "r10": (WISBECH, ["food"], "charity", "small", {}),
        "r11": (CHATTERIS, ["food", "youth"], "unregistered-group", "micro", {}),
        "r12": (FENLAND, ["food"], "charity", "micro", {}),
        "r13": (ABBEY, ["food"], "charity", "small", {}),
        "r14": (WISBECH, ["arts"], "charity", "small", {}),
        "r15": (WISBECH, ["food"], "cic", "small", {}),
        "r16": (WISBECH, ["food"], "charity", "large", {}),
        "r17": (WISBECH, ["food"], "charity", "small", {"contact": False}),
        "r07": (WISBECH, ["food"], "charity", "small", {}),  # its subscription said arts
        "r36": (WISBECH, ["food"], "charity", "small", {}),  # daily digest room
    }
    for name, (area, themes, type_, size, extra) in profiles.items():
        await add_group(bw, names[name], area, themes, type_, size, **extra)
    await add_group(bw, None, WISBECH, ["food"], email="offline@example.org")
    tree = {"r30": (WISBECH, None, "locality"), "r31": (ABBEY, None, "locality"),
            "r32": ("E47000008", "food", "function"), "r33": ("E47000008", "arts", "function"),
            "r34": (CAMBRIDGE, "food", "function"), "r35": (CHATTERIS, None, "locality")}
    async with bw.app.db.transaction() as session:
        for name, (area, theme, kind) in tree.items():
            session.add(TreeRoom(key=f"k-{name}", room_id=names[name], alias=f"#{name}:x",
                                 kind=kind, area_code=area, theme=theme, name=name,
                                 created_at=bw.clock.now()))
    expected = {n for n, (_, yes) in subs.items() if yes}
    expected |= {"r10", "r11", "r12", "r07", "r30", "r32", "r35"}
    return names, expected


FENLAND_FOOD = ('!funding post https://example.org/food title="Food Fund" funder="Trust" '
                "deadline=2026-12-18 amount=500-5000 areas=fenland themes=food "
                "eligibility=charity,unregistered-group size=micro,small")


async def test_forty_rooms_get_exactly_the_right_notice_once_each(town: BotWorld) -> None:
    names, expected = await forty_rooms(town)
    lobby = await room(town, "Coordinators")
    replies = await town.say(CORA, lobby, FENLAND_FOOD)
    assert replies[-1] == f"F1 published: going to {len(expected)} rooms now, 3 digests."
    got = {name for name, rid in names.items() if notices_in(town, rid)}
    assert got == expected
    assert all(len(notices_in(town, names[n])) == 1 for n in expected)
    # Sweeps and deliveries run again: nobody hears twice.
    await funding_jobs.sweep(town.app)
    await town.deliver()
    assert all(len(notices_in(town, names[n])) <= 1 for n in names)
    async with town.app.db.transaction() as session:
        seeds = await funding.deliveries(session, 1)
        email = await funding.email_digest(session)
    assert {s.room_id for s in seeds} == {names[n] for n in expected}
    assert all(s.event_id and s.sent_at for s in seeds)  # the seed knows its event
    assert [e.email for e, _ in email] == ["offline@example.org"]

    # The daily digest room hears at 08:00 tomorrow; the weekly one on Monday.
    town.clock.current = datetime(2026, 11, 21, 7, 59, tzinfo=UTC)
    await funding_jobs.sweep(town.app)
    await town.deliver()
    assert town.world.messages(names["r36"], sender=town.bot)[-1].startswith("Subscribed")
    town.clock.advance(minutes=1)
    await funding_jobs.sweep(town.app)
    await town.deliver()
    digest = town.world.messages(names["r36"], sender=town.bot)[-1]
    assert digest.startswith("Funding digest: 1 new notices\nF1 Food Fund (Trust)")
    assert not town.world.messages(names["r37"], sender=town.bot)[-1].startswith("Funding")
    town.clock.current = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    await funding_jobs.sweep(town.app)
    await town.deliver()
    assert town.world.messages(names["r37"], sender=town.bot)[-1].startswith("Funding digest")
    await funding_jobs.sweep(town.app)
    await town.deliver()
    assert sum(m.startswith("Funding digest") for m in
               town.world.messages(names["r36"], sender=town.bot)) == 1


class Crash(BaseException):
    """The process dies: not an error anything inside may catch."""


async def test_killed_mid_broadcast_the_restart_delivers_the_rest_without_duplicates(
    town: BotWorld,
) -> None:
    from bot.runtime.outbox_worker import OutboxWorker

    names, expected = await forty_rooms(town)
    lobby = await room(town, "Coordinators")
    await town.world.say(CORA, lobby, FENLAND_FOOD)  # queued, not yet sent

    class Dying(WorldTransport):
        sends = 0

        async def send(self, room_id: str, content: Any, **kw: Any) -> str:
            event_id = await super().send(room_id, content, **kw)
            Dying.sends += 1
            if Dying.sends == 6:
                raise Crash  # sent, but killed before the outbox recorded it
            return event_id

    dying = Dying(town.world, town.bot)
    with pytest.raises(Crash):
        await OutboxWorker(town.app.db, dying, town.clock).drain()
    assert 0 < len({n for n, r in names.items() if notices_in(town, r)}) < len(expected)

    # Restarted: a fresh worker (and a fresh login: no memory of transaction ids).
    town.world._txns.clear()
    worker = OutboxWorker(town.app.db, WorldTransport(town.world, town.bot), town.clock)
    while await worker.drain():
        pass
    assert {n for n, r in names.items() if notices_in(town, r)} == expected
    assert all(len(notices_in(town, names[n])) == 1 for n in expected)


# -- reminders across the clock changes ------------------------------------------------------


async def reminder_scenario(bw: BotWorld, start: datetime, deadline: str) -> tuple[str, str]:
    bw.clock.current = start
    wisbech = await room(bw, "Wisbech Food Bank")
    quiet = await room(bw, "Quiet room")
    await bw.say(ADA, wisbech, "!funding subscribe")
    await bw.say(ADA, quiet, "!funding subscribe reminders=no")
    await bw.say(CORA, wisbech, POST.replace("2026-12-18", deadline))
    return wisbech, quiet


async def reminders_at(bw: BotWorld, room_id: str, moment: datetime) -> list[str]:
    bw.clock.current = moment
    await funding_jobs.sweep(bw.app)
    await bw.deliver()
    return [m for m in bw.world.messages(room_id, sender=bw.bot) if m.startswith("Reminder")]


async def test_reminders_fire_at_nine_local_across_the_october_change(town: BotWorld) -> None:
    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    wisbech, quiet = await reminder_scenario(town, start, "2026-10-30")
    assert await reminders_at(town, wisbech, datetime(2026, 10, 23, 7, 59, tzinfo=UTC)) == []
    [week] = await reminders_at(town, wisbech, datetime(2026, 10, 23, 8, 0, tzinfo=UTC))
    assert week.startswith("Reminder: funding F1 Warm Spaces closes in 7 days (Fri 30 Oct 2026)")
    # After the clocks go back, 09:00 is 09:00 UTC.
    assert len(await reminders_at(town, wisbech, datetime(2026, 10, 29, 8, 59,
                                                          tzinfo=UTC))) == 1
    [_, day] = await reminders_at(town, wisbech, datetime(2026, 10, 29, 9, 0, tzinfo=UTC))
    assert "closes tomorrow" in day
    assert len(await reminders_at(town, wisbech, datetime(2026, 10, 29, 12, tzinfo=UTC))) == 2
    assert not any(m.startswith("Reminder") for m in town.world.messages(quiet))
    assert len(notices_in(town, quiet)) == 1


async def test_reminders_fire_at_nine_local_across_the_march_change(town: BotWorld) -> None:
    wisbech, _ = await reminder_scenario(town, datetime(2027, 3, 1, 10, tzinfo=UTC), "2027-04-01")
    assert await reminders_at(town, wisbech, datetime(2027, 3, 25, 8, 59, tzinfo=UTC)) == []
    assert len(await reminders_at(town, wisbech, datetime(2027, 3, 25, 9, 0,
                                                          tzinfo=UTC))) == 1
    # Summer time now: 09:00 local is 08:00 UTC.
    assert len(await reminders_at(town, wisbech, datetime(2027, 3, 31, 7, 59,
                                                          tzinfo=UTC))) == 1
    assert len(await reminders_at(town, wisbech, datetime(2027, 3, 31, 8, 0, tzinfo=UTC))) == 2


async def test_expired_notices_stop_appearing_in_the_list(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(CORA, wisbech, POST)
    await town.say(CORA, wisbech, POST.replace("2026-12-18", "2026-11-25").replace(
        "Warm Spaces", "Soon Gone"))
    [listing] = await town.say(MO, wisbech, "!funding")
    assert listing.splitlines() == [
        "F2 Soon Gone (Community Fund), closes Wed 25 Nov 2026",
        "F1 Warm Spaces (Community Fund), closes Fri 18 Dec 2026",
    ]
    town.clock.current = datetime(2026, 11, 26, 9, tzinfo=UTC)
    [listing] = await town.say(MO, wisbech, "!funding list open area=fenland theme=food")
    assert listing == "F1 Warm Spaces (Community Fund), closes Fri 18 Dec 2026"
    assert await town.say(MO, wisbech, "!funding list area=cambridge") == [
        "No open funding notices match."]
    [shown] = await town.say(MO, wisbech, "!funding show F2")
    assert shown.startswith("F2 (expired): Soon Gone")


# -- the counted link ----------------------------------------------------------------------


async def test_a_notice_link_counts_opens_per_room_and_never_who(tmp_path: Path) -> None:
    async with bot_world(tmp_path, roles=ROLES,
                         web={"base_url": "https://grapevine.example.org"}) as bw:
        for name in ("cora", "ada", "mo"):
            bw.world.user(name, name.title())
        first, second = await room(bw, "First"), await room(bw, "Second")
        for room_id in (first, second):
            await bw.say(ADA, room_id, "!funding subscribe")
        await bw.say(CORA, first, POST)
        [notice] = notices_in(bw, first)
        link = notice.splitlines()[-1]
        assert link.startswith("https://grapevine.example.org/n/F1/")
        assert link != notices_in(bw, second)[0].splitlines()[-1]
        path = link.removeprefix("https://grapevine.example.org")

        web_app = web.Application()
        web_app.router.add_routes(funding_links.routes(bw.app))
        firefox = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0"}
        safari = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Safari/604.1"}
        async with TestClient(TestServer(web_app)) as client:

            async def go(headers: dict[str, str], method: str = "GET") -> None:
                response = await client.request(method, path, headers=headers,
                                                allow_redirects=False)
                assert response.status == 302
                assert response.headers["Location"] == "https://example.org/warm"

            for _ in range(3):  # one person clicking three times: one open
                await go(firefox)
            await go(safari)  # another person
            # Link previews and HEAD requests are redirected but are no one's visit.
            for agent in ("Synapse (bot; +https://github.com/matrix-org/synapse)",
                          "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                          "WhatsApp/2.23.20.0", "TelegramBot (like TwitterBot)",
                          "facebookexternalhit/1.1", "Mozilla/5.0 (compatible; Discordbot/2.0)",
                          "Twitterbot/1.0", ""):
                await go({"User-Agent": agent})
            await go(firefox, "HEAD")
            bw.clock.current += funding_links.REPEAT_WINDOW  # the same person, later: counts
            await go(firefox)
            assert (await client.get("/n/F99/abc", allow_redirects=False)).status == 404
        async with bw.app.db.transaction() as session:
            opens = {d.room_id: d.opens for d in await funding.deliveries(session, 1)}
        assert opens == {first: 3, second: 0}


async def test_notices_wait_out_the_night(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe")
    town.clock.current = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)
    await town.say(CORA, wisbech, POST)
    assert notices_in(town, wisbech) == []
    town.clock.current = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    await town.deliver()
    assert len(notices_in(town, wisbech)) == 1


async def test_the_scheduled_jobs_sweep_reminders_and_poll_feeds(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe")
    await town.say(CORA, wisbech, POST)
    jobs = {job.id: job for job in funding_jobs.jobs(town.app)}
    assert set(jobs) == {"funding-sweep", "funding-feeds"}
    town.clock.current = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)  # 7 days before, 09:00 GMT
    for job in jobs.values():
        await job.run()
    await town.deliver()
    assert town.world.messages(wisbech, sender=town.bot)[-1].startswith(
        "Reminder: funding F1 Warm Spaces closes in 7 days")


async def test_the_link_handler_finds_the_bot_through_the_web_app(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe")
    await town.say(CORA, wisbech, POST)
    async with town.app.db.transaction() as session:
        [delivery] = await funding.deliveries(session, 1)
    web_app = web.Application()
    web_app[funding_links.APP_KEY] = town.app
    web_app.router.add_get("/n/{ref}/{key}", funding_links.open_link)
    async with TestClient(TestServer(web_app)) as client:
        response = await client.get(f"/n/F1/{delivery.room_key}", allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, "https://example.org/warm")
        assert (await client.get("/n/F1/unknown", allow_redirects=False)).status == 302
        assert (await client.get("/n/X1/abc", allow_redirects=False)).status == 404
    async with town.app.db.transaction() as session:
        assert [d.opens for d in await funding.deliveries(session, 1)] == [1]


async def test_a_fourth_notice_in_a_day_waits_for_the_rooms_morning_digest(town: BotWorld) -> None:
    wisbech = await room(town, "Wisbech Food Bank")
    await town.say(ADA, wisbech, "!funding subscribe")
    for title in ("One", "Two", "Three", "Four"):
        await town.say(CORA, wisbech, POST.replace("Warm Spaces", title))
    assert [n.splitlines()[0] for n in notices_in(town, wisbech)] == [
        "Funding F1: One (Community Fund)", "Funding F2: Two (Community Fund)",
        "Funding F3: Three (Community Fund)"]
    town.clock.current = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    from bot import voice

    await voice.send_digests(town.app, town.clock.now())
    await town.deliver()
    digest = town.world.messages(wisbech, sender=town.bot)[-1]
    assert digest.startswith("Digest: 1 post held back") and "Funding F4: Four" in digest
