"""Dates, times, windows and deadlines as people type them, in the deployment's time zone.

The rules, decided once so every command reads dates the same way:

Dates (``parse_date``)
- ISO ``2026-12-05``; UK day-first ``5/12``, ``05/12/2026``, ``5.12.26``,
  ``5-12-2026`` (``12/5`` is 12 May: day-first is not ambiguous in the UK);
  ``5 Dec``, ``5th of December``, ``Dec 5``, ``5 December 2026``, ``Dec 5, 2026``;
  a weekday may lead any of these (``Fri 5 Dec``) and must then be right.
- ``today``/``tonight``, ``tomorrow`` (``tmrw``, ``tmr`` and common misspellings),
  ``yesterday``, ``day after tomorrow``.
- ``+7d``, ``+2w``, ``+7`` (days), ``in 3 days``, ``in a week``,
  ``in a fortnight``, ``in 2 months`` (same day of month, clamped to its end).
- A date without a year is the first such date on or after a week ago, so a
  date a few days past keeps this year (the command decides whether a past
  date is allowed) and anything older rolls to next year. ``prefer="past"``
  (for dates such as a DBS check) takes the latest such date up to a week ahead.
- Weekdays: ``fri``/``this fri``/``on fri`` is the next Friday on or after
  today, except that a bare ``fri`` said on a Friday is asked about (today or
  in a week). ``next fri`` is the first Friday in the next calendar week
  (Monday to Sunday) when the nearest Friday is already there (said on
  Friday, Saturday or Sunday); said Monday to Thursday it could mean this
  week's or next week's, so it is asked about.

Times (``parse_time``)
- ``10:00``, ``9:30``, ``14.30``, ``1430``/``0930``, ``10:00:00``; ``10am``,
  ``10 am``, ``2.30pm``, ``10 a.m.``; ``noon``/``midday`` (12:00),
  ``midnight`` (00:00); ``12am`` is 00:00 and ``12pm`` 12:00.
- Without am/pm a time is read on the 24-hour clock, except an hour from 1 to
  6 written without a leading zero (``3``, ``3:00``, ``130``): nobody means
  3 in the morning without saying so, so that is refused with the fix
  (``3pm`` or ``03:00``).

Windows (``parse_window``)
- A day then a range: ``2026-12-05 10:00-13:00``, ``2026-12-05T10:00-13:00``,
  ``sat 10am-1pm``, ``5 Dec 10-1pm``, ``tomorrow 9:30-12``, ``sat 10am to 1pm``;
  the range may also come first (``10am-1pm sat``).
- A side without am/pm is read so that the window is as short as possible
  (``10-1pm`` is 10:00-13:00, ``11-2am`` 23:00-02:00, ``10-1`` 10:00-13:00,
  ``9-5`` 09:00-17:00); when neither side says am/pm the start is read as a
  time on its own (so ``2-4`` is refused: ``2-4pm``), and after a start
  plainly on the 24-hour clock (``13:00``, ``09:00``) the end is too.
- An end earlier than the start crosses midnight if the window is then at most
  12 hours long (``22:00-02:00``); otherwise it is refused as ending before it
  starts. ``midnight`` as the end is the end of the day.
- A start that could be am or pm with an end written with a leading zero is
  read on the 12-hour clock as readily as on the 24-hour one, and when both
  readings are sensible windows the person is asked, not guessed for:
  ``sat 12:00-01:00`` (12:00-13:00 or 00:00-01:00), ``10:00-09:00`` (10:00-21:00
  or 22:00-09:00).

Deadlines (``parse_deadline``): a date alone is 23:59:59 local on that day;
a date with a time (``fri 5pm``, ``2026-12-05 17:00``, ``5 Dec at noon``) is that
time; ``midnight`` there means the end of that day.

Clock changes (``local_datetime``): a wall-clock time the spring-forward gap
skips (01:30 on 2027-03-28 in London) is moved forward by the gap (02:30 BST,
the same instant as 01:30 GMT); a time the autumn fold repeats (01:30 on
2026-10-25) is its first occurrence (BST). Note that aware datetimes sharing
one tzinfo compare and subtract by wall time: convert to UTC to measure a
length (a window across a clock change) and check ``utcoffset()`` in tests.

Errors are ``WhenError``: one line naming what was not understood and the
forms accepted. Two readings are returned as ``Ambiguous`` with the question
to ask.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from bot.clock import local_datetime as local_datetime
from bot.commands.lexer import normalise

__all__ = [
    "Ambiguous",
    "WhenError",
    "describe_date",
    "describe_window",
    "local_datetime",
    "parse_date",
    "parse_deadline",
    "parse_time",
    "parse_window",
]

T = TypeVar("T")
U = TypeVar("U")


class WhenError(ValueError):
    """One clear line: what was not understood and the forms accepted."""


@dataclass(frozen=True)
class Ambiguous(Generic[T]):
    """Two or more readings of what was typed, to be asked about rather than guessed."""

    choices: tuple[T, ...]
    question: str

    def map(self, read: Callable[[T], U]) -> Ambiguous[U]:
        """The same question over readings derived from these (a date's windows)."""
        return Ambiguous(tuple(read(choice) for choice in self.choices), self.question)


DATE_FORMS = "2026-12-05, 5/12, 5 Dec, fri, next fri, tomorrow or +7d"
TIME_FORMS = "10:00, 14.30, 10am or 2.30pm"
WINDOW_FORMS = "2026-12-05 10:00-13:00 or sat 10am-1pm"

_MAX_LEN = 80
_GRACE = timedelta(days=7)
_DAY = 24 * 3600
_END_OF_DAY = time(23, 59, 59)
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FULL_MONTHS = tuple(calendar.month_name[1:])  # English: calendar's names are not localised

_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("mon", "monday", "mond"),
            ("tue", "tues", "tuesday"),
            ("wed", "weds", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        )
    )
    for name in names
}
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_KEYWORDS = {
    **dict.fromkeys(("today", "tonight", "tod"), 0),
    **dict.fromkeys(
        ("tomorrow", "tmrw", "tmr", "tmw", "tomoz", "tomorow", "tommorow", "tommorrow"), 1
    ),
    **dict.fromkeys(("yesterday", "yday"), -1),
    "day after tomorrow": 2,
}
_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"), start=1
    )
} | {"a": 1, "an": 1}
_UNIT_DAYS = {"d": 1, "day": 1, "days": 1, "w": 7, "wk": 7, "wks": 7, "week": 7, "weeks": 7}
_UNIT_DAYS |= {"fortnight": 14, "fortnights": 14}

