"""The bot reads time only through a clock, so tests can move it (DST, quiet hours, deadlines).

One running bot has one :class:`SharedClock`: the app, the outbox worker, the
scheduler and the sync loop all hold the same one, so replacing the clock it
follows (``app.clock = other``) moves every component at once. A component
that kept its own clock would disagree with the app about what is due, which
is how tests came to pass only at some hours of the day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SharedClock:
    """The one clock every part of a running bot reads; ``follow`` swaps what it tells."""

    def __init__(self, source: Clock | None = None) -> None:
        self.source: Clock = source or SystemClock()

    def now(self) -> datetime:
        return self.source.now()

    def follow(self, source: Clock) -> None:
        if source is not self:  # following itself would recurse forever
            self.source = source


def shared(clock: Clock | None) -> SharedClock:
    """``clock`` if it is already shared, else a shared clock that follows it."""
    return clock if isinstance(clock, SharedClock) else SharedClock(clock)


def local_datetime(d: date, t: time, tz: ZoneInfo) -> datetime:
    """d at wall-clock time t in tz: a time the spring-forward gap skips comes out moved
    forward by the gap, and a time the autumn fold repeats is the earlier reading (the
    rules bot.commands.when states for everything people type)."""
    wall = datetime.combine(d, t.replace(tzinfo=None), tzinfo=tz)  # fold=0: the earlier reading
    return wall.astimezone(UTC).astimezone(tz)  # a time in the gap comes out moved forward
