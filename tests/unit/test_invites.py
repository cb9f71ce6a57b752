"""The invite joiner: a thousand invites are joined a bounded number at a time, beside
the sync loop, and a refused join is tried again later on the bot's clock (issue 20)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.runtime.invites import InviteJoiner
from bot.transport.base import TransportError
from tests.clocks import ManualClock


class Server:
    """Joins that take a moment; counts how many run at once; refuses as scripted."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.joined: list[str] = []
        self.refuse: dict[str, list[str]] = {}  # room -> errcodes to answer first
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    async def join(self, room: str, via: Sequence[str] = ()) -> str:
        self.asked.append((room, tuple(via)))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.001)
            errors = self.refuse.get(room)
            if errors:
                raise TransportError(errors.pop(0), "not yet")
            self.joined.append(room)
            return room
        finally:
            self.running -= 1


async def until(check: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_thousand_invites_are_joined_one_at_a_time() -> None:
    server, clock = Server(), ManualClock()
    joiner = InviteJoiner(server, clock, "localhost")
    task = asyncio.create_task(joiner.run())
    for n in range(1000):
        joiner.add(f"!room{n}:remote", "remote")
    joiner.add("!room0:remote", "remote")  # the same invite again in a later sync

    await until(lambda: len(server.joined) == 1000, seconds=30)
    joiner.stop()
    await task

    assert server.most == 1
    assert sorted(server.joined) == sorted(f"!room{n}:remote" for n in range(1000))
    assert server.asked[0] == ("!room0:remote", ("remote",))
    assert len(joiner) == 0


async def test_a_refused_join_is_tried_again_after_the_wait_on_the_bots_clock() -> None:
    server, clock = Server(), ManualClock()
    server.refuse["!new:remote"] = ["M_FORBIDDEN"]  # the remote server has not stored it yet
    server.refuse["!gone:localhost"] = ["M_FORBIDDEN"]  # our own server: final
    joiner = InviteJoiner(server, clock, "localhost")
    task = asyncio.create_task(joiner.run())
    joiner.add("!new:remote", "remote")
    joiner.add("!gone:localhost", "localhost")

    await until(lambda: len(server.asked) == 2 and not server.running)  # both refused
    assert server.joined == [] and "!new:remote" in joiner and "!gone:localhost" not in joiner

    clock.advance(seconds=2)
    joiner.add("!other:remote", "remote")  # any wake looks at what has come due
    await until(lambda: "!new:remote" in server.joined)
    joiner.stop()
    await task
    assert [room for room, _ in server.asked].count("!gone:localhost") == 1


async def test_a_join_refused_every_time_is_given_up_after_five_tries() -> None:
    server, clock = Server(), ManualClock()
    server.refuse["!flaky:remote"] = ["M_UNKNOWN"] * 10
    joiner = InviteJoiner(server, clock, "localhost")
    task = asyncio.create_task(joiner.run())
    joiner.add("!flaky:remote", "remote")
    for tries in range(1, 6):
        # Until the try has failed, not only begun: the joiner sets its next try from the
        # clock as the refusal comes back, and a clock moved before that would push it on.
        await until(lambda tries=tries: len(server.asked) == tries and not server.running)
        clock.advance(seconds=2)  # the joiner's own wait comes to an end on the clock
    await asyncio.sleep(0.2)
    joiner.stop()
    await task

    assert [room for room, _ in server.asked].count("!flaky:remote") == 5
    assert "!flaky:remote" not in joiner