_A = re.ASCII
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", _A)
_NUMERIC = re.compile(r"(\d{1,2})([/.-])(\d{1,2})(?:\2(\d{4}|\d{2}))?", _A)
_DAY_MONTH = re.compile(
    r"(\d{1,2})(?:st|nd|rd|th)?(?:\s*of)?[\s/-]*([a-z]+)\.?(?:[\s/-]*(\d{4}|\d{2}))?", _A
)
_MONTH_DAY = re.compile(r"([a-z]+)\.?[\s/-]*(\d{1,2})(?:st|nd|rd|th)?(?:\s+(\d{4}))?", _A)
_RELATIVE = re.compile(r"(?:\+|in\s+)\s*(\d{1,4}|[a-z]+)\s*([a-z]*)", _A)
_WEEKDAY = re.compile(r"(?:(this|next|on|coming|this coming)\s+)?([a-z]+)", _A)
_LEADING_WEEKDAY = re.compile(r"(?:on\s+|this\s+|next\s+)?([a-z]+)\s+(.+)", _A)

_MERIDIEM = r"[ap]\.?\s*m\b\.?"
_TIME = (
    rf"(?:(?:12\s*)?(?:noon|midday|midnight)|\d{{1,2}}(?:[:.]\d{{2}}){{0,2}}\s*(?:{_MERIDIEM})?"
    rf"|\d{{3,4}}\s*(?:{_MERIDIEM})?)"
)
_CLOCK = re.compile(
    r"(?:12\s*)?(?P<word>noon|midday|midnight)"
    r"|(?:(?P<h>\d{1,2})(?:[:.](?P<m>\d{2})(?:[:.](?P<s>\d{2}))?)?|(?P<hm>\d{3,4}))"
    r"\s*(?:(?P<ap>[ap])\.?\s*m\.?)?",
    _A,
)
_RANGE = rf"(?P<a>{_TIME})\s*(?:-|to|till|til|until|and)\s*(?P<b>{_TIME})"
_RANGE_AT_END = re.compile(rf"(?:^|(?<=\s)|(?<=[0-9]t)){_RANGE}$", _A)
_RANGE_AT_START = re.compile(rf"(?:from\s+|between\s+)?{_RANGE}(?:\s+|$)", _A)
_TIME_AT_END = re.compile(rf"(?:\s+at\s+|\s+|(?<=[0-9])t)(?P<t>{_TIME})$", _A)
_DAY_PART_TAIL = re.compile(r"(?:(?<=[0-9])t|\s+(?:at|from|between|on))$", _A)


