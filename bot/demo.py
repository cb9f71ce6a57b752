"""``grapevine demo``: the whole thing on one machine, with nothing installed but the project.

An embedded Synapse on loopback (SQLite, in the data directory), the bot, and
demo people who act out a scenario, each step printed as it happens. Then the
homeserver stays up and you can log in with any Matrix client, or with
``--once`` everything stops. Re-running reuses the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nio

from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.service import Service
from config.settings import load_settings


class DemoPerson:
    """A demo human with a plain matrix-nio client."""

    def __init__(self, user: RegisteredUser, homeserver: str, display: str) -> None:
        self.user = user
        self.display = display
        self.client = nio.AsyncClient(homeserver, user.user_id, device_id=user.device_id)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._token: str | None = None

    @property
    def user_id(self) -> str:
        return self.user.user_id

    async def sync(self, timeout_ms: int = 0) -> None:
        response = await self.client.sync(timeout=timeout_ms, since=self._token)
        if isinstance(response, nio.SyncResponse):
            self._token = response.next_batch
            for room_id, info in response.rooms.join.items():
                for event in info.timeline.events:
                    self.seen.append((room_id, event.source))
            for room_id in response.rooms.invite:
                await self.client.join(room_id)

    async def create_room(self, name: str, invite: list[str]) -> str:
        response = await self.client.room_create(name=name, invite=invite)
        if not isinstance(response, nio.RoomCreateResponse):
            raise RuntimeError(f"{self.display} could not create a room: {response}")
        await self.sync()
        return str(response.room_id)

    async def say(self, room_id: str, text: str) -> None:
        await self.sync()
        response = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        if not isinstance(response, nio.RoomSendResponse):
            raise RuntimeError(f"{self.display} could not send: {response}")

    async def wait_for(self, room_id: str, sender: str, contains: str = "",
                       timeout: float = 30.0) -> str:
        """The next message from ``sender`` in the room (containing ``contains``)."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rid, event in self.seen[start:]:
                body = event.get("content", {}).get("body", "")
                if rid == room_id and event.get("sender") == sender and contains in body:
                    return str(body)
            await self.sync(timeout_ms=1000)
        raise TimeoutError(f"no message from {sender} containing {contains!r} in {timeout}s")

    async def close(self) -> None:
        await self.client.close()


@dataclass
class Scenario:
    synapse: EmbeddedSynapse
    service: Service
    bot_id: str
    people: dict[str, DemoPerson]
    rooms: dict[str, str] = field(default_factory=dict)

    def show(self, who: str, text: str) -> None:
        lines = text.splitlines() or [""]
        print(f"  {who:>10} | {lines[0]}")
        for line in lines[1:]:
            print(f"  {'':>10} | {line}")

    async def ask(self, person: str, room: str, text: str, contains: str = "") -> str:
        """``person`` says ``text`` in ``room``; prints it and the bot's answer."""
        someone = self.people[person]
        self.show(someone.display, text)
        await someone.say(self.rooms[room], text)
        answer = await someone.wait_for(self.rooms[room], self.bot_id, contains)
        self.show("Grapevine", answer)
        return answer


Step = Callable[[Scenario], Awaitable[None]]


async def step_group_room(s: Scenario) -> None:
    print("\nA food bank's organiser brings the bot into her group's chat:")
    alice = s.people["alice"]
    s.rooms["foodbank"] = await alice.create_room("Wisbech Food Bank", [s.bot_id])
    greeting = await alice.wait_for(s.rooms["foodbank"], s.bot_id, "never what anyone writes")
    s.show("Grapevine", greeting)
    await s.ask("alice", "foodbank", "!help")


# Each feature adds its part of the story here, in order.
STEPS: list[Step] = [step_group_room]

PEOPLE = {
    "admin": ("Ada Admin", True),
    "alice": ("Alice (Wisbech Food Bank)", False),
    "cora": ("Cora (county coordinator)", False),
}


def _secret(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def run_demo(data_dir: Path, *, once: bool = False) -> int:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Starting an embedded Synapse in {data_dir / 'synapse'} ...")
    synapse = EmbeddedSynapse(data_dir / "synapse")
    await synapse.start()
    people: dict[str, DemoPerson] = {}
    service: Service | None = None
    try:
        bot_password = _secret(data_dir / "bot-password")
        bot_user = await synapse.register("grapevine", bot_password, admin=True,
                                          displayname="Grapevine")
        users = {}
        for local, (display, admin) in PEOPLE.items():
            users[local] = await synapse.register(local, f"demo-{local}", admin=admin,
                                                  displayname=display)
        await synapse.override_ratelimit(bot_user.user_id, users["admin"].access_token)
        settings = load_settings(
            None,
            bot={"data_dir": str(data_dir / "bot")},
            matrix={"homeserver": synapse.base_url, "user_id": bot_user.user_id,
                    "password": bot_password, "encryption": True},
            roles={"admins": [users["admin"].user_id],
                   "coordinators": [users["cora"].user_id]},
            privacy={"pseudonym_secret": _secret(data_dir / "pseudonym-secret")},
            web={"listen": "127.0.0.1:0"},
        )
        service = Service(settings)
        await service.start()
        await service.wait_ready()
        print(f"Grapevine is running as {bot_user.user_id}.")
        for local, (display, _) in PEOPLE.items():
            people[local] = DemoPerson(users[local], synapse.base_url, display)
        scenario = Scenario(synapse, service, bot_user.user_id, people)
        for step in STEPS:
            await step(scenario)
        print("\nThe demo homeserver is up. Log in with any Matrix client (e.g. Element):")
        print(f"  homeserver: {synapse.base_url}")
        for local, (display, _) in PEOPLE.items():
            print(f"  {display}: user {local}, password demo-{local}")
        if not once:
            print("Press Ctrl-C to stop.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        return 0
    finally:
        for person in people.values():
            with contextlib.suppress(Exception):
                await person.close()
        if service is not None:
            await service.stop()
        await synapse.stop()
