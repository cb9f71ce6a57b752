"""Waiting politely: exponential backoff with jitter, and sleeps a stop can cut short."""

from __future__ import annotations

import asyncio
import contextlib
import random


class Backoff:
    """1 s, 2 s, 4 s ... up to ``cap``, each scaled by a random 0.5-1.0 so restarts spread."""

    def __init__(self, initial: float = 1.0, cap: float = 60.0) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``event`` was set meanwhile (stop or wake)."""
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))
    return event.is_set()