def _show(text: str, limit: int = 30) -> str:
    """The user's text, safe to put in a one-line reply."""
    shown = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return f'"{shown if len(shown) <= limit else shown[: limit - 1] + "…"}"'


def _clean(text: str, what: str, forms: str) -> str:
    cleaned = " ".join(normalise(text).lower().replace(",", " ").split()).strip("\"'.!?")
    if not cleaned:
        raise WhenError(f"No {what} given: try {forms}.")
    if len(cleaned) > _MAX_LEN:
        raise WhenError(f"That is too long to be a {what}: try {forms}.")
    return cleaned


def describe_date(d: date) -> str:
    """'Fri 5 Dec 2026': the form replies and questions use, independent of locale."""
    return f"{_DAY_NAMES[d.weekday()]} {d.day} {_MONTH_NAMES[d.month - 1]} {d.year}"


def describe_window(start: datetime, end: datetime) -> str:
    """'Sat 5 Dec 2026 10:00-13:00' (the end's date is named when it is another day)."""
    end_text = f"{end:%H:%M}"
    if end.date() != start.date() and end.time() != time(0):
        end_text = f"{describe_date(end.date())} {end_text}"
    return f"{describe_date(start.date())} {start:%H:%M}-{end_text}"


def _label(d: date, today: date) -> str:
    text = describe_date(d) if d.year != today.year else describe_date(d)[:-5]
    if d == today:
        return f"today ({text})"
    return f"tomorrow ({text})" if d == today + timedelta(1) else text


def _ask(choices: tuple[date, ...], today: date) -> Ambiguous[date]:
    labels = [_label(choice, today) for choice in choices]
    return Ambiguous(choices, f"Did you mean {' or '.join(labels)}?")


def _make_date(year: int, month: int, day: int) -> date:
    if not 1900 <= year <= 2199:
        raise WhenError(f"The year {year} looks wrong: try {DATE_FORMS}.")
    if not 1 <= month <= 12:
        raise WhenError(f"There is no month {month}: the month comes second, as in 5/12 or 5 Dec.")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise WhenError(f"There is no {day} {_FULL_MONTHS[month - 1]} {year}.")
    return date(year, month, day)


