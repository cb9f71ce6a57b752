"""Per-sender command rate limits: over the limit, one polite reply, then silence."""

from __future__ import annotations

from collections import deque
from enum import Enum


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
