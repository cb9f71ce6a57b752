"""Where a newly joined room's history ends: at the bot's invite, else at its join."""

from __future__ import annotations

from typing import Any

from bot.runtime.history import live_from

BOT = "@bot:hs"


def member(membership: str, ts: int, prev: str | None = None, replaces: str = "") -> dict[str, Any]:
    unsigned: dict[str, Any] = {"replaces_state": replaces} if replaces else {}
    if prev:
        unsigned["prev_content"] = {"membership": prev}
    return {"type": "m.room.member", "state_key": BOT, "origin_server_ts": ts,
            "content": {"membership": membership}, "unsigned": unsigned}


def said(ts: int) -> dict[str, Any]:
    return {"type": "m.room.message", "sender": "@ann:hs", "origin_server_ts": ts}


async def no_lookup(event_id: str) -> int | None:
    raise AssertionError("the invite is in the timeline: no lookup needed")


async def test_a_message_between_invite_and_join_is_live_and_one_before_is_not() -> None:
    events = [said(1), member("invite", 2), said(3), member("join", 4, prev="invite")]
    assert await live_from(events, BOT, no_lookup) == 1


async def test_without_the_invite_in_the_timeline_its_timestamp_decides() -> None:
    events = [said(1), said(5), member("join", 6, prev="invite", replaces="$inv")]

    async def lookup(event_id: str) -> int | None:
        assert event_id == "$inv"
        return 3

    assert await live_from(events, BOT, lookup) == 1


async def test_a_room_joined_uninvited_is_cut_at_the_join_and_no_join_means_no_cut() -> None:
    assert await live_from([said(1), member("join", 2)], BOT, no_lookup) == 1
    assert await live_from([said(1), said(2)], BOT, no_lookup) == 0
    profile_change = member("join", 3, prev="join")
    assert await live_from([said(1), profile_change], BOT, no_lookup) == 0