def _infer_year(month: int, day: int, today: date, prefer: str) -> date:
    """The date with this day and month nearest in the preferred direction, give or take a week."""
    if not 1 <= month <= 12:
        raise WhenError(f"There is no month {month}: the month comes second, as in 5/12 or 5 Dec.")
    if not 1 <= day <= calendar.monthrange(2024, month)[1]:  # 2024: a leap year
        raise WhenError(f"There is no {day} {_FULL_MONTHS[month - 1]}.")
    candidates = []
    for year in range(today.year - 9, today.year + 10):
        try:
            candidates.append(date(year, month, day))
        except ValueError:  # 29 February outside a leap year, or beyond date's range
            continue
    if prefer == "past":
        past = [c for c in candidates if c <= today + _GRACE]
        if past:
            return past[-1]
    else:
        future = [c for c in candidates if c >= today - _GRACE]
        if future:
            return future[0]
    raise WhenError(f"There is no {day} {_FULL_MONTHS[month - 1]} near enough to today.")


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def _calendar_date(text: str, today: date, prefer: str) -> date:
    if match := _ISO.fullmatch(text):
        return _make_date(int(match[1]), int(match[2]), int(match[3]))
    if match := _NUMERIC.fullmatch(text):
        day, month = int(match[1]), int(match[3])
        if match[4]:
            return _make_date(_year(match[4]), month, day)
        return _infer_year(month, day, today, prefer)
    day_text = month_text = year_text = None
    if (match := _DAY_MONTH.fullmatch(text)) and match[2] in _MONTHS:
        day_text, month_text, year_text = match[1], match[2], match[3]
    elif (match := _MONTH_DAY.fullmatch(text)) and match[1] in _MONTHS:
        month_text, day_text, year_text = match[1], match[2], match[3]
    if day_text is None or month_text is None:
        raise WhenError(f"I couldn't read {_show(text)} as a date: try {DATE_FORMS}.")
    month = _MONTHS[month_text]
    if year_text:
        return _make_date(_year(year_text), month, int(day_text))
    return _infer_year(month, int(day_text), today, prefer)


def _add_months(d: date, months: int) -> date:
    year, month0 = divmod(d.month - 1 + months, 12)
    year += d.year
    if not 1 <= year <= 9999:
        raise OverflowError
    return date(year, month0 + 1, min(d.day, calendar.monthrange(year, month0 + 1)[1]))


def _relative(count_text: str, unit: str, today: date) -> date:
    count = int(count_text) if count_text.isdigit() else _NUMBER_WORDS.get(count_text)
    if count is None or (not unit and not count_text.isdigit()):
        raise WhenError("I couldn't read that as a number of days: try +7d, +2w or in 3 days.")
    try:
        if unit in ("month", "months", "mo"):
            return _add_months(today, count)
        if unit and unit not in _UNIT_DAYS:
            raise WhenError(f'"{unit[:12]}" is not a unit I know: use days or weeks, as in +7d.')
        return today + timedelta(days=count * _UNIT_DAYS.get(unit, 1))
    except OverflowError:
        raise WhenError("That is too far ahead: give a date within the next few years.") from None


def _weekday(mode: str | None, weekday: int, today: date) -> date | Ambiguous[date]:
    ahead = (weekday - today.weekday()) % 7
    if mode == "next":
        nearest = today + timedelta(days=ahead or 7)
        sunday = today + timedelta(days=6 - today.weekday())
        return nearest if nearest > sunday else _ask((nearest, nearest + timedelta(7)), today)
    if mode is None and ahead == 0:
        return _ask((today, today + timedelta(7)), today)
    return today + timedelta(days=ahead)


def parse_date(
    text: str, *, today: date, prefer: Literal["future", "past"] = "future"
) -> date | Ambiguous[date]:
    """One calendar date from what a person typed; see the module docstring for the rules."""
    s = _clean(text, "date", DATE_FORMS)
    s = s.removeprefix("the ").removeprefix("on the ")
    if s in _KEYWORDS:
        return today + timedelta(days=_KEYWORDS[s])
    if match := _RELATIVE.fullmatch(s):
        return _relative(match[1], match[2], today)
    if (match := _WEEKDAY.fullmatch(s)) and match[2] in _WEEKDAYS:
        return _weekday(match[1], _WEEKDAYS[match[2]], today)
    expected = None
    if (match := _LEADING_WEEKDAY.fullmatch(s)) and match[1] in _WEEKDAYS:
        expected, s = _WEEKDAYS[match[1]], match[2].removeprefix("the ")
    result = _calendar_date(s, today, prefer)
    if expected is not None and result.weekday() != expected:
        raise WhenError(
            f"{describe_date(result)} is a {calendar.day_name[result.weekday()]}, "
            f"not a {calendar.day_name[expected]}: check the date or the day."
        )
    return result


