"""The bot in many rooms: start-up, restart, crash, memory and answers, at N=10 beside N=big.

For each N (a fresh embedded Synapse each time) it makes N group rooms (a ghost
creator, a second member, two messages of history) that invite the bot, plus a
help-desk room where a person asks, then runs ``grapevine run`` as production
does, in a subprocess, through a counting proxy:

- first start: until every invite is joined, and until the person's ``!about``
  is answered (asked as soon as the bot is in the help desk, again every few
  seconds while it is still joining: the slowest such answer is reported);
- restart (SIGTERM) and crash (SIGKILL): from starting the process again to the
  answer to an ``!about`` sent while it was down;
- RSS of the bot once idle; ``!about`` p50/p95 idle, and while 20 rooms chat at
  one message a second each;
- HTTP requests the bot made in each phase, by kind.

    .venv/bin/python -m bench.scale_rooms --rooms 10 1000

Prints one table with a column per N; the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.harness import load, percentile
from bench.httpcount import CountingProxy
from bot.homeserver import AppService, EmbeddedSynapse, RegisteredUser, free_port

REPO = Path(__file__).resolve().parents[1]
GHOSTS = 40
CREATE_AT_ONCE = 4
CHATTY_ROOMS = 20
ROUNDS = 30
ANSWER_WAIT = 600.0


class Client:
    """Raw client-API calls with one token (and, for an appservice, a user to act as)."""

    def __init__(self, base_url: str, token: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.token = token
        self.http = http
        self._txn = 0

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   as_user: str | None = None) -> dict[str, Any]:
        if as_user is not None:
            path += ("&" if "?" in path else "?") + f"user_id={quote(as_user, safe='')}"
        for _ in range(20):
            async with self.http.request(
                method, self.base_url + path, json=body if body is not None else None,
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response:
                data = await response.json(content_type=None)
                if response.status == 429:
                    await asyncio.sleep((data.get("retry_after_ms") or 500) / 1000)
                    continue
                if response.status >= 300:
                    raise RuntimeError(f"{method} {path}: {response.status} {data}")
                return data if isinstance(data, dict) else {}
        raise RuntimeError(f"{method} {path}: rate-limited too long")

    async def send(self, room: str, body: str, as_user: str | None = None) -> str:
        self._txn += 1
        path = (f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message/"
                f"b{uuid.uuid4().hex[:8]}{self._txn}")
        data = await self.call("PUT", path, {"msgtype": "m.text", "body": body}, as_user)
        return str(data["event_id"])


class Person:
    """The one human: sends ``!about`` and waits for the bot's answer, by its own sync."""

    def __init__(self, client: Client, user_id: str) -> None:
        self.client = client
        self.user_id = user_id
        self.since: str | None = None

    async def events(self, timeout_ms: int) -> list[tuple[str, dict[str, Any]]]:
        query = f"?timeout={timeout_ms}" + (f"&since={self.since}" if self.since else "")
        data = await self.client.call("GET", "/_matrix/client/v3/sync" + query)
        self.since = data["next_batch"]
        rooms = data.get("rooms", {}).get("join", {})
        return [(room_id, event) for room_id, info in rooms.items()
                for event in info.get("timeline", {}).get("events", [])]

    async def catch_up(self) -> None:
        await self.events(0)

    async def wait_for(self, room: str, sender: str, *, kind: str = "m.room.message",
                       timeout: float = ANSWER_WAIT) -> float:
        """Until an event of ``kind`` from ``sender`` arrives in ``room``; returns when."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for room_id, event in await self.events(2000):
                if room_id == room and event.get("sender") == sender and event["type"] == kind:
                    return time.monotonic()
        raise TimeoutError(f"nothing from {sender} in {room} in {timeout:.0f} s")

    async def ask(self, room: str, bot: str) -> float:
        """Seconds from sending ``!about`` to seeing the answer."""
        await self.catch_up()
        started = time.monotonic()
        await self.client.send(room, "!about")
        return await self.wait_for(room, bot) - started


@dataclass
class BotRun:
    """``grapevine run`` in a subprocess, talking to Synapse through the proxy."""

    root: Path
    proxy: CountingProxy
    user: RegisteredUser
    admin: str
    proc: subprocess.Popen[bytes] | None = None
    web_port: int = field(default_factory=free_port)
    repo: Path = REPO  # the code to run (another tree, to compare versions)

    def config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "grapevine.toml"
        path.write_text(
            f'[bot]\ndata_dir = "{self.root}"\ncommands_per_minute = 100000\n'
            f'[matrix]\nhomeserver = "{self.proxy.url}"\nuser_id = "{self.user.user_id}"\n'
            "encryption = false\n"
            f'[roles]\nadmins = ["{self.admin}"]\n'
            f'[web]\nlisten = "127.0.0.1:{self.web_port}"\n'
        )
        return path

    def start(self) -> None:
        env = dict(os.environ, GRAPEVINE_MATRIX__PASSWORD=self.user.password,
                   GRAPEVINE_PRIVACY__PSEUDONYM_SECRET="bench")
        config = self.config()
        with (self.root / "bot.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run", "-c", str(config)],
                cwd=self.repo, env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(60)
        self.proc = None

    def memory(self) -> tuple[float, float]:
        """(RSS, peak RSS) in MiB."""
        assert self.proc is not None
        values = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class World:
    """One fresh Synapse with N group rooms inviting the bot, a person and ghosts."""

    def __init__(self, root: Path, rooms: int) -> None:
        self.root = root
        self.n = rooms
        self.synapse = EmbeddedSynapse(root / "synapse")
        self.appservice: AppService = self.synapse.add_appservice(
            "bench", sender_localpart="benchbot", user_prefix="bench_")
        self.ghosts = [self.synapse.user_id(f"bench_{i}") for i in range(GHOSTS)]
        self.rooms: list[str] = []
        self.help_room = ""
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> tuple[RegisteredUser, Person, Client]:
        await self.synapse.start()
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        admin = await self.synapse.register("admin", admin=True)
        bot = await self.synapse.register("grapevine", uuid.uuid4().hex, admin=True)
        person_user = await self.synapse.register("person")
        for user in (bot, person_user):
            await self.synapse.override_ratelimit(user.user_id, admin.access_token)
        ghost = Client(self.synapse.base_url, self.appservice.as_token, self.http)
        for user_id in self.ghosts:
            localpart = user_id[1:].split(":", 1)[0]
            with contextlib.suppress(RuntimeError):
                await ghost.call("POST", "/_matrix/client/v3/register",
                                 {"type": "m.login.application_service", "username": localpart})
        person = Person(Client(self.synapse.base_url, person_user.access_token, self.http),
                        person_user.user_id)
        return bot, person, ghost

    async def make_rooms(self, bot: str, person: Person, ghost: Client) -> float:
        """The help desk first, then N group rooms, all inviting the bot; returns seconds."""
        started = time.monotonic()
        created = await person.client.call("POST", "/_matrix/client/v3/createRoom",
                                           {"name": "Help desk", "invite": [bot]})
        self.help_room = created["room_id"]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(self.n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                creator, member = self.ghosts[i % GHOSTS], self.ghosts[(i + 1) % GHOSTS]
                made = await ghost.call("POST", "/_matrix/client/v3/createRoom", {
                    "name": f"Group {i}", "preset": "public_chat", "invite": [bot],
                }, as_user=creator)
                room = made["room_id"]
                await ghost.call("POST", f"/_matrix/client/v3/join/{quote(room, safe='')}",
                                 {}, as_user=member)
                await ghost.send(room, f"Welcome to group {i}", as_user=creator)
                await ghost.send(room, "Thanks, glad to be here", as_user=member)
                self.rooms.append(room)

        await asyncio.gather(*(worker() for _ in range(CREATE_AT_ONCE)))
        return time.monotonic() - started

    async def joined_count(self, bot: str, admin_token: str) -> int:
        assert self.http is not None
        client = Client(self.synapse.base_url, admin_token, self.http)
        data = await client.call(
            "GET", f"/_synapse/admin/v1/users/{quote(bot, safe='')}/joined_rooms")
        return int(data.get("total", len(data.get("joined_rooms", []))))

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.synapse.stop()


async def chatter(ghost: Client, rooms: list[str], ghosts: list[str], stop: asyncio.Event
                  ) -> int:
    """One message a second in each of ``rooms`` until ``stop``; returns how many."""
    sent = 0

    async def room_talks(room: str, who: str) -> None:
        nonlocal sent
        while not stop.is_set():
            tick = time.monotonic()
            with contextlib.suppress(RuntimeError, aiohttp.ClientError):
                await ghost.send(room, f"chat {sent}", as_user=who)
                sent += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    await asyncio.gather(*(room_talks(r, ghosts[i % len(ghosts)]) for i, r in enumerate(rooms)))
    return sent


async def measure(n: int, root: Path) -> dict[str, Any]:
    world = World(root / f"n{n}", n)
    bot_user, person, ghost = await world.start()
    admin = await world.synapse.register("admin", admin=True)
    results: dict[str, Any] = {"N": n}
    proxy = CountingProxy(world.synapse.base_url)
    await proxy.start()
    run = BotRun(root / f"n{n}" / "bot", proxy, bot_user, person.user_id)
    bot = bot_user.user_id
    try:
        results["rooms made (s)"] = f"{await world.make_rooms(bot, person, ghost):.0f}"
        total = n + 1
        await person.catch_up()

        # -- first start: N + 1 invites waiting -----------------------------------------
        proxy.reset()
        started = time.monotonic()
        run.start()
        await person.wait_for(world.help_room, bot, kind="m.room.member")
        first = await person.ask(world.help_room, bot)
        answered_at = time.monotonic() - started
        during = [first]
        while await world.joined_count(bot, admin.access_token) < total:
            during.append(await person.ask(world.help_room, bot))
            await asyncio.sleep(2)
        all_joined = time.monotonic() - started
        results["first start: all joined (s)"] = f"{all_joined:.1f} [{load()}]"
        results["first start: first answer (s)"] = f"{answered_at:.1f}"
        results["first start: slowest answer while joining (s)"] = (
            f"{max(during):.2f} of {len(during)}")
        await asyncio.sleep(5)  # greetings and the last syncs settle
        results["requests: first start"] = dict(proxy.reset())

        # -- restart and crash ------------------------------------------------------------
        for label, sig in (("restart (SIGTERM)", signal.SIGTERM), ("crash (SIGKILL)",
                                                                   signal.SIGKILL)):
            await asyncio.sleep(3)
            run.signal(sig)
            await person.catch_up()
            await person.client.send(world.help_room, "!about")
            proxy.reset()
            started = time.monotonic()
            run.start()
            answered = await person.wait_for(world.help_room, bot) - started
            results[f"{label} to first answer (s)"] = f"{answered:.2f} [{load()}]"
            results[f"requests: {label}"] = dict(proxy.reset())
            await asyncio.sleep(3)

        # -- idle and busy ---------------------------------------------------------------
        await asyncio.sleep(10)
        rss, peak = run.memory()
        results["RSS idle / peak (MiB)"] = f"{rss:.0f} / {peak:.0f}"
        results["bot CPU so far (s)"] = f"{run.cpu_seconds():.1f}"
        proxy.reset()
        idle = [await person.ask(world.help_room, bot) for _ in range(ROUNDS)]
        results["!about idle p50/p95 (ms)"] = (
            f"{1000 * statistics.median(idle):.0f} / {1000 * percentile(idle, 0.95):.0f}"
            f" [{load()}]")
        results["requests: idle rounds"] = dict(proxy.reset())
        stop = asyncio.Event()
        talk = asyncio.create_task(
            chatter(ghost, world.rooms[:CHATTY_ROOMS], world.ghosts, stop))
        await asyncio.sleep(3)
        busy = [await person.ask(world.help_room, bot) for _ in range(ROUNDS)]
        stop.set()
        chatted = await talk
        results["!about busy p50/p95 (ms)"] = (
            f"{1000 * statistics.median(busy):.0f} / {1000 * percentile(busy, 0.95):.0f}"
            f" [{load()}]")
        results["busy p95 / idle p95"] = f"{percentile(busy, 0.95) / percentile(idle, 0.95):.2f}"
        requests = proxy.reset()
        results["requests: busy rounds"] = dict(requests)
        results["chat messages while busy"] = chatted
        run.signal(signal.SIGTERM)
    finally:
        if run.proc is not None:
            run.proc.kill()
            run.proc.wait()
        await proxy.stop()
        await world.stop()
    return results


def show(requests: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(requests.items(), key=lambda kv: -kv[1]))


def print_table(table: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for row in table for k in row))
    print(f"Grapevine in many rooms ({', '.join(str(row['N']) for row in table)}); "
          f"[load average 1/5/15 min at that moment]", flush=True)
    for key in keys:
        print(f"  {key}")
        for row in table:
            value = row.get(key, "")
            text = show(value) if isinstance(value, dict) else str(value)
            print(f"      N={row['N']:<5} {text}", flush=True)


async def main(sizes: list[int], keep: Path | None) -> None:
    table = []
    with tempfile.TemporaryDirectory() as scratch:
        root = keep or Path(scratch)
        for n in sizes:
            table.append(await measure(n, root))
            if n != sizes[-1]:
                print_table(table[-1:])  # each size as soon as it is measured
    print_table(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--keep", type=Path, help="keep the data here (default: a temp dir)")
    args = parser.parse_args()
    asyncio.run(main(args.rooms, args.keep))
