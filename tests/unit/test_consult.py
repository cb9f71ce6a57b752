"""Consultations as coordinators, group admins and members meet them, and feedback."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.features import consult as consult_feature
from bot.features import consult_results as results
from bot.features.intake import flow_secret
from bot.ratelimit import RateLimiter
from storage import consult, flow, groups, rooms
from storage.consult import Answer, Feedback, Poll
from storage.models import OutboxMessage
from tests.botworld import BotWorld, bot_world
from tests.clocks import london
from tests.small_county import write_test_areas

HS = "grapevine.local"
CORA, GAIL, MO, HAL, IVY = (f"@{n}:{HS}" for n in ("cora", "gail", "mo", "hal", "ivy"))
ASK = '!consult ask question="Would a shared minibus help?" options="Yes|No|Not sure"'


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path, roles={"coordinators": [CORA]},
        areas={"file": str(write_test_areas(tmp_path / "areas.csv"))},
    ) as bw:
        for user in (CORA, GAIL, MO, HAL, IVY):
            bw.world.user(user[1:].split(":")[0], user[1:4].title())
        bw.app.limiter = RateLimiter(10_000)
        yield bw


async def group_room(bw: BotWorld, name: str, area: str, themes: list[str], admin: str = GAIL,
                     network: str | None = None, **profile: Any) -> str:
    """A registered group's own room: ``admin`` holds power 50, Mo is a member."""
    room = bw.world.create_room(admin, name=name, members=[MO], power={admin: 50})
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    async with bw.app.db.transaction() as session:
        session.add(groups.Group(room_id=room, name=name, type=profile.pop("type", "charity"),
                                 area_code=area, themes=themes, size="small",
                                 registered_by=admin, registered_at=bw.clock.now(), **profile))
        if network is not None:
            known = await rooms.get(session, room)
            assert known is not None
            known.network = network
    bw.app.forget_room_context(room)
    return room


async def office(bw: BotWorld) -> str:
    """The coordinator's own room with the bot (no group in it)."""
    room = bw.world.create_room(CORA, name="Office")
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


def installed_jobs(bw: BotWorld) -> dict[str, Any]:
    """The jobs the feature installs, as the scheduler would get them."""
    jobs: list[Any] = []

    class Capture:
        def __getattr__(self, name: str) -> Any:
            return getattr(bw.app, name)

        def add_job(self, job: Any) -> None:
            jobs.append(job)

    consult_feature.install(Capture())  # type: ignore[arg-type]
    return {job.id: job for job in jobs}


async def three_groups(bw: BotWorld) -> tuple[str, str, str, str]:
    """Two food groups in Fenmarsh (one on WhatsApp), one in Hillside; the coordinator's room."""
    wisby = await group_room(bw, "Wisby Food Bank", "E04900001", ["food"], network="whatsapp")
    march = await group_room(bw, "March End Pantry", "E04900002", ["food", "advice"])
    upton = await group_room(bw, "Upton Larder", "E04900004", ["food"], admin=HAL)
    return wisby, march, upton, await office(bw)


def said(bw: BotWorld, room: str) -> list[str]:
    return bw.world.messages(room, sender=bw.bot)


async def rows(bw: BotWorld, model: Any) -> list[Any]:
    async with bw.app.db.transaction() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


async def count(bw: BotWorld, model: Any) -> int:
    async with bw.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# -- asking ------------------------------------------------------------------------------


async def test_a_poll_goes_to_the_matching_groups_rooms_only(county: BotWorld) -> None:
    wisby, march, upton, desk = await three_groups(county)
    elsewhere = await group_room(county, "Wisby Youth", "E04900001", ["youth"])
    shy = await group_room(county, "Quiet Pantry", "E04900003", ["food"], contact=False)
    [reply] = await county.say(CORA, desk, ASK + " areas=Fenmarsh themes=food closes=2026-12-04")
    assert reply == ("K1 put to 2 groups. !consult results K1 shows the answers; "
                     "!consult close K1 ends it.")
    await county.deliver()
    [poll] = [m for m in said(county, wisby) if m.startswith("Consultation")]
    assert poll.splitlines() == [
        "Consultation K1 from the coordinators: Would a shared minibus help?",
        "a) Yes · b) No · c) Not sure",
        'A room admin answers for the group: !consult answer K1 a (comment="..." if you like).',
        "Closes Fri 4 Dec 2026."]
    assert any(m.startswith("Consultation K1") for m in said(county, march))
    for room in (upton, elsewhere, shy):
        assert not any(m.startswith("Consultation") for m in said(county, room))
    [row] = await rows(county, Poll)
    assert (row.question, row.options, row.group_ids) == (
        "Would a shared minibus help?", ["Yes", "No", "Not sure"], [1, 2])