@dataclass(frozen=True)
class _Clock:
    """A time of day as typed: its 24-hour reading and, when unclear, the other reading."""

    seconds: int  # seconds after midnight on the 24-hour reading (86400: midnight as an end)
    other: int | None  # the 12-hours-apart reading, for an hour typed without am/pm
    text: str
    twenty_four: bool = False  # plainly on the 24-hour clock (13:00, 09:00, 0930)

    def resolve_alone(self) -> time:
        """The reading when nothing else says am or pm (parse_time's rules)."""
        hour = self.seconds // 3600
        if self.other is not None and 1 <= hour <= 6:
            raise WhenError(
                f"Is {_show(self.text)} am or pm? Write {self.text}am, {self.text}pm "
                f"or {_hms(self.other)}."
            )
        return _time_of(self.seconds)


def _hms(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}" + (f":{rest % 60:02d}" if rest % 60 else "")


def _time_of(seconds: int) -> time:
    hours, rest = divmod(seconds % _DAY, 3600)
    return time(hours, rest // 60, rest % 60)


def _read_clock(text: str) -> _Clock:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise WhenError(f"I couldn't read {_show(text)} as a time: try {TIME_FORMS}.")
    if match["word"]:
        return _Clock(_DAY if match["word"] == "midnight" else 12 * 3600, None, text)
    hour_text = match["h"] or match["hm"][:-2]
    hour = int(hour_text)
    minute = int(match["m"] or (match["hm"] or "00")[-2:])
    second = int(match["s"] or 0)
    if minute > 59 or second > 59:
        raise WhenError(f"{_show(text)} is not a time: minutes and seconds go up to 59.")
    within = minute * 60 + second
    if match["ap"]:
        if not 1 <= hour <= 12:
            raise WhenError(f"{_show(text)} is not a time: with am or pm the hour is 1 to 12.")
        return _Clock((hour % 12 + (12 if match["ap"] == "p" else 0)) * 3600 + within, None, text)
    if hour == 24 and within == 0:
        return _Clock(_DAY, None, text)
    if hour > 23:
        raise WhenError(f"{_show(text)} is not a time: hours go up to 23.")
    unclear = 1 <= hour <= 12 and not hour_text.startswith("0")
    other = ((hour + 12) % 24) * 3600 + within if unclear else None
    return _Clock(hour * 3600 + within, other, text, twenty_four=not unclear)


def parse_time(text: str) -> time:
    """A time of day; see the module docstring for what is accepted and what is refused."""
    s = _clean(text, "time", TIME_FORMS).removeprefix("at ")
    return _read_clock(s).resolve_alone()


def _range(start: _Clock, end: _Clock) -> list[tuple[int, int]]:
    """Start and end in seconds after midnight of the day (end > 86400: the next day).

    One reading, or several when the text could as well mean either (see ``_other_halves``).
    """
    end_readings = [end.seconds]
    if end.other is not None and not start.twenty_four:  # 13:00-10:00 is not 13:00-22:00
        end_readings.append(end.other)
    if start.other is not None and end.other is None:
        start_readings = [start.seconds, start.other]
    else:
        start_readings = [_clock_seconds(start)]
    best: tuple[int, int] | None = None
    for s in start_readings:
        for e in end_readings:
            length = _length(s, e)
            if length and (best is None or length < best[1] - best[0]):
                best = (s, s + length)
    if best is None:
        raise WhenError(f"{_show(start.text + '-' + end.text)} starts and ends at the same time.")
    readings = _other_halves(start, end) or [best]
    if len(readings) == 1 and best[1] > _DAY and best[1] - best[0] > 12 * 3600:
        raise WhenError(
            f"{_show(start.text + '-' + end.text)} ends before it starts: "
            "give the start first, as in 10am-1pm."
        )
    return readings


def _length(start: int, end: int) -> int:
    return (end - start) % _DAY or (_DAY if end == _DAY and start == 0 else 0)


def _other_halves(start: _Clock, end: _Clock) -> list[tuple[int, int]]:
    """Both readings of a window that is sensible either way, else nothing.

    A start that could be am or pm (``10:00``, ``12:00``) and an end written with a
    leading zero (``09:00``, ``01:00``) are read as the 12-hour clock as often as the
    24-hour one: ``10:00-09:00`` is 10:00-21:00 or 22:00-09:00, ``12:00-01:00`` is
    12:00-13:00 or 00:00-01:00. When more than one reading is at most 12 hours long,
    the person is asked; guessing the shortest would be a coin toss.
    """
    if start.other is None or not end.twenty_four or not 3600 <= end.seconds < 12 * 3600:
        return []
    found: list[tuple[int, int]] = []
    for s in (start.seconds, start.other):
        for e in (end.seconds, end.seconds + 12 * 3600):
            length = _length(s, e)
            if 0 < length <= 12 * 3600 and (s, s + length) not in found:
                found.append((s, s + length))
    return found if len(found) > 1 else []


def _clock_seconds(clock: _Clock) -> int:
    if clock.seconds == _DAY:  # midnight as a start is the start of the day
        return 0
    t = clock.resolve_alone()
    return t.hour * 3600 + t.minute * 60 + t.second


def _split_window(s: str) -> tuple[str, str, str]:
    """(day text, start text, end text) of a window."""
    if match := _RANGE_AT_END.search(s):
        day_text = _DAY_PART_TAIL.sub("", s[: match.start()].rstrip())
    elif match := _RANGE_AT_START.match(s):
        day_text = s[match.end() :].removeprefix("on ")
    else:
        raise WhenError(f"I couldn't find a start and end time in {_show(s)}: try {WINDOW_FORMS}.")
    if not day_text.strip():
        raise WhenError(f"Say which day for {_show(s)}, as in {WINDOW_FORMS}.")
    return day_text.strip(), match["a"].strip(), match["b"].strip()


def parse_window(
    text: str, *, today: date, tz: ZoneInfo
) -> tuple[datetime, datetime] | Ambiguous[tuple[datetime, datetime]]:
    """A day with a start and end time, as tz-aware datetimes (see the module docstring)."""
    s = _clean(text, "day and time", WINDOW_FORMS)
    day_text, start_text, end_text = _split_window(s)
    readings = _range(_read_clock(start_text), _read_clock(end_text))
    day = parse_date(day_text, today=today)

    def window(d: date, start: int, end: int) -> tuple[datetime, datetime]:
        begins = local_datetime(d, _time_of(start), tz)
        ends = local_datetime(d + timedelta(days=end // _DAY), _time_of(end), tz)
        if ends <= begins:  # only possible across a clock change
            raise WhenError(f"That window is empty once the clocks change on {describe_date(d)}.")
        return begins, ends

    if len(readings) == 1:
        [(start, end)] = readings
        return (day.map(lambda d: window(d, start, end)) if isinstance(day, Ambiguous)
                else window(day, start, end))
    days = day.choices if isinstance(day, Ambiguous) else (day,)
    spans = [f"{_hms(start)}-{_hms(end % _DAY)}" for start, end in readings]
    question = ("Which day and time did you mean?" if isinstance(day, Ambiguous)
                else f"Did you mean {' or '.join(spans)}?")
    return Ambiguous(tuple(window(d, start, end) for d in days for start, end in readings),
                     question)


def parse_deadline(text: str, *, today: date, tz: ZoneInfo) -> datetime | Ambiguous[datetime]:
    """A date (the end of that day) or a date with a time, as a tz-aware datetime."""
    s = _clean(text, "deadline", DATE_FORMS)
    at = _END_OF_DAY
    try:
        day = parse_date(s, today=today)
    except WhenError as error:
        match = _TIME_AT_END.search(s)
        if match is None:
            raise
        try:
            day = parse_date(s[: match.start()], today=today)
        except WhenError:
            raise error from None
        clock = _read_clock(match["t"])
        at = _END_OF_DAY if clock.seconds == _DAY else clock.resolve_alone()

    def deadline(d: date) -> datetime:
        return local_datetime(d, at, tz)

    return day.map(deadline) if isinstance(day, Ambiguous) else deadline(day)
