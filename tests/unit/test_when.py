"""Dates and times as people type them read the same as the ISO form, in London time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands.when import (
    Ambiguous,
    WhenError,
    describe_date,
    describe_window,
    local_datetime,
    parse_date,
    parse_deadline,
    parse_time,
    parse_window,
)

LONDON = ZoneInfo("Europe/London")
TUESDAY = date(2026, 12, 1)  # "today" in these tests unless a test says otherwise
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    "typed",
    [
        "2026-12-05",
        "5/12",
        "05/12",
        "05/12/2026",
        "5/12/26",
        "5.12.26",
        "5-12-2026",
        "5 Dec",
        "5 dec.",
        "5th December",
        "5th of December",
        "the 5th of December",
        "Dec 5",
        "December 5th",
        "5 December 2026",
        "Dec 5, 2026",
        "Sat 5 Dec",
        "Saturday, 5th December 2026",
        "sat",
        "saturday",
        "this sat",
        "on Saturday",
        "+4d",
        "+4",
        "in 4 days",
        "in four days",
    ],
)
def test_each_date_form_reads_as_the_iso_date(typed: str) -> None:
    assert parse_date(typed, today=TUESDAY) == date(2026, 12, 5)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("today", date(2026, 12, 1)),
        ("tonight", date(2026, 12, 1)),
        ("tomorrow", date(2026, 12, 2)),
        ("tmrw", date(2026, 12, 2)),
        ("Tomorrow.", date(2026, 12, 2)),
        ("yesterday", date(2026, 11, 30)),
        ("+2w", date(2026, 12, 15)),
        ("in a week", date(2026, 12, 8)),
        ("in a fortnight", date(2026, 12, 15)),
        ("in 3 months", date(2027, 3, 1)),
        ("12/5", date(2027, 5, 12)),  # UK day-first: 12 May, not a question
        ("1/1", date(2027, 1, 1)),
        ("29/2", date(2028, 2, 29)),  # the next 29 February there is
        ("next tue", date(2026, 12, 8)),  # said on a Tuesday: a week today
        ("next mon", date(2026, 12, 7)),
        ("this tue", date(2026, 12, 1)),
        ("wed", date(2026, 12, 2)),
        ("mon", date(2026, 12, 7)),
        ("Mon 7 Dec", date(2026, 12, 7)),
    ],
)
def test_relative_and_short_dates_count_from_today(typed: str, expected: date) -> None:
    assert parse_date(typed, today=TUESDAY) == expected


@pytest.mark.parametrize(
    ("today", "typed", "expected"),
    [
        (date(2026, 12, 28), "2/1", date(2027, 1, 2)),  # over new year
        (date(2027, 1, 3), "30/12", date(2026, 12, 30)),  # four days ago keeps its year
        (date(2026, 12, 1), "25/11", date(2026, 11, 25)),  # six days ago: the command decides
        (date(2026, 12, 1), "20/11", date(2027, 11, 20)),  # eleven days ago: next year's
    ],
)
def test_a_date_without_a_year_is_the_next_one_give_or_take_a_week(
    today: date, typed: str, expected: date
) -> None:
    assert parse_date(typed, today=today) == expected


def test_a_past_date_such_as_a_dbs_check_can_prefer_the_last_one() -> None:
    assert parse_date("5/3", today=TUESDAY, prefer="past") == date(2026, 3, 5)
    assert parse_date("5 March 2019", today=TUESDAY, prefer="past") == date(2019, 3, 5)


@pytest.mark.parametrize(
    ("today", "typed", "choices", "question"),
    [
        (
            TUESDAY,
            "next friday",
            (date(2026, 12, 4), date(2026, 12, 11)),
            "Did you mean Fri 4 Dec or Fri 11 Dec?",
        ),
        (
            TUESDAY,
            "tue",
            (date(2026, 12, 1), date(2026, 12, 8)),
            "Did you mean today (Tue 1 Dec) or Tue 8 Dec?",
        ),
        (
            date(2026, 12, 4),  # a Friday
            "next sat",
            (date(2026, 12, 5), date(2026, 12, 12)),
            "Did you mean tomorrow (Sat 5 Dec) or Sat 12 Dec?",
        ),
        (
            date(2026, 12, 28),  # a Monday, so the second choice is next year
            "next thu",
            (date(2026, 12, 31), date(2027, 1, 7)),
            "Did you mean Thu 31 Dec or Thu 7 Jan 2027?",
        ),
    ],
)
def test_a_date_that_could_mean_two_things_is_asked_about(
    today: date, typed: str, choices: tuple[date, ...], question: str
) -> None:
    result = parse_date(typed, today=today)
    assert result == Ambiguous(choices, question)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 30), None),  # Monday to Thursday: asked about
        (date(2026, 12, 3), None),
        (date(2026, 12, 4), date(2026, 12, 11)),  # on a Friday: a week today
        (date(2026, 12, 5), date(2026, 12, 11)),  # at the weekend: the coming Friday
        (date(2026, 12, 6), date(2026, 12, 11)),
    ],
)
def test_next_friday_through_the_week(today: date, expected: date | None) -> None:
    result = parse_date("next friday", today=today)
    if expected is None:
        assert isinstance(result, Ambiguous)
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("31/2", "There is no 31 February"),
        ("29/2/2027", "There is no 29 February 2027"),
        ("2026-13-01", "There is no month 13"),
        ("12/31", "There is no month 31"),
        ("Fri 5 Dec", "Sat 5 Dec 2026 is a Saturday, not a Friday"),
        ("next week", "try 2026-12-05"),
        ("", "No date given"),
        ("+3y", "not a unit"),
    ],
)
def test_a_date_that_cannot_be_read_is_refused_naming_the_problem(typed: str, says: str) -> None:
    with pytest.raises(WhenError, match=says):
        parse_date(typed, today=TUESDAY)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("10:00", time(10)),
        ("10am", time(10)),
        ("10 am", time(10)),
        ("10 a.m.", time(10)),
        ("10AM", time(10)),
        ("10", time(10)),
        ("2.30pm", time(14, 30)),
        ("2:30 PM", time(14, 30)),
        ("14.30", time(14, 30)),
        ("14:30", time(14, 30)),
        ("1430", time(14, 30)),
        ("0930", time(9, 30)),
        ("09:30", time(9, 30)),
        ("03:00", time(3)),
        ("3am", time(3)),
        ("10:00:30", time(10, 0, 30)),
        ("noon", time(12)),
        ("midday", time(12)),
        ("12 noon", time(12)),
        ("midnight", time(0)),
        ("12am", time(0)),
        ("12:30am", time(0, 30)),
        ("12pm", time(12)),
        ("at 7pm", time(19)),
    ],
)
def test_each_time_form_reads_as_the_24_hour_time(typed: str, expected: time) -> None:
    assert parse_time(typed) == expected


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("3", "Write 3am, 3pm or 15:00"),
        ("1:30", "Write 1:30am, 1:30pm or 13:30"),
        ("13pm", "the hour is 1 to 12"),
        ("0am", "the hour is 1 to 12"),
        ("25:00", "hours go up to 23"),
        ("10:61", "up to 59"),
        ("teatime", "try 10:00"),
    ],
)
def test_a_time_that_cannot_be_read_is_refused_with_the_fix(typed: str, says: str) -> None:
    with pytest.raises(WhenError, match=says):
        parse_time(typed)


def window(start: str, end: str) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(start).replace(tzinfo=LONDON), datetime.fromisoformat(
        end
    ).replace(tzinfo=LONDON)


SAT_10_TO_1 = window("2026-12-05 10:00", "2026-12-05 13:00")


@pytest.mark.parametrize(
    "typed",
    [
        "2026-12-05 10:00-13:00",
        "2026-12-05T10:00-13:00",
        "2026-12-05 10:00 - 13:00",
        "sat 10am-1pm",
        "Sat 10am–1pm",
        "Sat 10am to 1pm",
        "sat 10am - 1pm",
        "sat 10-1pm",
        "sat 10-1",
        "sat 10am-1",
        "sat, 10:00-13:00",
        "5 Dec 10-1pm",
        "5/12 10am-1pm",
        "Saturday 5th December 10am until 1pm",
        "10am-1pm sat",
        "from 10am to 1pm on saturday",
        "sat from 10 till 1pm",
    ],
)
def test_each_window_form_reads_as_the_iso_window(typed: str) -> None:
    assert parse_window(typed, today=TUESDAY, tz=LONDON) == SAT_10_TO_1


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("tomorrow 9:30-12", window("2026-12-02 09:30", "2026-12-02 12:00")),
        ("sat 9-5", window("2026-12-05 09:00", "2026-12-05 17:00")),
        ("sat 2-4pm", window("2026-12-05 14:00", "2026-12-05 16:00")),
        ("sat 12-2", window("2026-12-05 12:00", "2026-12-05 14:00")),
        ("sat 7pm-9", window("2026-12-05 19:00", "2026-12-05 21:00")),
        ("sat 6pm-midnight", window("2026-12-05 18:00", "2026-12-06 00:00")),
        ("sat 22:00-02:00", window("2026-12-05 22:00", "2026-12-06 02:00")),
        ("sat 11-2am", window("2026-12-05 23:00", "2026-12-06 02:00")),
        ("sat 20:00-06:00", window("2026-12-05 20:00", "2026-12-06 06:00")),
    ],
)
def test_am_and_pm_are_inferred_for_the_shortest_sensible_window(
    typed: str, expected: tuple[datetime, datetime]
) -> None:
    assert parse_window(typed, today=TUESDAY, tz=LONDON) == expected


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("sat 13:00-10:00", "ends before it starts"),
        ("sat 10am-10am", "starts and ends at the same time"),
        ("sat 2-4", "Write 2am, 2pm or 14:00"),
        ("10am-1pm", "Say which day"),
        ("sat", "couldn't find a start and end time"),
        ("31/2 10-1pm", "There is no 31 February"),
        ("sat 10am-13pm", "the hour is 1 to 12"),
    ],
)
def test_a_window_that_cannot_be_read_is_refused_naming_the_problem(typed: str, says: str) -> None:
    with pytest.raises(WhenError, match=says):
        parse_window(typed, today=TUESDAY, tz=LONDON)


@pytest.mark.parametrize(
    ("typed", "choices", "question"),
    [
        ("sat 12:00-01:00", (window("2026-12-05 12:00", "2026-12-05 13:00"),
                             window("2026-12-05 00:00", "2026-12-05 01:00")),
         "Did you mean 12:00-13:00 or 00:00-01:00?"),
        ("sat 10:00-09:00", (window("2026-12-05 10:00", "2026-12-05 21:00"),
                             window("2026-12-05 22:00", "2026-12-06 09:00")),
         "Did you mean 10:00-21:00 or 22:00-09:00?"),
    ],
)
def test_a_window_that_could_mean_either_half_of_the_day_is_asked_about(
    typed: str, choices: tuple[tuple[datetime, datetime], ...], question: str
) -> None:
    assert parse_window(typed, today=TUESDAY, tz=LONDON) == Ambiguous(choices, question)


@pytest.mark.parametrize("typed", ["2026-12-05 12:00-13:00", "2026-12-05 00:00-01:00",
                                   "2026-12-05 10:00-21:00", "2026-12-05 22:00-09:00"])
def test_each_answer_to_that_question_reads_as_itself(typed: str) -> None:
    result = parse_window(typed, today=TUESDAY, tz=LONDON)
    assert not isinstance(result, Ambiguous)
    assert f"{result[0]:%Y-%m-%d %H:%M}-{result[1]:%H:%M}" == typed


def test_a_window_on_an_ambiguous_day_is_asked_about() -> None:
    result = parse_window("tue 10am-1pm", today=TUESDAY, tz=LONDON)
    assert result == Ambiguous(
        (
            window("2026-12-01 10:00", "2026-12-01 13:00"),
            window("2026-12-08 10:00", "2026-12-08 13:00"),
        ),
        "Did you mean today (Tue 1 Dec) or Tue 8 Dec?",
    )


def offsets(span: tuple[datetime, datetime]) -> tuple[timedelta | None, timedelta | None]:
    return span[0].utcoffset(), span[1].utcoffset()


def real_length(span: tuple[datetime, datetime]) -> timedelta:
    return span[1].astimezone(UTC) - span[0].astimezone(UTC)


# Aware datetimes sharing a tzinfo compare and subtract by wall time, so these check
# UTC offsets and measure lengths in UTC.
def test_windows_around_the_autumn_clock_change_have_the_right_offsets() -> None:
    thursday = date(2026, 10, 22)
    sunday = parse_window("sun 10am-1pm", today=thursday, tz=LONDON)
    assert sunday == parse_window("2026-10-25 10:00-13:00", today=thursday, tz=LONDON)
    assert isinstance(sunday, tuple)
    assert offsets(sunday) == (timedelta(0), timedelta(0))
    saturday = parse_window("sat 10am-1pm", today=thursday, tz=LONDON)
    assert isinstance(saturday, tuple)
    assert offsets(saturday) == (HOUR, HOUR)
    overnight = parse_window("2026-10-25 00:30-03:00", today=thursday, tz=LONDON)
    assert isinstance(overnight, tuple)
    assert offsets(overnight) == (HOUR, timedelta(0))
    assert real_length(overnight) == timedelta(hours=3, minutes=30)  # the hour repeats


def test_windows_around_the_spring_clock_change_have_the_right_offsets() -> None:
    thursday = date(2027, 3, 25)
    sunday = parse_window("sun 10am-1pm", today=thursday, tz=LONDON)
    assert sunday == parse_window("2027-03-28 10:00-13:00", today=thursday, tz=LONDON)
    assert isinstance(sunday, tuple)
    assert offsets(sunday) == (HOUR, HOUR)
    overnight = parse_window("2027-03-28 00:30-03:00", today=thursday, tz=LONDON)
    assert isinstance(overnight, tuple)
    assert offsets(overnight) == (timedelta(0), HOUR)
    assert real_length(overnight) == timedelta(hours=1, minutes=30)  # the hour is skipped


def test_a_time_the_clocks_skip_moves_forward_and_a_repeated_one_is_the_first() -> None:
    skipped = local_datetime(date(2027, 3, 28), time(1, 30), LONDON)
    assert (skipped.time(), skipped.utcoffset()) == (time(2, 30), HOUR)
    repeated = local_datetime(date(2026, 10, 25), time(1, 30), LONDON)
    assert (repeated.time(), repeated.utcoffset()) == (time(1, 30), HOUR)
    assert repeated.astimezone(UTC).time() == time(0, 30)


def test_a_window_emptied_by_the_spring_clock_change_is_refused() -> None:
    with pytest.raises(WhenError, match="clocks change"):
        parse_window("2027-03-28 01:45-02:30", today=date(2027, 3, 25), tz=LONDON)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-12-05", "2026-12-05 23:59:59"),
        ("5/12", "2026-12-05 23:59:59"),
        ("Dec 5", "2026-12-05 23:59:59"),
        ("sat", "2026-12-05 23:59:59"),
        ("sat midnight", "2026-12-05 23:59:59"),
        ("2026-12-05 17:00", "2026-12-05 17:00:00"),
        ("2026-12-05T17:00", "2026-12-05 17:00:00"),
        ("sat 5pm", "2026-12-05 17:00:00"),
        ("5 Dec at noon", "2026-12-05 12:00:00"),
        ("5 Dec 2026 9:30am", "2026-12-05 09:30:00"),
    ],
)
def test_a_deadline_is_the_end_of_the_day_unless_a_time_is_given(typed: str, expected: str) -> None:
    result = parse_deadline(typed, today=TUESDAY, tz=LONDON)
    assert result == datetime.fromisoformat(expected).replace(tzinfo=LONDON)


def test_a_summer_deadline_is_in_british_summer_time() -> None:
    result = parse_deadline("30/6", today=TUESDAY, tz=LONDON)
    assert isinstance(result, datetime)
    assert (result.date(), result.utcoffset()) == (date(2027, 6, 30), HOUR)


def test_a_deadline_with_an_unclear_time_or_day_is_refused_or_asked() -> None:
    with pytest.raises(WhenError, match="Write 5am, 5pm or 17:00"):
        parse_deadline("sat 5", today=TUESDAY, tz=LONDON)
    with pytest.raises(WhenError, match="try 2026-12-05"):
        parse_deadline("soon", today=TUESDAY, tz=LONDON)
    asked = parse_deadline("next fri", today=TUESDAY, tz=LONDON)
    assert isinstance(asked, Ambiguous)
    assert [d.date() for d in asked.choices] == [date(2026, 12, 4), date(2026, 12, 11)]


def test_replies_describe_dates_and_windows_plainly() -> None:
    assert describe_date(date(2026, 12, 5)) == "Sat 5 Dec 2026"
    assert describe_window(*SAT_10_TO_1) == "Sat 5 Dec 2026 10:00-13:00"
    overnight = window("2026-12-05 22:00", "2026-12-06 02:00")
    assert describe_window(*overnight) == "Sat 5 Dec 2026 22:00-Sun 6 Dec 2026 02:00"


# Whatever is typed, each parser answers or refuses in one clear line.


def one_clear_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message and len(message) < 200, message


@given(st.text(max_size=120))
def test_no_text_crashes_the_date_and_time_parsers(text: str) -> None:
    for parse in (
        lambda: parse_date(text, today=TUESDAY),
        lambda: parse_time(text),
        lambda: parse_window(text, today=TUESDAY, tz=LONDON),
        lambda: parse_deadline(text, today=TUESDAY, tz=LONDON),
    ):
        try:
            parse()
        except WhenError as error:
            one_clear_line(error)


_near_text = st.text("0123456789 :.-/+aAmMpPtTdDwWinsatfrimondecjulynoo", min_size=1, max_size=24)


@given(_near_text, st.dates(date(1901, 1, 1), date(2198, 12, 31)))
def test_nearly_valid_text_never_crashes_on_any_day(text: str, today: date) -> None:
    for parse in (
        lambda: parse_date(text, today=today),
        lambda: parse_window(text, today=today, tz=LONDON),
        lambda: parse_deadline(text, today=today, tz=LONDON),
    ):
        try:
            parse()
        except WhenError as error:
            one_clear_line(error)


@given(st.dates(date(1900, 1, 1), date(2199, 12, 31)))
def test_every_date_reads_back_from_its_iso_uk_and_reply_forms(day: date) -> None:
    for typed in (day.isoformat(), f"{day.day}/{day.month}/{day.year}", describe_date(day)):
        assert parse_date(typed, today=TUESDAY) == day


@given(st.times().map(lambda t: t.replace(microsecond=0)))
def test_every_24_hour_time_reads_back(moment: time) -> None:
    assert parse_time(moment.isoformat()) == moment


@given(
    st.one_of(
        st.sampled_from([date(2026, 10, 25), date(2027, 3, 28)]),  # the clocks change
        st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    ),
    st.integers(0, 24 * 60 - 2),
    st.integers(1, 12 * 60),
)
def test_every_iso_window_reads_back_in_local_time(day: date, start: int, length: int) -> None:
    begins = datetime.combine(day, time()) + timedelta(minutes=start)
    ends = begins + timedelta(minutes=length)
    typed = f"{begins:%Y-%m-%d %H:%M}-{ends:%H:%M}"
    try:
        result = parse_window(typed, today=TUESDAY, tz=LONDON)
    except WhenError as error:  # only a window the spring-forward gap empties
        assert "clocks change" in str(error)
        return
    assert isinstance(result, tuple)
    assert [(moment.replace(tzinfo=None), moment.utcoffset()) for moment in result] == [
        _london(begins),
        _london(ends),
    ]


def _london(wall: datetime) -> tuple[datetime, timedelta | None]:
    """The wall time and offset London shows for it, worked out from UTC (no zoneinfo folds)."""
    for offset in (HOUR, timedelta(0)):  # summer time first: a repeated time is the first one
        shown = (wall - offset).replace(tzinfo=UTC).astimezone(LONDON)
        if shown.replace(tzinfo=None) == wall:
            return wall, shown.utcoffset()
    shifted = wall.replace(tzinfo=UTC).astimezone(LONDON)  # in the spring gap: read as GMT
    return shifted.replace(tzinfo=None), shifted.utcoffset()