async def test_a_county_wide_group_is_asked_about_a_parish_it_works_in(county: BotWorld) -> None:
    desk = await office(county)
    wide = await group_room(county, "County Food Network", "E04900004", ["food"], admin=HAL,
                            reach="county")
    local = await group_room(county, "Upton Larder", "E04900004", ["food"])
    [reply] = await county.say(CORA, desk, ASK + " areas=Wisby themes=food")
    assert reply.startswith("K1 put to 1 group")
    await county.deliver()
    assert any(m.startswith("Consultation K1") for m in said(county, wide))
    assert not any(m.startswith("Consultation") for m in said(county, local))


async def test_a_poll_is_the_bots_own_post_it_waits_out_the_night_and_the_cap(
    county: BotWorld,
) -> None:
    wisby, march, _, desk = await three_groups(county)
    async with county.app.db.transaction() as session:
        group = await groups.by_room(session, march)
        assert group is not None
        group.max_posts = 0  # March End's admins asked for no own posts: it goes to the digest
    county.clock.current = london(datetime(2026, 11, 20).date(), 22, 0)
    [reply] = await county.say(CORA, desk, ASK + " areas=Fenmarsh")
    assert reply.startswith("K1 put to 2 groups (2 after the night or in tomorrow's digest).")
    await county.deliver()
    assert not any(m.startswith("Consultation") for m in said(county, wisby))
    posts = {r.room_id: r for r in await rows(county, OutboxMessage)
             if (r.dedupe_key or "").startswith("consult:")}
    assert posts[wisby].own_post and posts[wisby].not_before == london(
        datetime(2026, 11, 21).date(), 8, 0)
    assert not posts[march].own_post  # held: folded into the morning digest
    county.clock.current = london(datetime(2026, 11, 21).date(), 8, 0)
    await county.deliver()
    assert any(m.startswith("Consultation K1") for m in said(county, wisby))


