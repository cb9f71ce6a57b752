"""One funding notice to N subscribed rooms through Grapevine (plan, outbox, worker), side by
side with the same N bare matrix-nio sends (the floor), on the same embedded Synapse.

    .venv/bin/python -m bench.funding_broadcast [--rooms 500] [--rounds 3]

Rounds alternate bare and Grapevine so neither gets a warmer server; the ratio is of medians.
Grapevine's time runs from the approving transaction (targeting and queueing every room's
copy) until the outbox worker has recorded the last send. Notices are the bot's own posts,
which production paces (``--post-gap``); by default the bench does not, to measure the
worker's cost beside the floor rather than the pace chosen for the homeserver's sake.
The bot's clock starts at a fixed instant (``--at``), never at today's wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import nio

from bench.harness import stage
from bot.app import Grapevine
from bot.features.funding_delivery import publish
from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.runtime import login
from bot.runtime.outbox_worker import POST_GAP, OutboxWorker
from bot.service import assemble
from bot.transport.matrix import MatrixTransport
from storage import funding, outbox
from storage.engine import Database
from storage.migrate import upgrade

# The bot's clock starts here, whatever the day the bench runs: noon, so notices never
# wait out the night, on a day with nothing special about it.
START = datetime(2026, 11, 20, 12, tzinfo=UTC)


class Midday:
    """Real elapsed time from a fixed instant (``start``); each round moves on a day, so no
    room reaches its three-posts-a-day cap. Reads the monotonic clock, never the wall."""

    def __init__(self, start: datetime = START) -> None:
        self.start = start
        self.t0 = time.monotonic()
        self.day = 0

    def now(self) -> datetime:
        return self.start + timedelta(days=self.day, seconds=time.monotonic() - self.t0)


async def make_rooms(hs: EmbeddedSynapse, bot: RegisteredUser, count: int) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with gate:
            data = await hs.request("POST", "/_matrix/client/v3/createRoom", token=bot.access_token,
                                    body={"name": f"Group {i}", "preset": "private_chat"})
            return str(data["room_id"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def bare_round(client: nio.AsyncClient, rooms: list[str], body: str) -> float:
    started = time.perf_counter()
    for room in rooms:
        response = await client.room_send(room, "m.room.message",
                                          {"msgtype": "m.text", "body": body})
        assert isinstance(response, nio.RoomSendResponse), response
    return time.perf_counter() - started


async def grapevine_round(app: Grapevine, worker: OutboxWorker, n: int) -> tuple[float, float]:
    now = app.clock.now()
    started = time.perf_counter()
    async with app.db.transaction() as session:
        notice = await funding.add_notice(
            session, title=f"Warm Spaces Fund {n}", funder="Fens Community Foundation",
            award_min=500, award_max=5000, closes_at=now + timedelta(days=30), areas=[],
            themes=["food"], applicant_types=[], sizes=[], url="https://example.org/warm",
            source="chat", status=funding.HELD, created_at=now,
        )
        await publish(app, session, notice, now, "@bench:localhost")
    queued = time.perf_counter() - started
    while await worker.drain():
        pass
    async with app.db.transaction() as session:
        assert await outbox.pending_count(session) == 0
    return queued, time.perf_counter() - started


async def main(count: int, rounds: int, at: datetime, post_gap: float) -> None:
    async with stage() as on:
        hs, bot, password = on.synapse, on.bot, on.bot_password
        made = time.perf_counter()
        rooms = await make_rooms(hs, bot, count)
        print(f"{count} rooms made in {time.perf_counter() - made:.1f} s")

        settings = on.settings()
        settings.bot.data_dir.mkdir(parents=True)
        db = Database(settings.database_url)
        await upgrade(db.engine)
        client = await login.connect(settings, db)
        transport = MatrixTransport(client, db)
        clock = Midday(at)
        app = assemble(settings, db, transport, clock=clock)
        worker = OutboxWorker(db, transport, clock, batch=100, post_gap=post_gap)
        async with db.transaction() as session:
            for room in rooms:
                await funding.subscribe(session, room, areas=[], themes=[], sizes=[],
                                        digest="instant", reminders=True,
                                        created_by=bot.user_id, created_at=app.clock.now())
        bare_user = await hs.login(bot.user_id, password)
        bare = nio.AsyncClient(hs.base_url, bot.user_id, device_id=bare_user.device_id)
        bare.restore_login(bot.user_id, bare_user.device_id, bare_user.access_token)
        body = ("Funding F1: Warm Spaces Fund (Fens Community Foundation)\n"
                "£500-£5,000 · closes Fri 18 Dec 2026\nFor: all of Cambridgeshire · food\n"
                "https://example.org/warm")
        bare_times, gv_times, queue_times = [], [], []
        try:
            for n in range(rounds):
                bare_times.append(await bare_round(bare, rooms, body))
                clock.day += 1
                queued, total = await grapevine_round(app, worker, n)
                queue_times.append(queued)
                gv_times.append(total)
                print(f"round {n + 1}: bare {bare_times[-1]:.2f} s, grapevine {total:.2f} s "
                      f"(targeting and queueing {queued:.2f} s)")
        finally:
            await bare.close()
            await client.close()
            await db.close()
        bare_median, gv_median = statistics.median(bare_times), statistics.median(gv_times)
        print(f"median: bare {bare_median:.2f} s ({count / bare_median:.0f} sends/s), "
              f"grapevine {gv_median:.2f} s ({count / gv_median:.0f} rooms/s), "
              f"ratio {gv_median / bare_median:.2f} (target <= 1.2); "
              f"queueing {statistics.median(queue_times):.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--at", type=datetime.fromisoformat, default=START,
                        help="the bot's clock at the start (ISO, with a zone)")
    parser.add_argument("--post-gap", type=float, default=0.0,
                        help="seconds between the bot's own posts (production: "
                             f"{POST_GAP}; 0 measures the worker's own cost)")
    args = parser.parse_args()
    asyncio.run(main(args.rooms, args.rounds, args.at, args.post_gap))
