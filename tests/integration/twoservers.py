"""Two Synapses federating on loopback, started once per session: the bot's council and another.

Each is named ``localhost:<port>`` and serves federation over TLS on that port,
with a certificate signed by a throwaway CA (made by openssl) that both trust
through ``federation_custom_ca_list``, so they verify each other as production
servers do. The bot lives on ``home``; groups, volunteers and moderators of a
second council live on ``away``. Tests that stop ``away`` must start it again
(``outage()`` does), so the next test finds both up.

Synapse backs off from a server that stopped answering for ten minutes by
default; here the back-off is a few seconds, so a server that comes back is
tried again while a test is still polling (production keeps the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botfixture import BotDatabases, Bots, RunningBot
from people import Person, new_person

from bot.homeserver import EmbeddedSynapse, HomeserverError, LoopbackCA, RegisteredUser
from tests.clocks import ManualClock

FAST_RETRIES = {
    "federation": {
        "destination_min_retry_interval": "1s",
        "destination_retry_multiplier": 1.5,
        "destination_max_retry_interval": "3s",
    }
}


@dataclass
class Federation:
    """The bot's homeserver and a second council's, with an admin on each."""

    home: EmbeddedSynapse
    away: EmbeddedSynapse
    home_admin: RegisteredUser
    away_admin: RegisteredUser

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """``away`` is down inside the block and up again after it, whatever happens."""
        await self.away.stop()
        try:
            yield
        finally:
            await self.away.start()
            await self.reachable()

    async def reachable(self, timeout: float = 60.0) -> None:
        """Until ``home`` reaches ``away`` over federation again (its back-off has lapsed)."""
        path = f"/_matrix/client/v3/profile/{quote(self.away_admin.user_id, safe='')}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.home.request("GET", path, token=self.home_admin.access_token)
                return
            except HomeserverError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    ca = LoopbackCA(root / "ca")
    await asyncio.to_thread(ca.ensure)
    servers = [
        EmbeddedSynapse(root / name, federation=True, ca=ca, extra_config=FAST_RETRIES)
        for name in ("home", "away")
    ]
    await asyncio.gather(*(server.start() for server in servers))
    try:
        admins = [await server.register("admin", admin=True) for server in servers]
        yield Federation(servers[0], servers[1], admins[0], admins[1])
    finally:
        await asyncio.gather(*(server.stop() for server in servers))


PeopleOn = Callable[..., Awaitable[Person]]


@pytest.fixture
async def people_on(tmp_path: Path) -> AsyncIterator[PeopleOn]:
    """``await people_on(server, "Ann")``: a new user there (no encryption unless asked)."""
    made: list[Person] = []

    async def make(server: EmbeddedSynapse, name: str, *, e2e: bool = False) -> Person:
        store_root = tmp_path / "nio-stores" if e2e else None
        person = await new_person(server, name, store_root=store_root)
        made.append(person)
        return person

    yield make
    for person in made:
        await person.close()


FederatedBotFactory = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def federated_bot_factory(
    federation: Federation, tmp_path: Path, bot_databases: BotDatabases,
) -> AsyncIterator[FederatedBotFactory]:
    """A bot on ``home`` that accepts invites from ``away`` too (its own server always)."""
    bots = Bots(federation.home, federation.home_admin, tmp_path / "federated", bot_databases)

    async def make(clock: ManualClock | None = None, **sections: dict[str, Any]) -> RunningBot:
        matrix = {"autojoin_servers": [federation.away.server_name], "encryption": False}
        sections["matrix"] = {**matrix, **sections.get("matrix", {})}
        sections.setdefault("bot", {}).setdefault("commands_per_minute", 1000)
        return await bots.start(clock=clock, **sections)

    yield make
    await bots.stop()