async def test_asking_needs_a_coordinator_and_a_match_and_changes_nothing_otherwise(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    [refused] = await county.say(GAIL, wisby, ASK)
    assert len(refused.splitlines()) == 1 and "coordinator" in refused
    [none] = await county.say(CORA, desk, ASK + " themes=youth")
    assert none.startswith("No group on chat matches") and none.endswith("Nothing was sent.")
    [bad] = await county.say(CORA, desk, '!consult ask question="Q?" options="Yes"')
    assert "options: needs two or more answers" in bad
    [past] = await county.say(CORA, desk, ASK + " closes=2026-11-01")
    assert past == "closes: that has already passed; give a date still to come."
    assert await count(county, Poll) == 0


# -- answering -----------------------------------------------------------------------------


async def test_a_groups_admin_answers_and_changes_it_one_answer_per_group(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK + " closes=2026-12-04")
    [first] = await county.say(GAIL, wisby, '!consult answer K1 b comment="We have a van"')
    assert first == ("G1's answer to K1: b) No (noted). Any admin here may change it until it "
                     "closes (Fri 4 Dec 2026).")
    [changed] = await county.say(GAIL, wisby, "!consult answer K1 Yes")
    assert changed.startswith("G1's answer to K1: a) Yes (changed from b) No).")
    [row] = await rows(county, Answer)
    assert (row.option, row.comment, row.voter_key, row.network, row.district) == (
        0, "We have a van", consult.GROUP, "whatsapp", "E07900001")


async def test_members_add_their_own_view_only_when_the_coordinator_allows_it(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK)
    [refused] = await county.say(MO, wisby, "!consult answer K1 a")
    assert refused == ("Only a room admin (power 50 here) answers K1 for G1; this consultation "
                       "asks for groups' answers only.")
    await county.say(CORA, desk, ASK + " members=yes")
    await county.deliver()
    assert "Members may add their own view the same way." in said(county, wisby)[-1]
    [own] = await county.say(MO, wisby, "!consult answer K2 c")
    assert own == ("Your own view on K2: c) Not sure (noted), kept without your name. "
                   "You may change it until it closes.")
    [again] = await county.say(MO, wisby, "!consult answer K2 2")
    assert again.startswith("Your own view on K2: b) No (changed from c) Not sure)")
    [view] = await rows(county, Answer)
    key = flow.pseudonym(flow_secret(county.app.settings), MO)
    assert (view.poll_id, view.voter_key, view.option) == (2, key, 1)
    assert MO not in repr(vars(view))


async def test_a_relayed_member_view_is_refused_since_the_relay_stands_for_many(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK + " members=yes")
    [refused] = await county.say(GAIL, wisby, "Mo: !consult answer K1 a")
    assert refused == ("I can't tell who sent a relayed message, so I can't keep your own view; "
                       "message my number directly to give it (!consult answer K1 ...).")
    assert await count(county, Answer) == 0


async def test_bad_answers_get_one_line_saying_what_to_do_and_change_nothing(
    county: BotWorld,
) -> None:
    wisby, _, upton, desk = await three_groups(county)
    await county.say(CORA, desk, ASK + " areas=Fenmarsh")
    await county.say(GAIL, wisby, "!consult answer K1 a")
    expected = {
        "!consult answer K9 a": "There is no consultation K9; check the number in the message "
                                "that asked it.",
        "!consult answer K1 d": "'d' is not an answer to K1: give a, b or c "
                                "(!consult answer K1 a).",
    }
    for command, reply in expected.items():
        assert await county.say(GAIL, wisby, command) == [reply]
    [elsewhere] = await county.say(HAL, upton, "!consult answer K1 a")
    assert elsewhere == ("K1 was not put to a group in this room; answer it in the room of a "
                         "group that got it.")
    [nogroup] = await county.say(CORA, desk, "!consult answer K1 a")
    assert nogroup.startswith("K1 was not put to a group in this room")
    [row] = await rows(county, Answer)
    assert (row.option, row.changed_at) == (0, None)


async def test_a_closed_poll_takes_no_answers_and_closing_twice_changes_nothing(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK)
    [refused] = await county.say(GAIL, wisby, "!consult close K1")
    assert "coordinator" in refused and len(refused.splitlines()) == 1
    [closed] = await county.say(CORA, desk, "!consult close K1")
    assert closed == ("K1 closed. !consult results K1 shows the counts, a chart and a CSV file.")
    [late] = await county.say(GAIL, wisby, "!consult answer K1 a")
    assert late == "K1 is closed Fri 20 Nov 2026; it takes no more answers."
    [twice] = await county.say(CORA, desk, "!consult close K1")
    assert twice == "K1 is already closed Fri 20 Nov 2026; nothing changed."
    assert await count(county, Answer) == 0


async def test_a_poll_closes_at_its_date_by_the_scheduled_job_on_the_bots_clock(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK + " closes=2026-11-21")
    [poll] = await rows(county, Poll)
    assert poll.closes_at is not None and poll.closed_at is None
    jobs = installed_jobs(county)
    assert list(jobs) == ["consult-close"]
    assert jobs["consult-close"].trigger.interval == timedelta(minutes=1)
    job = jobs["consult-close"]
    await job.run()
    assert (await rows(county, Poll))[0].closed_at is None  # not yet
    county.clock.current = poll.closes_at + timedelta(minutes=1)
    await job.run()
    await job.run()  # a second run finds nothing more to do
    [closed] = await rows(county, Poll)
    assert closed.closed_at == poll.closes_at
    await county.deliver()
    assert county.dms(CORA) == ["Your consultation K1 has closed at its closing time. "
                                "!consult results K1 shows the answers."]
    [late] = await county.say(GAIL, wisby, "!consult answer K1 a")
    assert late == "K1 is closed Sat 21 Nov 2026; it takes no more answers."


async def test_a_coordinator_lists_the_consultations_and_is_pointed_to_the_list(
    county: BotWorld,
) -> None:
    _, _, _, desk = await three_groups(county)
    assert await county.say(CORA, desk, "!consult list") == [
        "No consultations yet; !consult ask starts one."]
    await county.say(CORA, desk, ASK + " closes=2026-12-04")
    await county.say(CORA, desk, '!consult ask question="Meet in March?" options="Yes|No"')
    await county.say(CORA, desk, "!consult close K2")
    assert await county.say(CORA, desk, "!consult list") == [
        "K2 Meet in March? (closed Fri 20 Nov 2026)\n"
        "K1 Would a shared minibus help? (open until Fri 4 Dec 2026)"]
    assert await county.say(CORA, desk, "!consult close K5") == [
        "There is no consultation K5; !consult list shows them."]


# -- results -------------------------------------------------------------------------------


async def test_results_are_counted_by_district_and_network_with_small_counts_hidden(
    county: BotWorld,
) -> None:
    wisby, march, upton, desk = await three_groups(county)
    await county.say(CORA, desk, ASK + ' themes=food members=yes')
    await county.say(GAIL, wisby, '!consult answer K1 a comment="Yes, twice a week"')
    await county.say(GAIL, march, "!consult answer K1 b")
    await county.say(HAL, upton, "!consult answer K1 a")
    await county.say(MO, march, '!consult answer K1 c comment="Mo thinks not"')
    replies = await county.say(CORA, desk, "!consult results K1")
    text = replies[0] + "\n" + "\n".join(await county.say(CORA, desk, "!more"))
    assert text.splitlines()[:5] == [
        'K1 "Would a shared minibus help?" (open): <5 of <5 groups answered.',
        "Options: a) Yes · b) No · c) Not sure",
        "Groups: a <5 · b <5 · c <5",
        "Members' own views: a <5 · b <5 · c <5",
        "By district:"]
    assert "  Fenmarsh: a <5 · b <5 · c <5" in text and "  whatsapp: a <5 · b <5 · c <5" in text
    assert "  (a) Yes, twice a week" in text and "  (c) Mo thinks not" in text
    assert "Gail" not in text and GAIL not in text and "Wisby" not in text
    files = {r.file_name: r for r in await rows(county, OutboxMessage) if r.file_name}
    png, table = files["consult-K1.png"], files["consult-K1.csv"]
    assert png.file_mime == "image/png" and (png.file_data or b"")[:4] == b"\x89PNG"
    parsed = list(csv.DictReader(io.StringIO((table.file_data or b"").decode())))
    assert {r["groups"] for r in parsed if r["breakdown"] != "comment"} == {"<5"}
    assert {(r["breakdown"], r["where"]) for r in parsed} >= {
        ("all", "all"), ("district", "Fenmarsh"), ("district", "Hillside"),
        ("network", "whatsapp"), ("network", "matrix")}


async def test_results_asked_where_others_listen_go_to_the_coordinator_by_dm(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK)
    await county.say(GAIL, wisby, '!consult answer K1 a comment="Only on Tuesdays"')
    shared = county.world.create_room(CORA, name="Fenmarsh forum", members=[MO])
    await county.world.join(county.bot, shared)
    await county.deliver()
    assert await county.say(CORA, shared, "!consult results K1") == [
        "I've sent you a direct message."]
    await county.deliver()
    assert not any("Tuesdays" in m for m in said(county, shared))
    assert any("(a) Only on Tuesdays" in m for m in county.dms(CORA))


async def test_results_need_a_coordinator_and_a_known_poll(county: BotWorld) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK)
    [refused] = await county.say(GAIL, wisby, "!consult results K1")
    assert "coordinator" in refused and "Would a shared" not in refused
    [unknown] = await county.say(CORA, desk, "!consult results K7")
    assert unknown.startswith("There is no consultation K7")


