"""The whole bot against the test Synapse: in-process (fast, app inside reach) or as a
real ``grapevine run`` subprocess (for SIGKILL and second-instance tests).

Every test that starts a bot runs twice: with the bot on SQLite (in its data directory)
and on the real PostgreSQL (a fresh database of its own, dropped afterwards): the
``bot_databases`` fixture is parametrized by engine and every way of making a bot
takes it.

An in-process bot runs on a test clock (tests/clocks.py) that starts at a fixed
daytime instant in London and ticks on from there; the test moves it with
``bot.clock`` or ``bot.advance_to``. Nothing reads the wall clock, so a test
passes at any hour.

Synapse stamps events with its own, real clock (``origin_server_ts``), and the
bot keeps that stamp as when a message was written (flow records). The privacy
purge deletes records older than ``retention_days`` before the bot's now, so a
bot clock far AHEAD of Synapse's would find messages just written already stale
and purge them. Test clocks therefore stay in the past of any real run (2026),
as the fixed instants in tests/clocks.py do; a test clock behind the server only
makes new messages look "from the future", which no purge or window excludes.
The subprocess bot (``BotProcess``) is production as it runs: system clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from people import Person

from bot.app import Grapevine
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.service import Service
from config.settings import Settings, load_settings
from tests.clocks import START, ManualClock
from tests.conftest import drop_pg_database, make_pg_database

REPO = Path(__file__).resolve().parents[2]
# [matrix] values passed to `grapevine run` through the environment, never the file.
SECRETS = ("password", "access_token", "cross_signing_key")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BotSetup:
    """A bot account on the test Synapse and the config that runs it."""

    user: RegisteredUser
    data_dir: Path
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.user.user_id

    def settings(self) -> Settings:
        return load_settings(None, **self.values)

    def write_config(self) -> Path:
        """The same settings as a TOML file, secrets passed through the environment."""
        lines = []
        for section, values in self.values.items():
            if section in {"privacy"}:
                continue
            lines.append(f"[{section}]")
            for key, value in values.items():
                if key in SECRETS:
                    continue
                lines.append(f"{key} = {_toml(value)}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "grapevine.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in SECRETS:
            if self.values["matrix"].get(key) is not None:
                env[f"GRAPEVINE_MATRIX__{key.upper()}"] = self.values["matrix"][key]
        env["GRAPEVINE_PRIVACY__PSEUDONYM_SECRET"] = self.values["privacy"]["pseudonym_secret"]
        return env


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class BotDatabases:
    """Where a test's bots keep their data: SQLite in each bot's data directory, or a
    fresh PostgreSQL database per bot on the test server."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.made: list[str] = []

    async def storage(self) -> dict[str, Any]:
        """The ``[storage]`` settings for one more bot."""
        if self.engine == "sqlite":
            return {}
        url = await make_pg_database()
        self.made.append(url)
        return {"url": url}

    async def drop(self) -> None:
        for url in self.made:
            await drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def bot_databases(request: pytest.FixtureRequest) -> AsyncIterator[BotDatabases]:
    databases = BotDatabases(request.param)
    try:
        yield databases
    finally:
        await databases.drop()


async def make_bot_setup(
    synapse: EmbeddedSynapse, admin: RegisteredUser, data_dir: Path,
    databases: BotDatabases | None = None, **sections: dict[str, Any]
) -> BotSetup:
    """A fresh bot account (a server admin without rate limits), its database and settings.

    Pass the test's ``bot_databases`` so the test runs on both engines; without it the
    bot is on SQLite only.
    """
    localpart = f"grapevine_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    user = await synapse.register(localpart, password, admin=True, displayname="Grapevine")
    await synapse.override_ratelimit(user.user_id, admin.access_token)
    values: dict[str, dict[str, Any]] = {
        # London, as tests/clocks.py's instants are; the clock says when, not the zone.
        "bot": {"data_dir": str(data_dir), "timezone": "Europe/London"},
        "matrix": {"homeserver": synapse.base_url, "user_id": user.user_id,
                   "password": password, "encryption": True,
                   "cross_signing_key": uuid.uuid4().hex},
        "privacy": {"pseudonym_secret": uuid.uuid4().hex},
        "web": {"listen": f"127.0.0.1:{free_port()}"},
        "storage": await databases.storage() if databases is not None else {},
    }
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    return BotSetup(user, data_dir, values)


