"""Slots, skills and the matching rules as pure functions: each hard rule can be broken alone."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.features import availability
from bot.features.availability import SlotError, bit, describe, parse_slots, window_slots
from bot.features.matching import (
    Candidate,
    Need,
    cell_of,
    cells_within,
    distance2_km,
    haversine_km,
    normalise_skills,
    rank,
    refusal,
    skill_bits,
)

LONDON = ZoneInfo("Europe/London")
WISBECH = (52.655, 0.16101)
MARCH = (52.5516, 0.0884)  # about 12.5 km from Wisbech
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
SATURDAY_10_TO_13 = (
    datetime(2026, 12, 5, 10, tzinfo=LONDON), datetime(2026, 12, 5, 13, tzinfo=LONDON),
)


def test_slot_words_people_type() -> None:
    assert parse_slots("anytime") == availability.ALL
    assert parse_slots("weekends") == sum(bit(d, p) for d in (5, 6) for p in range(3))
    assert parse_slots("weekday-evenings") == sum(bit(d, 2) for d in range(5))
    assert parse_slots("mon-morning,sat-afternoon") == bit(0, 0) | bit(5, 1)
    assert parse_slots("Sat Afternoon, sunday") == bit(5, 1) | sum(bit(6, p) for p in range(3))
    assert describe(parse_slots("weekends,weekday-evenings")) == "weekends, weekday-evenings"
    assert describe(parse_slots("mon-morning,sat-afternoon")) == "mon-morning, sat-afternoon"


@pytest.mark.parametrize("text", ["", "someday", "mon-brunch", "sat-sun-morning"])
def test_a_slot_that_is_not_a_time_says_which_forms_work(text: str) -> None:
    with pytest.raises(SlotError, match="weekday-evenings"):
        parse_slots(text)


def test_a_shift_needs_every_part_of_day_it_touches() -> None:
    assert window_slots(*SATURDAY_10_TO_13) == bit(5, 0) | bit(5, 1)
    morning_only = (SATURDAY_10_TO_13[0], SATURDAY_10_TO_13[0].replace(hour=12))
    assert window_slots(*morning_only) == bit(5, 0)
    small_hours = (SATURDAY_10_TO_13[0].replace(hour=2), SATURDAY_10_TO_13[0].replace(hour=5))
    assert window_slots(*small_hours) == 0


def test_skills_fold_to_the_standard_top_level_plus_free_tags() -> None:
    assert normalise_skills(["Digital & Technology", "IT", "Driving", "first aid"]) == [
        "digital-technology", "driving", "first-aid",
    ]
    assert normalise_skills(["teamwork", "Leadership", "safety"]) == [
        "teamwork-leadership", "safety-emergency",
    ]


def test_skill_masks_give_each_top_level_skill_its_own_bit() -> None:
    assert skill_bits(["communication"]) == 1
    assert skill_bits(["teamwork-leadership", "communication"]) == 0b100001
    assert skill_bits(["driving"]) >> 6 and skill_bits(["driving"]) < 1 << 63


def test_distance_and_the_grid_cover_the_circle() -> None:
    assert haversine_km(*WISBECH, *MARCH) == pytest.approx(12.5, abs=0.5)
    need = Need(group_id=1, group_verified=True, starts_at=NOW, slots=0, lat=WISBECH[0],
                lon=WISBECH[1])
    assert distance2_km(*MARCH, need) ** 0.5 == pytest.approx(haversine_km(*WISBECH, *MARCH),
                                                               rel=1e-3)
    assert cell_of(*MARCH) in cells_within(*WISBECH, 13)
    assert cell_of(*MARCH) not in cells_within(*WISBECH, 3)


def test_the_grid_never_leaves_out_a_cell_where_a_reachable_request_could_be() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        lat, lon = rng.uniform(52.0, 52.8), rng.uniform(-0.5, 0.4)
        radius = rng.choice([0.5, 3.0, 10.0, 25.0, 50.0])
        need_lat = lat + rng.uniform(-0.5, 0.5)
        need_lon = lon + rng.uniform(-0.8, 0.8)
        need = Need(group_id=1, group_verified=True, starts_at=NOW, slots=0, lat=need_lat,
                    lon=need_lon)
        if distance2_km(lat, lon, need) <= radius * radius:
            assert cell_of(need_lat, need_lon) in cells_within(lat, lon, radius)


def person(**changes: object) -> Candidate:
    base = Candidate(
        volunteer_id=1, user_id="@ann:x", lat=WISBECH[0], lon=WISBECH[1], radius_km=10,
        slots=parse_slots("weekends"), dbs_level=3, dbs_recheck=date(2028, 1, 1),
        groups={7: False}, skill_mask=skill_bits(["driving"]),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


NEED = Need(group_id=7, group_verified=True, starts_at=SATURDAY_10_TO_13[0],
            slots=window_slots(*SATURDAY_10_TO_13), lat=WISBECH[0], lon=WISBECH[1],
            dbs_level=2, skill_mask=skill_bits(["driving"]))


def test_someone_who_fits_every_rule_is_eligible() -> None:
    assert refusal(person(), NEED) is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"slots": parse_slots("weekday-evenings")}, "not free then"),
    ({"dbs_level": 1}, "DBS level too low"),
    ({"dbs_recheck": date(2026, 12, 5)}, "DBS re-check due"),
    ({"lat": MARCH[0], "lon": MARCH[1]}, "too far"),
    ({"paused": True}, "paused"),
    ({"paused": True, "paused_until": datetime(2026, 12, 6, tzinfo=UTC)}, "paused"),
    ({"groups": {8: False}}, "not shared with this group"),
    ({"groups": {8: True}, "share": False}, "not shared with this group"),
])
def test_each_hard_rule_alone_keeps_someone_out(change: dict[str, object], reason: str) -> None:
    assert refusal(person(**change), NEED) == reason


def test_sharing_needs_both_the_group_and_the_person() -> None:
    other_group = person(groups={8: True}, share=True)
    assert refusal(other_group, NEED) is None
    assert refusal(person(groups={}, share=True), NEED) is None  # joined the pool directly
    unverified = replace(NEED, group_verified=False)
    assert refusal(other_group, unverified) == "not shared with this group"
    assert refusal(person(groups={7: False}), unverified) is None


def test_a_pause_that_ends_before_the_shift_does_not_count() -> None:
    back = person(paused=True, paused_until=datetime(2026, 12, 1, tzinfo=UTC))
    assert refusal(back, NEED) is None


def test_ranking_prefers_skills_then_spreads_offers() -> None:
    skilled = person(volunteer_id=1)
    unskilled = person(volunteer_id=2, user_id="@bo:x", skill_mask=0)
    asked_yesterday = person(volunteer_id=3, user_id="@cy:x",
                             last_offered_at=NOW - timedelta(days=1))
    ineligible = person(volunteer_id=4, user_id="@di:x", dbs_level=0)
    order = [c.volunteer_id for c in rank([unskilled, asked_yesterday, ineligible, skilled],
                                          NEED, NOW)]
    assert order == [1, 3, 2]
