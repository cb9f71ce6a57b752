"""Weekly availability as 21 slots (weekday x morning 06-12, afternoon 12-18, evening 18-24).

A set of slots is an int bitmask (bit ``day * 3 + part``, Monday = 0), so the
database can test "free for every slot this shift touches" with one ``&`` and no
extra rows. This module is pure: text in, mask out, and back.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PARTS = ("morning", "afternoon", "evening")
# Part of day -> (start hour, end hour); 00:00-06:00 belongs to no slot.
PART_HOURS = ((6, 12), (12, 18), (18, 24))
ALL = (1 << 21) - 1

_DAY_WORDS: dict[str, tuple[int, ...]] = {
    **{d: (i,) for i, d in enumerate(DAYS)},
    **{name: (i,) for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))},
    "tues": (1,), "weds": (2,), "thur": (3,), "thurs": (3,),
    "weekday": (0, 1, 2, 3, 4), "weekdays": (0, 1, 2, 3, 4),
    "weekend": (5, 6), "weekends": (5, 6),
    "daily": tuple(range(7)), "everyday": tuple(range(7)), "any": tuple(range(7)),
}  # fmt: skip
_PART_WORDS: dict[str, tuple[int, ...]] = {
    "morning": (0,), "mornings": (0,), "am": (0,),
    "afternoon": (1,), "afternoons": (1,), "pm": (1,),
    "evening": (2,), "evenings": (2,), "night": (2,), "nights": (2,),
    "allday": (0, 1, 2), "day": (0, 1, 2), "days": (0, 1, 2),
}  # fmt: skip
_ANYTIME = {"anytime", "any-time", "always", "all"}

FORMS = "weekends, weekday-evenings, mon-morning,sat-afternoon or anytime"


class SlotError(ValueError):
    """One line for the sender: which part was not understood, and the forms accepted."""


def bit(day: int, part: int) -> int:
    return 1 << (day * 3 + part)


def parse_slots(text: str) -> int:
    """``weekends``, ``weekday-evenings``, ``mon-morning,sat-afternoon``, ``anytime`` -> mask."""
    mask = 0
    items = [i for i in re.split(r"[,;/]|\band\b", text.lower()) if i.strip()]
    if not items:
        raise SlotError(f"no times given: try {FORMS}")
    for item in items:
        mask |= _parse_item(item.strip())
    return mask


def _parse_item(item: str) -> int:
    key = re.sub(r"[\s_]+", "-", item.strip(" .")).replace("–", "-").replace("—", "-")
    if key in _ANYTIME:
        return ALL
    words = [w for w in key.split("-") if w]
    days: tuple[int, ...] = tuple(range(7))
    parts: tuple[int, ...] = (0, 1, 2)
    seen_day = seen_part = False
    for word in words:
        if word in _DAY_WORDS and not seen_day:
            days, seen_day = _DAY_WORDS[word], True
        elif word in _PART_WORDS and not seen_part:
            parts, seen_part = _PART_WORDS[word], True
        else:
            raise SlotError(f"{item!r} is not a time I know: try {FORMS}")
    return sum(bit(d, p) for d in days for p in parts)


def describe(mask: int) -> str:
    """The shortest plain reading: 'anytime', 'weekends', 'mon-morning, sat-afternoon'."""
    if mask & ALL == ALL:
        return "anytime"
    if mask == 0:
        return "no times"
    out: list[str] = []
    remaining = mask
    named = (("weekends", (5, 6)), ("weekdays", (0, 1, 2, 3, 4)))
    for name, days in named:
        whole = sum(bit(d, p) for d in days for p in range(3))
        if remaining & whole == whole:
            out.append(name)
            remaining &= ~whole
        for part, part_name in enumerate(PARTS):
            row = sum(bit(d, part) for d in days)
            if remaining & row == row:
                out.append(f"{name.removesuffix('s')}-{part_name}s")
                remaining &= ~row
    for day, day_name in enumerate(DAYS):
        for part, part_name in enumerate(PARTS):
            if remaining & bit(day, part):
                out.append(f"{day_name}-{part_name}")
    return ", ".join(out)


def window_slots(start: datetime, end: datetime) -> int:
    """Every slot a shift touches, read in the shift's own (local) time zone.

    A shift 10:00-13:00 needs the morning and the afternoon; one ending at
    12:00 needs only the morning. Hours before 06:00 touch no slot.
    """
    mask = 0
    cursor = start.replace(minute=0, second=0, microsecond=0)
    while cursor < end:
        hour = cursor.hour
        for part, (lo, hi) in enumerate(PART_HOURS):
            if lo <= hour < hi:
                mask |= bit(cursor.weekday(), part)
        cursor += timedelta(hours=1)
    return mask
