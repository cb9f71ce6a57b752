"""The sync position waits for commands still running, and rooms do not wait for each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.runtime.inflight import Inflight, Lanes

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


async def test_the_token_to_store_waits_for_work_handed_over_before_it() -> None:
    inflight = Inflight()
    inflight.mark("t1", AT)
    assert inflight.safe() == ("t1", AT)
    slow = inflight.hold()  # a command from the batch ending at t2, still running
    inflight.mark("t2", AT)
    inflight.mark("t3", AT)
    assert inflight.safe() == ("t1", AT)
    quick = inflight.hold()  # from the batch ending at t4, already done
    inflight.release(quick)
    inflight.mark("t4", AT)
    assert inflight.safe() == ("t1", AT)
    inflight.release(slow)
    assert inflight.safe() == ("t4", AT)


async def test_work_handed_over_before_a_position_is_settled_when_it_ends() -> None:
    inflight = Inflight()
    assert inflight.settled(inflight.position())  # nothing handed over: nothing to wait for
    slow = inflight.hold()
    here = inflight.position()
    later = inflight.hold()  # started after the position: not waited for
    assert not inflight.settled(here)
    inflight.release(slow)
    assert inflight.settled(here) and not inflight.settled(inflight.position())
    inflight.release(later)
    assert inflight.settled(inflight.position())


async def test_work_stopped_by_a_shutdown_keeps_the_token_before_it() -> None:
    inflight = Inflight()
    inflight.mark("t1", AT)
    inflight.track(asyncio.Event().wait(), name="never ends")
    inflight.mark("t2", AT)
    await inflight.cancel()
    assert inflight.safe() == ("t1", AT)


async def test_one_room_waits_for_its_own_command_and_no_other_room_does() -> None:
    inflight = Inflight()
    lanes = Lanes(inflight, limit=4)
    done: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if wait is not None:
                await wait.wait()
            done.append(name)
        return run

    lanes.submit("!a", job("a1 slow", gate))
    lanes.submit("!a", job("a2"))
    lanes.submit("!b", job("b1"))
    inflight.mark("t1", AT)
    for _ in range(5):
        await asyncio.sleep(0)
    assert done == ["b1"]
    assert lanes.busy("!a") and not lanes.busy("!b")
    assert inflight.safe() is None
    gate.set()
    await inflight.idle()
    assert done == ["b1", "a1 slow", "a2"]
    assert inflight.safe() == ("t1", AT)


async def test_a_failing_job_is_logged_and_the_lane_goes_on() -> None:
    inflight = Inflight()
    lanes = Lanes(inflight)
    done: list[str] = []

    async def broken() -> None:
        raise RuntimeError("a handler bug")

    async def fine() -> None:
        done.append("after")

    lanes.submit("!a", broken)
    lanes.submit("!a", fine)
    inflight.mark("t1", AT)
    await inflight.idle()
    assert done == ["after"]
    assert inflight.safe() == ("t1", AT)
