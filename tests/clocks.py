"""The one test clock, and London-local instants to set it to.

Tests never read the real clock. Every bot a test starts (in-process world or
real Synapse) is handed a :class:`ManualClock`, and the bot's outbox worker,
scheduler, sync loop and world all read that same clock, so moving it moves
the whole bot.

``WALL_TIMES`` are the instants at which a CI run has found trouble: after
midnight, before 08:30, after 21:00 in London, and both 2026 clock-change
days. Time-sensitive tests take the ``wall`` fixture (tests/conftest.py),
start their bot at each of these instants and derive their scenario from it.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def london(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """``hour:minute`` London time on ``day``, as a UTC instant (fold 0 in the repeated hour)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def next_london(after: datetime, hour: int, minute: int = 0) -> datetime:
    """The first moment at or after ``after`` when London's clocks read ``hour:minute``."""
    day = after.astimezone(LONDON).date()
    moment = london(day, hour, minute)
    return moment if moment >= after else london(day + timedelta(days=1), hour, minute)


# Friday 20 November 2026, 10:00 in London (GMT): daytime, so nothing waits out the quiet
# night. In the past of any real run, which matters on Synapse: see tests/integration/botfixture.py.
START = london(date(2026, 11, 20), 10, 0)

WALL_TIMES: dict[str, datetime] = {
    "00:30-london": london(date(2026, 11, 20), 0, 30),
    "08:15-london": london(date(2026, 11, 20), 8, 15),
    "21:30-london": london(date(2026, 11, 20), 21, 30),
    "spring-forward-2026-03-29": london(date(2026, 3, 29), 0, 30),
    "fall-back-2026-10-25": london(date(2026, 10, 25), 0, 30),
}


class ManualClock:
    """Now is whatever the test says (``current = ``, ``advance()``).

    Frozen by default, so a test can assert exact times. ``ticking=True`` lets it also
    move on with elapsed time from where it was last set, as a real bot's clock does
    between commands (rate limits and the outbox's waits then behave as in production);
    elapsed time is measured on the monotonic clock, never read from the wall.
    """

    def __init__(self, start: datetime | None = None, *, ticking: bool = False) -> None:
        self._set = start or START
        self._ticking = ticking
        self._since = time.monotonic()

    @property
    def current(self) -> datetime:
        return self.now()

    @current.setter
    def current(self, moment: datetime) -> None:
        assert moment.tzinfo is not None, "a test clock holds aware instants"
        self._set = moment
        self._since = time.monotonic()

    def now(self) -> datetime:
        if not self._ticking:
            return self._set
        return self._set + timedelta(seconds=time.monotonic() - self._since)

    def advance(self, **delta: float) -> None:
        self.current = self.now() + timedelta(**delta)
