"""Funding partners: the pure ranking on plain data (with properties over random groups), then
!funding partners as a group admin meets it in the in-process world."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.features.funding_targeting import GroupFacts, NoticeFacts, group_fits
from bot.features.partners import Candidate, suggest
from bot.ratelimit import RateLimiter
from config.areas import AreaIndex
from storage.collab import CollabRecord
from storage.groups import Group
from storage.introductions import Introduction
from tests.botworld import BotWorld, bot_world

AREAS = AreaIndex.load()
FENLAND, CAMBRIDGE = "E07000010", "E07000008"
WISBECH, ELM, MARCH, WIMBLINGTON, ABBEY = (
    "E04001668", "E04001658", "E04001661", "E04001667", "E05013050")
CAPITAL = {"food": "health", "health": "health", "advice": "human", "digital": "human",
           "arts": "cultural", "community": "social"}


def near(a: str, b: str) -> bool:
    return {a, b} in ({WISBECH, ELM}, {MARCH, WIMBLINGTON})


def group(n: int, area: str, themes: tuple[str, ...], **kw: object) -> Candidate:
    facts = GroupFacts(id=n, room_id=f"!g{n}:x", area_code=area, themes=themes,
                       type=str(kw.pop("type", "charity")), size=str(kw.pop("size", "small")),
                       contact=bool(kw.pop("contact", True)))
    return Candidate(facts, **kw)  # type: ignore[arg-type]


ASKER = group(1, WISBECH, ("food",)).facts
NOTICE = NoticeFacts(areas=(FENLAND,), themes=("food", "advice", "health"))


def ranked(candidates: list[Candidate], **kw: object) -> list[int]:
    return [s.group_id for s in suggest(ASKER, NOTICE, candidates, contains=AREAS.contains,
                                        near=near, capital_of=CAPITAL, **kw)]  # type: ignore[arg-type]


def test_a_new_capital_outranks_a_new_theme_of_the_same_capital_and_a_neighbour() -> None:
    advice = group(2, MARCH, ("advice",))  # human capital: new theme and new capital
    health = group(3, MARCH, ("health",))  # new theme, same capital as food
    next_door = group(4, ELM, ("food",))  # the same theme in a neighbouring parish
    assert ranked([next_door, health, advice]) == [2, 3, 4]


def test_the_same_theme_in_the_same_place_or_far_away_is_no_partner() -> None:
    assert ranked([group(2, WISBECH, ("food",)), group(3, MARCH, ("food",))]) == []


def test_themes_outside_the_notice_do_not_count() -> None:
    assert ranked([group(2, MARCH, ("arts", "food"))]) == []


def test_ineligible_out_of_area_unverified_unlisted_and_opted_out_groups_never_appear() -> None:
    cands = [group(2, ABBEY, ("advice",)),  # Cambridge: outside the notice's Fenland
             group(3, MARCH, ("advice",), contact=False),
             group(4, MARCH, ("advice",), verified=False),
             group(5, MARCH, ("advice",), listed=False),
             group(6, MARCH, ("advice",), type="business"),
             group(7, MARCH, ("advice",))]
    notice = replace(NOTICE, applicant_types=("charity",))
    found = suggest(ASKER, notice, cands, contains=AREAS.contains, near=near,
                    capital_of=CAPITAL)
    assert [s.group_id for s in found] == [7]


def test_past_partners_only_when_asked_and_track_record_weighs() -> None:
    a, b = group(2, MARCH, ("advice",)), group(3, MARCH, ("advice",), collaborations=2,
                                                  introductions=1)
    assert ranked([a, b]) == [3, 2]
    assert ranked([a, b], pairs={3: 1}) == [2]
    [first, second] = suggest(ASKER, NOTICE, [a, b], contains=AREAS.contains, near=near,
                              capital_of=CAPITAL, pairs={3: 1}, include_partners=True)
    assert (first.group_id, first.partner, second.partner) == (3, True, False)


def test_at_most_five_and_ties_go_to_the_lower_id() -> None:
    many = [group(n, MARCH, ("advice",)) for n in range(20, 8, -1)]
    assert ranked(many) == [9, 10, 11, 12, 13]


LOCALITIES = [*[a.code for a in AREAS.localities(FENLAND)][:12], ABBEY, "E04001100"]
THEMES = sorted(CAPITAL)
candidates = st.lists(st.builds(
    lambda n, area, themes, contact, verified, listed, kind, size, c, i: group(
        n, area, tuple(themes), contact=contact, verified=verified, listed=listed, type=kind,
        size=size, collaborations=c, introductions=i),
    st.integers(2, 60), st.sampled_from(LOCALITIES),
    st.lists(st.sampled_from(THEMES), max_size=3, unique=True), st.booleans(), st.booleans(),
    st.booleans(), st.sampled_from(["charity", "cic", "business"]),
    st.sampled_from(["micro", "small", "large"]), st.integers(0, 9), st.integers(0, 9),
), max_size=25, unique_by=lambda c: c.id)
notices = st.builds(
    lambda areas, themes, types: NoticeFacts(areas=tuple(areas), themes=tuple(themes),
                                             applicant_types=tuple(types)),
    st.lists(st.sampled_from([FENLAND, CAMBRIDGE, WISBECH, MARCH]), max_size=2, unique=True),
    st.lists(st.sampled_from(THEMES), max_size=3, unique=True),
    st.lists(st.sampled_from(["charity", "cic", "business"]), max_size=2, unique=True))


@settings(max_examples=200, deadline=None)
@given(candidates, notices, st.dictionaries(st.integers(2, 60), st.integers(1, 3)),
       st.booleans())
def test_never_suggests_an_opted_out_ineligible_unverified_or_out_of_area_group(
        cands: list[Candidate], notice: NoticeFacts, pairs: dict[int, int],
        include: bool) -> None:
    found = suggest(ASKER, notice, cands, contains=AREAS.contains, near=near,
                    capital_of=CAPITAL, pairs=pairs, include_partners=include)
    by_id = {c.id: c for c in cands}
    assert len(found) <= 5
    assert len({s.group_id for s in found}) == len(found)
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    for s in found:
        c = by_id[s.group_id]
        assert c.facts.contact and c.verified and c.listed
        assert group_fits(notice, c.facts, AREAS.contains)
        assert not notice.areas or any(AREAS.contains(a, c.facts.area_code)
                                       for a in notice.areas)
        assert include or s.group_id not in pairs
        assert s.brings or s.next_door


# -- in chat --------------------------------------------------------------------------------

ANN, BOB, CORA = "@ann:grapevine.local", "@bob:grapevine.local", "@cora:grapevine.local"
POST = ('!funding post https://example.org/fund title="Fen Fund" funder="Trust" '
        "deadline=+30d areas=fenland themes=food,advice,health")


@pytest.fixture
async def fen(tmp_path: Path) -> AsyncIterator[tuple[BotWorld, dict[str, str]]]:
    """Ann runs the Wisbech food bank's room; five other groups, one opted out of contact,
    one in Cambridge, one unverified; F1 is a published Fenland notice."""
    async with bot_world(tmp_path, roles={"coordinators": [CORA]}) as bw:
        for name in ("ann", "bob", "cora"):
            bw.world.user(name, name.title())
        bw.app.limiter = RateLimiter(10_000)
        rooms: dict[str, str] = {}
        specs = [("Wisbech Food Bank", WISBECH, ["food"], True, True),
                 ("March Advice", MARCH, ["advice"], True, True),
                 ("Elm Pantry", ELM, ["food"], True, True),
                 ("March Health Walks", MARCH, ["health"], False, True),
                 ("Abbey Advice", ABBEY, ["advice"], True, True),
                 ("Wimblington Advice", WIMBLINGTON, ["advice"], True, False)]
        for name, area, themes, contact, verified in specs:
            room = bw.world.create_room(ANN if not rooms else BOB, name=name,
                                        members=[CORA, BOB, ANN])
            await bw.world.join(bw.bot, room)
            async with bw.app.db.transaction() as session:
                now = bw.clock.now()
                session.add(Group(room_id=room, name=name, type="charity", area_code=area,
                                  themes=themes, size="small", contact=contact,
                                  registered_by=ANN, registered_at=now,
                                  verified_at=now if verified else None))
            rooms[name] = room
        await bw.deliver()
        dm = await bw.transport.direct_room(CORA)
        await bw.say(CORA, dm, POST)
        yield bw, rooms


async def test_a_group_admin_gets_numbered_partners_that_respect_rules(
        fen: tuple[BotWorld, dict[str, str]]) -> None:
    bw, rooms = fen
    [answer] = await bw.say(ANN, rooms["Wisbech Food Bank"], "!funding partners F1")
    lines = answer.splitlines()
    assert lines[0] == "Groups that could bid with G1 for F1:"
    assert lines[1].startswith("1. G2 March Advice") and "brings advice (human capital)" in lines[1]
    assert lines[2].startswith("2. G3 Elm Pantry") and "neighbouring place" in lines[2]
    # Not G4 (opted out of contact), G5 (Cambridge) nor G6 (unverified).
    assert len(lines) == 4 and "introduce=<n>" in lines[3]


async def test_introduce_turns_a_suggestion_into_an_introduction(
        fen: tuple[BotWorld, dict[str, str]]) -> None:
    bw, rooms = fen
    [answer] = await bw.say(ANN, rooms["Wisbech Food Bank"], "!funding partners F1 introduce=2")
    assert answer.startswith("Asked G3 Elm Pantry (I1)")
    arrived = bw.world.messages(rooms["Elm Pantry"], sender=bw.bot)[-1]
    assert arrived.startswith("Introduction I1: G1 Wisbech Food Bank would like to be in touch")
    assert "F1 (Fen Fund)" in arrived
    async with bw.app.db.transaction() as session:
        [intro] = list(await session.scalars(select(Introduction)))
    assert (intro.from_group_id, intro.to_group_id, intro.asked_by) == (1, 3, ANN)


async def test_past_partners_come_back_only_when_asked(
        fen: tuple[BotWorld, dict[str, str]]) -> None:
    bw, rooms = fen
    async with bw.app.db.transaction() as session:
        session.add(CollabRecord(type="joint-funding", group_ids=[1, 2], author=ANN,
                                 recorded_at=bw.clock.now() - timedelta(days=40)))
    room = rooms["Wisbech Food Bank"]
    [answer] = await bw.say(ANN, room, "!funding partners F1")
    assert "G2" not in answer and answer.splitlines()[1].startswith("1. G3 Elm Pantry")
    [answer] = await bw.say(ANN, room, "!funding partners F1 include_partners=yes")
    assert answer.splitlines()[1].startswith("1. G2 March Advice")
    assert "already a partner of yours" in answer


async def test_bad_input_and_the_wrong_people_are_told_and_nothing_changes(
        fen: tuple[BotWorld, dict[str, str]]) -> None:
    bw, rooms = fen
    room = rooms["Wisbech Food Bank"]
    assert (await bw.say(ANN, room, "!funding partners F9"))[0].startswith(
        "There is no open notice F9")
    assert "between 1 and 5" in (await bw.say(ANN, room, "!funding partners F1 introduce=7"))[0]
    assert (await bw.say(ANN, room, "!funding partners F1 introduce=3"))[0].startswith(
        "There are only 2 suggestions for F1")
    assert "group admin" in (await bw.say(CORA, room, "!funding partners F1"))[0]
    dm = await bw.transport.direct_room(ANN)
    assert "your group's own room" in (await bw.say(ANN, dm, "!funding partners F1"))[0]
    abbey = rooms["Abbey Advice"]
    assert "not eligible for F1" in (await bw.say(BOB, abbey, "!funding partners F1"))[0]
    async with bw.app.db.transaction() as session:
        assert list(await session.scalars(select(Introduction))) == []