def test_counts_of_five_or_more_are_shown_and_every_breakdown_sums_to_the_total() -> None:
    votes = ([results.Vote(0, "Fenmarsh", "whatsapp")] * 6
             + [results.Vote(0, "Hillside", "matrix")] * 2
             + [results.Vote(1, "Hillside", "telegram")] * 5
             + [results.Vote(2, "Fenmarsh", "matrix", member=True)] * 7)
    t = results.tally(["Yes", "No", "Not sure"], 20, True, votes)
    parsed = list(csv.DictReader(io.StringIO(results.csv_bytes(t, "K4").decode())))
    cell = {(r["breakdown"], r["where"], r["option"][0]): (r["groups"], r["members"])
            for r in parsed}
    assert cell[("all", "all", "a")] == ("8", "<5")
    assert cell[("all", "all", "b")] == ("5", "<5")
    assert cell[("all", "all", "c")] == ("<5", "7")
    assert cell[("district", "Fenmarsh", "a")] == ("6", "<5")
    assert cell[("district", "Hillside", "a")] == ("<5", "<5")
    assert cell[("network", "telegram", "b")] == ("5", "<5")
    for by in ("district", "network"):
        for option in range(3):
            parts = sum(t.groups[(by, w, option)] for w in t.places(by))
            assert parts == t.groups[("all", "all", option)]
    assert results.render(t, "K4").splitlines()[0] == "K4: 13 of 20 groups answered."


