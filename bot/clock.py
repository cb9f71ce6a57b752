"""The bot reads time only through a clock, so tests can move it (DST, quiet hours, deadlines)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def local_datetime(d: date, t: time, tz: ZoneInfo) -> datetime:
    """d at wall-clock time t in tz: a time the spring-forward gap skips comes out moved
    forward by the gap, and a time the autumn fold repeats is the earlier reading (the
    rules bot.commands.when states for everything people type)."""
    wall = datetime.combine(d, t.replace(tzinfo=None), tzinfo=tz)  # fold=0: the earlier reading
    return wall.astimezone(UTC).astimezone(tz)  # a time in the gap comes out moved forward
