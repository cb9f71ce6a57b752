"""Who gets a notice, and when reminders and digests fall due: the rules on their own."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.features.funding_targeting import (
    GroupFacts,
    NoticeFacts,
    SubscriptionFacts,
    TreeRoom,
    digest_slot,
    group_fits,
    plan,
    reminder_times,
    reminders_due,
    room_key,
    subscription_matches,
)
from config.areas import AreaIndex

LONDON = ZoneInfo("Europe/London")
AREAS = AreaIndex.load()
contains = AREAS.contains
FENLAND, WISBECH, CHATTERIS = "E07000010", "E04001668", "E04012516"
CAMBRIDGE, ABBEY = "E07000008", "E05013050"

FOOD_IN_FENLAND = NoticeFacts(
    areas=(FENLAND,), themes=("food",), award_min=500, award_max=5000,
    applicant_types=("charity", "unregistered-group"), sizes=("micro", "small"),
)


def group(area: str = WISBECH, themes: tuple[str, ...] = ("food",), type: str = "charity",
          size: str = "small", room: str | None = "!g", **kw: object) -> GroupFacts:
    return GroupFacts(id=1, room_id=room, area_code=area, themes=themes, type=type, size=size,
                      **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sub", "matches"), [
    (SubscriptionFacts("!r"), True),
    (SubscriptionFacts("!r", areas=(WISBECH,)), True),  # a place inside the notice's area
    (SubscriptionFacts("!r", areas=("E47000008",)), True),  # the whole county holds Fenland
    (SubscriptionFacts("!r", areas=(CAMBRIDGE,)), False),
    (SubscriptionFacts("!r", themes=("youth", "food")), True),
    (SubscriptionFacts("!r", themes=("arts",)), False),
    (SubscriptionFacts("!r", min_award=5000), True),
    (SubscriptionFacts("!r", min_award=10_000), False),  # the notice tops out at 5,000
    (SubscriptionFacts("!r", max_award=400), False),  # the notice starts at 500
    (SubscriptionFacts("!r", sizes=("large",)), False),
])
def test_a_subscription_matches_by_area_theme_amount_and_size(
    sub: SubscriptionFacts, matches: bool
) -> None:
    assert subscription_matches(FOOD_IN_FENLAND, sub, contains) is matches


def test_a_county_wide_notice_reaches_a_subscription_anywhere() -> None:
    assert subscription_matches(NoticeFacts(), SubscriptionFacts("!r", areas=(ABBEY,)), contains)


@pytest.mark.parametrize(("profile", "fits"), [
    (group(), True),
    (group(area=CHATTERIS, type="unregistered-group", size="micro"), True),
    (group(area=ABBEY), False),  # Cambridge is not in Fenland
    (group(area=FENLAND), True),  # the district itself lies inside the notice's area
    (group(themes=("arts",)), False),
    (group(type="cic"), False),
    (group(size="large"), False),
    (group(contact=False), False),
])
def test_a_group_fits_when_its_profile_does(profile: GroupFacts, fits: bool) -> None:
    assert group_fits(FOOD_IN_FENLAND, profile, contains) is fits


def test_every_room_once_and_a_subscribers_own_choices_apply() -> None:
    subs = [SubscriptionFacts("!both", digest="daily", reminders=False),
            SubscriptionFacts("!arts", themes=("arts",))]
    groups = [
        group(room="!both"), group(room="!arts"), group(room=None, email="g@example.org"),
        group(room=None),  # not on chat and no email: nothing to do
    ]
    tree = [TreeRoom("!wisbech", area=WISBECH), TreeRoom("!abbey", area=ABBEY),
            TreeRoom("!food", area="E47000008", theme="food"),
            TreeRoom("!food-cam", area=CAMBRIDGE, theme="food"),
            TreeRoom("!arts", area=FENLAND, theme="arts"), TreeRoom("!both", area=WISBECH)]
    result = plan(FOOD_IN_FENLAND, subs, groups, tree, contains)
    by_room = {t.room_id: t for t in result.rooms}
    assert sorted(by_room) == ["!arts", "!both", "!food", "!wisbech"]
    assert len(result.rooms) == 4
    assert (by_room["!both"].cadence, by_room["!both"].reminders) == ("daily", False)
    # The arts subscription did not match, but the group's profile did: it hears instantly.
    assert (by_room["!arts"].via, by_room["!arts"].cadence) == ("group", "instant")
    assert [g.email for g in result.emails] == ["g@example.org"]


def test_a_county_wide_notice_reaches_every_locality_room() -> None:
    tree = [TreeRoom(f"!{a.code}", area=a.code) for a in AREAS.localities()]
    result = plan(NoticeFacts(), [], [], tree, contains)
    assert len(result.rooms) == len(AREAS.localities()) > 250


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_reminders_are_at_nine_local_on_both_sides_of_the_autumn_change() -> None:
    deadline = datetime(2026, 10, 30, 23, 59, tzinfo=LONDON)
    times = reminder_times(deadline, LONDON)
    assert times[7] == utc(2026, 10, 23, 8, 0)  # 09:00 BST
    assert times[1] == utc(2026, 10, 29, 9, 0)  # 09:00 GMT


def test_reminders_are_at_nine_local_across_the_spring_change() -> None:
    deadline = datetime(2027, 4, 1, 23, 59, tzinfo=LONDON)
    times = reminder_times(deadline, LONDON)
    assert times[7] == utc(2027, 3, 25, 9, 0)  # 09:00 GMT
    assert times[1] == utc(2027, 3, 31, 8, 0)  # 09:00 BST


def test_after_downtime_only_the_latest_reminder_goes_and_none_after_the_deadline() -> None:
    deadline = datetime(2026, 12, 5, 23, 59, tzinfo=LONDON)
    assert reminders_due(deadline, utc(2026, 11, 28, 8, 59), LONDON) == []
    assert reminders_due(deadline, utc(2026, 11, 28, 9, 0), LONDON) == [7]
    assert reminders_due(deadline, utc(2026, 11, 28, 9, 0), LONDON, already=[7]) == []
    # Down from before the 7-day reminder until after the 1-day one: just "tomorrow".
    assert reminders_due(deadline, utc(2026, 12, 4, 12, 0), LONDON) == [1]
    assert reminders_due(deadline, utc(2026, 12, 6, 0, 0), LONDON) == []


def test_a_notice_posted_inside_the_week_gets_no_seven_day_reminder() -> None:
    deadline = datetime(2026, 12, 5, 23, 59, tzinfo=LONDON)
    posted = utc(2026, 12, 1, 10, 0)
    assert reminders_due(deadline, utc(2026, 12, 1, 10, 5), LONDON, since=posted) == []
    assert reminders_due(deadline, utc(2026, 12, 4, 9, 0), LONDON, since=posted) == [1]


def test_digest_slots_are_the_next_eight_oclock_or_monday() -> None:
    friday_ten = utc(2026, 11, 20, 10, 0)
    assert digest_slot("daily", friday_ten, LONDON) == utc(2026, 11, 21, 8, 0)
    assert digest_slot("daily", utc(2026, 11, 20, 7, 0), LONDON) == utc(2026, 11, 20, 8, 0)
    assert digest_slot("weekly", friday_ten, LONDON) == utc(2026, 11, 23, 8, 0)
    # In summer 08:00 London is 07:00 UTC.
    assert digest_slot("daily", utc(2026, 7, 1, 12, 0), LONDON) == utc(2026, 7, 2, 7, 0)


def test_room_keys_are_short_stable_and_secret_dependent() -> None:
    key = room_key(b"s1", "!room:example.org")
    assert key == room_key(b"s1", "!room:example.org")
    assert key != room_key(b"s2", "!room:example.org")
    assert len(key) == 16 and "room" not in key
