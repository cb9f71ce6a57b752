"""A consultation put to N groups, side by side with a funding notice to the same N rooms
(the peer: the same targeting rule, voice check and batched outbox path), then the results of
N answers (counts, CSV and chart), in the in-process world (no homeserver: this measures the
bot's own work, not Synapse's).

    .venv/bin/python -m bench consult_poll [--groups 500] [--rounds 3]

Each round runs `!consult ask` and `!funding post` (a coordinator's, published at once) to
the same N groups' rooms, alternating which goes first, each timed from the command said to
its transaction committed with every room's copy queued (delivery, the same for both, is
done untimed and checked). The ratio is of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.features import consult_results as results
from bot.ratelimit import RateLimiter
from storage import consult, groups
from tests.botworld import BotWorld, bot_world
from tests.clocks import START

CORA = "@cora:grapevine.local"


async def setup(bw: BotWorld, n: int) -> tuple[str, list[str]]:
    bw.world.user("cora", "Cora")
    bw.world.user("ada", "Ada")
    bw.app.limiter = RateLimiter(10_000)
    rooms = []
    for i in range(n):
        room = bw.world.create_room("@ada:grapevine.local", name=f"Group {i}")
        await bw.world.join(bw.bot, room)
        rooms.append(room)
    office = bw.world.create_room(CORA, name="Office")
    await bw.world.join(bw.bot, office)
    await bw.deliver()
    async with bw.app.db.transaction() as session:
        for i, room in enumerate(rooms):
            session.add(groups.Group(room_id=room, name=f"Group {i}", type="charity",
                                     area_code="E04001668", themes=["food"], size="small",
                                     registered_by="@ada:grapevine.local", max_posts=1000,
                                     registered_at=bw.clock.now()))
    return office, rooms


async def timed(bw: BotWorld, office: str, text: str, expect: str) -> float:
    """The command's own work: parse, target, one transaction queueing every room's copy.

    Delivery into the world (one SQLite transaction per row, as the worker's bookkeeping)
    is the same for both and is left out of the time, then checked.
    """
    before = len(bw.world.messages(office, sender=bw.bot))
    started = time.perf_counter()
    await bw.world.say(CORA, office, text)
    took = time.perf_counter() - started
    await bw.deliver()
    replies = bw.world.messages(office, sender=bw.bot)[before:]
    assert any(r.startswith(expect) for r in replies), replies
    return took


async def run(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with bot_world(Path(tmp), roles={"coordinators": [CORA]}) as bw:
            bw.clock.current = START
            office, _ = await setup(bw, n)
            polls: list[float] = []
            notices: list[float] = []
            for r in range(rounds):
                ask = (f'!consult ask question="Round {r}: would a minibus help?" '
                       'options="Yes|No|Not sure" themes=food')
                post = (f'!funding post https://example.org/r{r} title="Fund {r}" '
                        'funder="Trust" deadline=+30d areas=wisbech themes=food')
                pair = [(ask, f"K{r + 1} put to {n} groups", polls),
                        (post, f"F{r + 1} published", notices)]
                for text, expect, into in (pair if r % 2 == 0 else pair[::-1]):
                    into.append(await timed(bw, office, text, expect))
            async with bw.app.db.transaction() as session:
                poll = await consult.poll(session, 1)
                assert poll is not None
                answers = [results.Vote(i % 3, f"District {i % 6}", ("whatsapp", "matrix",
                                        "telegram")[i % 3]) for i in range(n)]
            made: list[float] = []
            for _ in range(2):  # cold (imports reach.report and matplotlib), then warm
                started = time.perf_counter()
                t = results.tally(poll.options, n, False, answers)
                text = results.render(t, "K1")
                table = results.csv_bytes(t, "K1")
                png = results.chart_png(t, "K1")
                made.append(time.perf_counter() - started)
    print(f"{n} groups, {rounds} rounds")
    for i, (p, f) in enumerate(zip(polls, notices, strict=True), start=1):
        print(f"round {i}: consult {p:.2f} s, funding {f:.2f} s, ratio {p / f:.2f}")
    mp, mf = statistics.median(polls), statistics.median(notices)
    print(f"median: consult {mp:.2f} s, funding {mf:.2f} s, ratio {mp / mf:.2f}")
    print(f"results of {n} answers: cold {made[0]:.2f} s (first imports), warm {made[1]:.2f} s "
          f"(text {len(text)} chars, CSV {len(table)} bytes, chart {len(png)} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.groups, args.rounds))


if __name__ == "__main__":
    main()
