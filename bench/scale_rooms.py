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
  one message a second each, beside the peer: a bare matrix-nio echo bot in the
  same 20 rooms, asked ``!echo`` in the same rounds, so the busy figure separates
  the bot from Synapse (the chat rate achieved and each side's CPU are printed);
- HTTP requests the bot made in each phase, by kind.

    .venv/bin/python -m bench.scale_rooms --rooms 10 1000 [--profile DIR]
        [--first-start-only] [--code OTHER_TREE]

``--profile DIR`` runs the bot under cProfile; the last process (idle and busy
rounds) writes ``DIR/bot-N.prof`` when it stops.

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
from bench.latency import EchoBot
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

    async def ask(self, room: str, bot: str, text: str = "!about") -> float:
        """Seconds from sending ``text`` to seeing the answer."""
        await self.catch_up()
        started = time.monotonic()
        await self.client.send(room, text)
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
    profile: Path | None = None  # cProfile output, written when the process stops

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
            profiling = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
            self.proc = subprocess.Popen(
                [sys.executable, *profiling, "-m", "bot.cli", "run", "-c", str(config)],
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
        return cpu_seconds(self.proc.pid)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
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
        self.creators: dict[str, str] = {}  # each group room's creator (who chats there)
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
                self.creators[room] = creator

        await asyncio.gather(*(worker() for _ in range(CREATE_AT_ONCE)))
        return time.monotonic() - started

    async def add_peer(self, person: Person, rooms: list[str], admin_token: str
                       ) -> tuple[str, EchoBot]:
        """The peer: a bare nio echo bot in ``rooms`` (so its syncs carry the same chat)
        and in a room of its own with the person; returns that room and the bot."""
        assert self.http is not None
        user = await self.synapse.register("echo")
        await self.synapse.override_ratelimit(user.user_id, admin_token)
        echo = EchoBot(user, self.synapse.base_url)
        await echo.start()
        created = await person.client.call("POST", "/_matrix/client/v3/createRoom",
                                           {"name": "Echo desk", "invite": [user.user_id]})
        ghost = Client(self.synapse.base_url, self.appservice.as_token, self.http)
        for room in rooms:
            await ghost.call("POST", f"/_matrix/client/v3/rooms/{quote(room, safe='')}/invite",
                             {"user_id": user.user_id}, as_user=self.creators[room])
        while await self.joined_count(user.user_id, admin_token) < len(rooms) + 1:
            await asyncio.sleep(1)
        return str(created["room_id"]), echo

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


async def chatter(ghost: Client, speakers: dict[str, str], stop: asyncio.Event) -> int:
    """One message a second in each room of ``speakers`` (room: who speaks there, a
    member) until ``stop``; returns how many were sent. Each room keeps its own
    second: one that falls behind sends at once, never a burst to catch up."""
    sent = 0

    async def room_talks(room: str, who: str) -> None:
        nonlocal sent
        while not stop.is_set():
            tick = time.monotonic()
            await ghost.send(room, f"chat {sent}", as_user=who)  # a failure ends the bench
            sent += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    await asyncio.gather(*(room_talks(room, who) for room, who in speakers.items()))
    return sent


async def measure(n: int, root: Path, profile: Path | None = None,
                  first_start_only: bool = False, code: Path = REPO) -> dict[str, Any]:
    world = World(root / f"n{n}", n)
    bot_user, person, ghost = await world.start()
    admin = await world.synapse.register("admin", admin=True)
    results: dict[str, Any] = Shown({"N": n})
    proxy = CountingProxy(world.synapse.base_url)
    await proxy.start()
    run = BotRun(root / f"n{n}" / "bot", proxy, bot_user, person.user_id,
                 profile=profile / f"bot-{n}.prof" if profile else None, repo=code)
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
            f"{max(during):.2f} of {len(during)} (median {statistics.median(during):.2f})")
        # The greetings go out paced (5 a second): the idle and busy rounds below must
        # not share Synapse with a thousand of them still being sent.
        while True:
            before = proxy.counts["send"]
            await asyncio.sleep(5)
            if proxy.counts["send"] == before:
                break
        results["first start: greetings all sent (s)"] = (
            f"{time.monotonic() - started - 5:.0f} [{load()}]")
        results["requests: first start"] = dict(proxy.reset())
        if first_start_only:
            return results

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

        # -- idle and busy, beside the peer (a bare nio echo bot in the same chatty rooms) --
        chatty = world.rooms[:CHATTY_ROOMS]
        echo_desk, echo = await world.add_peer(person, chatty, admin.access_token)
        await asyncio.sleep(10)
        rss, peak = run.memory()
        results["RSS idle / peak (MiB)"] = f"{rss:.0f} / {peak:.0f}"
        results["bot CPU so far (s)"] = f"{run.cpu_seconds():.1f}"
        synapse_pid = world.synapse.pid
        assert synapse_pid is not None

        async def rounds() -> tuple[list[float], list[float]]:
            ours, peers = [], []
            for _ in range(ROUNDS):
                ours.append(await person.ask(world.help_room, bot))
                peers.append(await person.ask(echo_desk, echo.client.user_id, "!echo"))
            return ours, peers

        proxy.reset()
        idle, idle_peer = await rounds()
        results["!about idle p50/p95 (ms)"] = f"{spread(idle)} [{load()}]"
        results["peer !echo idle p50/p95 (ms)"] = spread(idle_peer)
        results["requests: idle rounds"] = dict(proxy.reset())
        stop = asyncio.Event()
        talk = asyncio.create_task(
            chatter(ghost, {room: world.creators[room] for room in chatty}, stop))
        await asyncio.sleep(3)
        began, bot_cpu, synapse_cpu = time.monotonic(), run.cpu_seconds(), cpu_seconds(synapse_pid)
        busy, busy_peer = await rounds()
        took = time.monotonic() - began
        bot_cpu, synapse_cpu = run.cpu_seconds() - bot_cpu, cpu_seconds(synapse_pid) - synapse_cpu
        stop.set()
        chatted = await talk
        await echo.stop()
        results["!about busy p50/p95 (ms)"] = f"{spread(busy)} [{load()}]"
        results["peer !echo busy p50/p95 (ms)"] = spread(busy_peer)
        results["busy p95 / idle p95: bot, peer"] = (
            f"{percentile(busy, 0.95) / percentile(idle, 0.95):.2f}, "
            f"{percentile(busy_peer, 0.95) / percentile(idle_peer, 0.95):.2f}")
        requests = proxy.reset()
        results["requests: busy rounds"] = dict(requests)
        results["chat while busy"] = (
            f"{chatted} messages, {chatted / (took + 3):.1f}/s ({len(chatty)}/s asked)")
        results["CPU in the busy rounds: bot, Synapse (s)"] = (
            f"{bot_cpu:.1f}, {synapse_cpu:.1f} of {took:.0f} s")
        run.signal(signal.SIGTERM)
    finally:
        if run.proc is not None:
            run.proc.kill()
            run.proc.wait()
        await proxy.stop()
        await world.stop()
    return results


class Shown(dict[str, Any]):
    """The results, each printed as soon as it is measured: a long run shows what it
    has so far (and a run cut short keeps it in its output)."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        text = show(value) if isinstance(value, dict) else str(value)
        print(f"  [N={self['N']}, {time.strftime('%H:%M:%S')} UTC] {key}: {text}", flush=True)


def spread(seconds: list[float]) -> str:
    """p50 / p95 in milliseconds."""
    return f"{1000 * statistics.median(seconds):.0f} / {1000 * percentile(seconds, 0.95):.0f}"


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


async def main(sizes: list[int], keep: Path | None, profile: Path | None,
               first_start_only: bool = False, code: Path = REPO) -> None:
    table = []
    with tempfile.TemporaryDirectory() as scratch:
        root = keep or Path(scratch)
        for n in sizes:
            table.append(await measure(n, root, profile, first_start_only, code))
            if n != sizes[-1]:
                print_table(table[-1:])  # each size as soon as it is measured
    print_table(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--keep", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile, output here")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the tree whose bot to run (another version, to compare)")
    parser.add_argument("--first-start-only", action="store_true",
                        help="stop each N after the first start (joins, answers, greetings)")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args.rooms, args.keep, args.profile, args.first_start_only,
                     args.code.resolve()))
