"""Counting the HTTP requests one Matrix account makes, by kind, for cost assertions.

Every request a matrix-nio client makes goes through ``AsyncClient.send``; the
counter wraps it for one user id only (the people in a test use nio too), so
a test can say "a restart fetched no room state" or "chat cost no request".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import nio
import pytest

_KINDS = (
    ("sync", re.compile(r"/sync\b")),
    ("room state", re.compile(r"/rooms/[^/]+/state/?(\?|$)")),
    ("state event", re.compile(r"/rooms/[^/]+/state/.+")),
    ("members", re.compile(r"/rooms/[^/]+/(joined_)?members")),
    ("history", re.compile(r"/rooms/[^/]+/messages")),
    ("send", re.compile(r"/rooms/[^/]+/send/")),
    ("join", re.compile(r"/join/|/rooms/[^/]+/join")),
    ("keys", re.compile(r"/keys/|/sendToDevice/")),
)


def kind_of(path: str) -> str:
    path = path.split("?", 1)[0] + ("?" if "?" in path else "")
    for kind, pattern in _KINDS:
        if pattern.search(path):
            return kind
    return "other"


class RequestCounter:
    """``counts[kind]`` of requests made by ``user_id`` since the last :meth:`reset`."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.counts: Counter[str] = Counter()
        self.paths: list[str] = []

    def record(self, method: str, path: str) -> None:
        self.counts[kind_of(path)] += 1
        self.paths.append(f"{method} {path.split('?', 1)[0]}")

    def reset(self) -> None:
        self.counts.clear()
        self.paths.clear()

    def besides_sync(self) -> dict[str, int]:
        return {k: n for k, n in self.counts.items() if k != "sync"}


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch, user_id: str) -> Iterator[RequestCounter]:
    counter = RequestCounter(user_id)
    original = nio.AsyncClient.send

    async def send(self: nio.AsyncClient, method: str, path: str, *args: Any, **kw: Any) -> Any:
        if self.user_id == user_id:
            counter.record(method, path)
        return await original(self, method, path, *args, **kw)

    monkeypatch.setattr(nio.AsyncClient, "send", send)
    yield counter