def left_running(service: Service) -> list[str]:
    """Database connections of a stopped service still out of the pool (by the name of the
    task that took each). None may be left once ``stop()`` returns: a transaction held open
    keeps SQLite's write lock from the next start in the same process ("database is locked"
    after the 10 s busy timeout). Tasks are not listed here: other bots of the same session
    (and the test's own helpers) run in this loop too, so "tasks running the bot's code"
    cannot tell this service's leftovers from theirs."""
    return [f"connection held by {name}" for name in service.db.checked_out()]


class RunningBot:
    """A bot running in this process on a test clock; ``app`` is the live Grapevine."""

    def __init__(self, setup: BotSetup, clock: ManualClock | None = None) -> None:
        self.setup = setup
        self.clock = clock or ManualClock(START, ticking=True)
        self.service: Service | None = None

    @property
    def user_id(self) -> str:
        return self.setup.user_id

    @property
    def app(self) -> Grapevine:
        assert self.service is not None and self.service.app is not None
        return self.service.app

    async def start(self) -> RunningBot:
        self.service = Service(self.setup.settings(), clock=self.clock)
        await self.service.start()
        await self.service.wait_ready()
        return self

    def advance_to(self, moment: datetime) -> None:
        """Move the bot's clock (every part of the bot reads it) and wake the outbox."""
        self.clock.current = moment
        self.app.queued()  # what was waiting may be due now

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            left = left_running(self.service)
            self.service = None
            assert not left, f"still running after the bot stopped: {left}"

    async def restart(self) -> None:
        await self.stop()
        await self.start()


class BotProcess:
    """``grapevine run -c FILE`` in a subprocess, as production runs it, on a test clock.

    The clock goes on across restarts (each start hands the process where it has got to),
    and never reads the wall: see tests/integration/clocked_run.py."""

    def __init__(self, setup: BotSetup, *options: str, clock: ManualClock | None = None) -> None:
        self.setup = setup
        self.clock = clock or ManualClock(START, ticking=True)
        self.config = setup.write_config()
        self.options = options  # more command-line options, e.g. "-v"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = setup.data_dir / "bot.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.clocked_run",
                 self.clock.now().isoformat(), "run", "-c", str(self.config), *self.options],
                cwd=REPO, env=self.setup.environment(), stdout=log, stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until its health endpoint says it has synced."""
        url = f"http://{self.setup.values['web']['listen']}/health"
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.tail()}")
                try:
                    async with http.get(url) as response:
                        if (await response.json()).get("synced"):
                            return
                except (TimeoutError, aiohttp.ClientError):
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"bot not ready in {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


BotFactory = Callable[..., Awaitable[RunningBot]]


class Bots:
    """Bots started on one homeserver during a test, each with its own account and data."""

    def __init__(self, synapse: EmbeddedSynapse, admin: RegisteredUser, root: Path,
                 databases: BotDatabases) -> None:
        self.synapse, self.admin, self.root = synapse, admin, root
        self.databases = databases
        self.running: list[RunningBot] = []

    async def start(self, *, clock: ManualClock | None = None,
                    **sections: dict[str, Any]) -> RunningBot:
        data_dir = self.root / f"bot{len(self.running)}"
        setup = await make_bot_setup(self.synapse, self.admin, data_dir, self.databases,
                                     **sections)
        bot = await RunningBot(setup, clock).start()
        self.running.append(bot)
        return bot

    async def stop(self) -> None:
        for bot in self.running:
            await bot.stop()


@pytest.fixture
async def bot_factory(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, tmp_path: Path,
    bot_databases: BotDatabases,
) -> AsyncIterator[BotFactory]:
    """``await bot_factory(roles={...})``: a running bot with its own account and database.

    ``clock=ManualClock(moment, ticking=True)`` starts it at ``moment``."""
    bots = Bots(synapse, synapse_admin, tmp_path, bot_databases)
    yield bots.start
    await bots.stop()


@pytest.fixture
async def bot(bot_factory: BotFactory) -> RunningBot:
    return await bot_factory()


async def bring_bot_in(person: Person, bot: RunningBot | BotSetup, name: str = "Group") -> str:
    """``person`` makes a group room and invites the bot; returns once the bot has greeted it."""
    user_id = bot.user_id
    room = await person.create_room(name=name, invite=[user_id])
    await person.wait_for_message(room, sender=user_id, contains="never what anyone writes",
                                  timeout=30)
    return room