# -- feedback ------------------------------------------------------------------------------


async def test_feedback_is_kept_without_a_name_unless_named_and_coordinators_read_it(
    county: BotWorld,
) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(MO, wisby, '!feedback "The reminders come too early"')
    await county.say(GAIL, wisby, '!feedback "Please add a Polish version" named=yes')
    await county.deliver()
    # The command is removed from the room once stored (no name stays beside the words),
    # and the thanks say so.
    assert county.dms(MO)[-1] == ("Thank you: the coordinators will read it, without your "
                                  "name.\nI removed your message from the chat.")
    left = [e for e in county.world.room(wisby).timeline
            if "too early" in str(e.get("content", {}).get("body", ""))]
    assert left == []
    first, second = await rows(county, Feedback)
    assert (first.body, first.named_by) == ("The reminders come too early", None)
    assert (second.body, second.named_by) == ("Please add a Polish version", GAIL)
    assert await county.say(MO, wisby, "!feedback list") == ["I've sent you a direct message."]
    await county.deliver()
    assert "coordinator" in county.dms(MO)[-1] and "Polish" not in county.dms(MO)[-1]
    await county.say(CORA, desk, "!feedback list")
    await county.deliver()
    listing = "\n".join(county.dms(CORA))
    assert "Feedback, latest 2 of 2:" in listing
    assert f"20 Nov ({GAIL}): Please add a Polish version" in listing
    assert "20 Nov (anonymous): The reminders come too early" in listing


async def test_feedback_is_in_privacy_export_and_forget(county: BotWorld) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, ASK + " members=yes")
    await county.say(MO, wisby, "!consult answer K1 a")
    await county.say(MO, wisby, '!feedback "Signed words" named=yes')
    await county.say(MO, wisby, '!feedback "Unsigned words"')
    from bot.features.privacy import export_everything, forget_everything

    key = flow.pseudonym(flow_secret(county.app.settings), MO)
    now = county.clock.now()
    async with county.app.db.transaction() as session:
        mine = (await export_everything(session, MO, key, now))["consult"]
    assert [v["poll"] for v in mine["your_views_in_consultations"]] == ["K1"]
    assert [f["text"] for f in mine["feedback_you_signed"]] == ["Signed words"]
    async with county.app.db.transaction() as session:
        await forget_everything(session, MO, key, now)
    assert [f.body for f in await rows(county, Feedback)] == ["Unsigned words"]
    assert await count(county, Answer) == 0
    async with county.app.db.transaction() as session:
        asked = (await export_everything(session, CORA, "x", now))["consult"]
    assert asked["consultations_you_asked"] == [
        {"poll": "K1", "question": "Would a shared minibus help?"}]


async def test_help_lists_the_consult_commands_by_role(county: BotWorld) -> None:
    wisby, _, _, desk = await three_groups(county)
    await county.say(CORA, desk, "!help consult")
    await county.deliver()
    coordinator = "\n".join(said(county, desk) + county.dms(CORA))
    assert "!consult ask" in coordinator and "!consult results <poll>" in coordinator
    member = "\n".join(await county.say(MO, wisby, "!help consult"))
    assert "!consult answer <poll> <option>" in member and "!consult ask" not in member
    everyone = "\n".join(await county.say(MO, wisby, "!help"))
    assert "!feedback" in everyone
