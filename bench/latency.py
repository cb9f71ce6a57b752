"""Command reply latency, Grapevine against a bare matrix-nio echo bot (the floor),
through the same Synapse in one run; then the event intake rate from a busy room.

    .venv/bin/python -m bench.latency [--rounds 100] [--flood 2000] [--person-beside-bots]

The person asking runs in a process of their own, as a person's client does: on the bots'
event loop, parsing each of their own syncs (nio validates every response) held up
whichever bot was answering at that moment. ``--person-beside-bots`` puts them back
there, as the runs before 2026-12-04 did.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import nio
from sqlalchemy import func, select

from bench.harness import importable, percentile, ratio_interval, stage, start
from bot.homeserver import RegisteredUser
from bot.service import Service
from storage.flow import FlowEvent


class EchoBot:
    """The floor: sync, and answer every `!echo` with one m.text, nothing else."""

    def __init__(self, user: RegisteredUser, homeserver: str) -> None:
        self.client = nio.AsyncClient(homeserver, user.user_id, device_id=user.device_id)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        first = await self.client.sync(timeout=0)
        assert isinstance(first, nio.SyncResponse)

        async def on_message(room: nio.MatrixRoom, event: nio.RoomMessageText) -> None:
            if event.body.startswith("!echo") and event.sender != self.client.user_id:
                await self.client.room_send(room.room_id, "m.room.message",
                                            {"msgtype": "m.text", "body": event.body[1:]})

        async def on_invite(room: nio.MatrixRoom, event: nio.InviteMemberEvent) -> None:
            await self.client.join(room.room_id)

        self.client.add_event_callback(on_message, nio.RoomMessageText)
        self.client.add_event_callback(on_invite, nio.InviteMemberEvent)
        self.task = asyncio.create_task(
            self.client.sync_forever(timeout=30000, since=first.next_batch)
        )

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.client.close()


class Person:
    def __init__(self, user: RegisteredUser, homeserver: str) -> None:
        self.client = nio.AsyncClient(homeserver, user.user_id, device_id=user.device_id)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.token: str | None = None

    async def sync(self, timeout: int = 0) -> list[tuple[str, dict]]:
        response = await self.client.sync(timeout=timeout, since=self.token)
        assert isinstance(response, nio.SyncResponse), response
        self.token = response.next_batch
        return [(rid, e.source) for rid, info in response.rooms.join.items()
                for e in info.timeline.events]

    async def room_with(self, bot: str, name: str) -> str:
        created = await self.client.room_create(name=name, invite=[bot])
        assert isinstance(created, nio.RoomCreateResponse), created
        room: str = created.room_id
        for _ in range(200):
            events = await self.sync(timeout=500)
            if any(r == room and e.get("sender") == bot and e.get("type") == "m.room.member"
                   for r, e in events):
                break
        await self.drain(room, bot, 1.0)
        return room

    async def drain(self, room: str, sender: str, quiet: float) -> None:
        deadline = time.monotonic() + quiet
        while time.monotonic() < deadline:
            await self.sync(timeout=200)

    async def ask(self, room: str, bot: str, text: str) -> float:
        """Seconds from sending to seeing the bot's reply."""
        started = time.perf_counter()
        sent = await self.client.room_send(room, "m.room.message",
                                           {"msgtype": "m.text", "body": text})
        assert isinstance(sent, nio.RoomSendResponse), sent
        while True:
            for rid, event in await self.sync(timeout=10000):
                if rid == room and event.get("sender") == bot and event["type"] == "m.room.message":
                    return time.perf_counter() - started


async def ask_rounds(person: Person, rounds: int, echo: tuple[str, str],
                     bot: tuple[str, str]) -> tuple[list[float], list[float]]:
    """``rounds`` times: ``!echo`` to the echo bot, then ``!about`` to Grapevine
    (interleaved, so drift on the machine hits both alike). Each is (room, bot's id)."""
    floor: list[float] = []
    ours: list[float] = []
    for i in range(rounds):
        floor.append(await person.ask(echo[0], echo[1], f"!echo {i}"))
        ours.append(await person.ask(bot[0], bot[1], "!about"))
    return floor, ours


def ask_from_own_process(user: RegisteredUser, homeserver: str, rounds: int,
                         echo: tuple[str, str], bot: tuple[str, str],
                         ) -> tuple[list[float], list[float]]:
    """:func:`ask_rounds` from a fresh client in this (child) process."""

    async def run() -> tuple[list[float], list[float]]:
        person = Person(user, homeserver)
        try:
            await person.sync()
            return await ask_rounds(person, rounds, echo, bot)
        finally:
            await person.client.close()

    return asyncio.run(run())


async def flow_records(service: Service) -> int:
    """Message-flow records written (intake batches them; never text)."""
    assert service.app is not None
    async with service.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(FlowEvent)) or 0)


async def main(rounds: int, flood: int, *, person_beside_bots: bool = False) -> None:
    async with stage("echo", "person") as on:
        synapse = on.synapse
        bot_user, echo_user, person_user = on.bot, on.people["echo"], on.people["person"]
        settings = on.settings()
        service = await start(settings)
        echo = EchoBot(echo_user, synapse.base_url)
        await echo.start()
        person = Person(person_user, synapse.base_url)
        await person.sync()
        echo_room = await person.room_with(echo_user.user_id, "echo")
        bot_room = await person.room_with(bot_user.user_id, "grapevine")
        echo_at, bot_at = (echo_room, echo_user.user_id), (bot_room, bot_user.user_id)
        if person_beside_bots:
            floor, ours = await ask_rounds(person, rounds, echo_at, bot_at)
        else:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                floor, ours = await asyncio.get_running_loop().run_in_executor(
                    pool, importable(ask_from_own_process), person_user, synapse.base_url, rounds,
                    echo_at, bot_at)
        await echo.stop()
        rows = [
            ("bare matrix-nio echo bot", floor),
            ("Grapevine (!about)", ours),
        ]
        where = "on the bots' event loop" if person_beside_bots else "in a process of its own"
        print(f"Reply latency through one Synapse, {rounds} interleaved rounds "
              f"(the person's client {where}):")
        for name, values in rows:
            print(f"  {name:28} p50 {1000 * statistics.median(values):6.1f} ms"
                  f"   p95 {1000 * percentile(values, 0.95):6.1f} ms")
        low, high = ratio_interval(ours, floor, 0.95)
        print(f"  ratio p50 {statistics.median(ours) / statistics.median(floor):.2f}"
              f"   p95 {percentile(ours, 0.95) / percentile(floor, 0.95):.2f}"
              f" (90% of resampled runs {low:.2f}-{high:.2f})")

        # Intake: the bot is away while a busy room fills up, then catches up.
        before = await flow_records(service)
        await service.stop()
        busy = bot_room
        for i in range(flood):
            await person.client.room_send(busy, "m.room.message",
                                          {"msgtype": "m.text", "body": f"chatter {i}"})
        service = Service(settings)
        started = time.perf_counter()
        await service.start()
        while await flow_records(service) < before + flood:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        print(f"Intake: {flood} messages from a busy room caught up after a restart in "
              f"{elapsed:.2f} s ({flood / elapsed:.0f} events/s, start-up and the "
              "gap fill from /messages included)")
        await service.stop()
        await person.client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--flood", type=int, default=2000)
    parser.add_argument("--person-beside-bots", action="store_true",
                        help="the person's client on the bots' event loop (the old runs)")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.flood, person_beside_bots=args.person_beside_bots))
