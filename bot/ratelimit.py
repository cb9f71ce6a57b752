"""Per-sender limits: commands a minute (over it, one polite reply, then silence), and
notices and volunteer requests a day for non-coordinators (COMMANDS.md: 3 of each; over it,
a reply saying when the next is allowed, and nothing changes)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from bot.commands.when import describe_date


class Verdict(Enum):
    OK = "ok"
    WARN = "warn"  # first refusal: tell the sender once
    DROP = "drop"  # already told: say nothing


class RateLimiter:
    """A sliding window per sender; memory only (a restart forgives everyone, which is fine)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: dict[str, deque[float]] = {}
        self._warned: set[str] = set()

    def check(self, sender: str, now: float) -> Verdict:
        times = self._times.setdefault(sender, deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) < self.per_minute:
            times.append(now)
            self._warned.discard(sender)
            return Verdict.OK
        if sender in self._warned:
            return Verdict.DROP
        self._warned.add(sender)
        return Verdict.WARN


DAY = timedelta(days=1)


def daily_refusal(made: Sequence[datetime], now: datetime, per_day: int, tz: ZoneInfo,
                  what: str) -> str | None:
    """The one-line refusal when ``made`` (when the sender's earlier ones were made) already
    holds ``per_day`` in the 24 hours before ``now``; None when one more is allowed.

    The window slides, so the reply can say exactly when the next one is allowed: when the
    oldest of the last ``per_day`` is a day old.
    """
    recent = sorted(t for t in made if t > now - DAY)
    if len(recent) < per_day:
        return None
    if per_day <= 0:
        return f"Only coordinators may make {what}; ask one to do it. Nothing was changed."
    again = (recent[-per_day] + DAY).astimezone(tz)
    return (f"You've made {len(recent)} {what} in the last 24 hours, the daily limit for "
            f"anyone but a coordinator; you can make another from {again:%H:%M} on "
            f"{describe_date(again.date())}. Nothing was changed.")
