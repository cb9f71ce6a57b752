"""What every Synapse bench sets up the same way: one embedded Synapse (SQLite) in a
scratch directory, a server admin, the bot's account and the people's, rate limits
lifted for all of them, the bot's settings, and the figures' percentile.

    async with stage("person") as on:
        service = await start(on.settings())
        ...

Each bench used to carry its own copy of this; a change to how the bot is set up (a
new setting every bench needs) now happens here once.
"""

from __future__ import annotations

import importlib
import os
import random
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.clock import Clock
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.service import Service
from config.settings import Settings, load_settings


@dataclass
class Stage:
    """The homeserver and the accounts on it, for one run."""

    root: Path
    synapse: EmbeddedSynapse
    admin: RegisteredUser
    bot: RegisteredUser
    bot_password: str
    people: dict[str, RegisteredUser]

    def settings(self, *, encryption: bool = False, **sections: dict[str, Any]) -> Settings:
        """The bot's settings: its data in the scratch directory, no limit on commands
        (a bench asks faster than people do), encryption as asked, no web port."""
        matrix: dict[str, Any] = {"homeserver": self.synapse.base_url,
                                  "user_id": self.bot.user_id, "password": self.bot_password,
                                  "encryption": encryption}
        if encryption:
            matrix["cross_signing_key"] = uuid.uuid4().hex
        values: dict[str, dict[str, Any]] = {
            "bot": {"data_dir": str(self.root / "bot"), "commands_per_minute": 100000},
            "matrix": matrix,
            "privacy": {"pseudonym_secret": "bench"},
            "web": {"listen": "127.0.0.1:0"},
        }
        for section, extra in sections.items():
            values.setdefault(section, {}).update(extra)
        return load_settings(None, **values)


@asynccontextmanager
async def stage(*people: str) -> AsyncIterator[Stage]:
    """A fresh Synapse with an admin, the bot (a server admin) and ``people``, none of
    them rate-limited; stopped and deleted at the end."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        synapse = EmbeddedSynapse(root / "synapse")
        await synapse.start()
        try:
            admin = await synapse.register("admin", admin=True)
            password = uuid.uuid4().hex
            bot = await synapse.register("grapevine", password, admin=True,
                                         displayname="Grapevine")
            accounts = {name: await synapse.register(name) for name in people}
            for user in (bot, *accounts.values()):
                await synapse.override_ratelimit(user.user_id, admin.access_token)
            yield Stage(root, synapse, admin, bot, password, accounts)
        finally:
            await synapse.stop()


async def start(settings: Settings, clock: Clock | None = None) -> Service:
    """The bot as production runs it (sync loop, lanes, outbox worker), once in sync."""
    service = Service(settings, clock=clock)
    await service.start()
    await service.wait_ready()
    return service


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ratio_interval(ours: list[float], floor: list[float], q: float, *, draws: int = 2000,
                   share: float = 0.90, seed: int = 0) -> tuple[float, float]:
    """The ``share`` interval of ``percentile(ours, q) / percentile(floor, q)`` over
    bootstrap resamples of the rounds (round i of each list resampled together: the
    rounds interleave, so load falls on both alike). It says whether a run's ratio can
    tell 1.12 from a 1.10 target: same code, runs minutes apart, differ by about that.
    Costs ``draws`` sorts of each list, O(draws * n log n); seeded, so reruns agree."""
    rng = random.Random(seed)
    n = len(ours)
    ratios = []
    for _ in range(draws):
        picks = [rng.randrange(n) for _ in range(n)]
        ratios.append(percentile([ours[i] for i in picks], q)
                      / percentile([floor[i] for i in picks], q))
    tail = (1 - share) / 2
    return percentile(ratios, tail), percentile(ratios, 1 - tail)


def load() -> str:
    """The 1, 5 and 15 minute load averages, printed beside every figure."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


F = TypeVar("F", bound=Callable[..., Any])


def importable(fn: F) -> F:
    """``fn`` as a spawned child process can find it. A bench run by ``python -m bench
    NAME`` is the module ``__main__``, which the child cannot import by that name; the
    same function from the module under its own name can be."""
    if fn.__module__ != "__main__":
        return fn
    spec = fn.__globals__.get("__spec__")
    assert spec is not None, "run the bench as a module (python -m bench NAME)"
    found: F = getattr(importlib.import_module(spec.name), fn.__name__)
    return found
