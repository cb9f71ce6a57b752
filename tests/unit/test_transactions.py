"""No network I/O inside a database transaction: the in-process world's transport
fails a test whose bot calls the chat server while holding one open (tests/conftest.py's
autouse ``network_in_transactions``), so every command the unit tests run is checked.
Here: that the check itself catches such a call, and lets the same call pass outside."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.botworld import bot_world


async def test_a_server_call_inside_a_transaction_is_caught_and_outside_is_not(
    tmp_path: Path, network_in_transactions: list[str],
) -> None:
    async with bot_world(tmp_path) as bw:
        room = bw.world.create_room(bw.world.user("ann", "Ann"), name="Pantry")
        await bw.world.join(bw.bot, room)
        await bw.transport.members(room)
        assert network_in_transactions == []
        async with bw.app.db.transaction():
            await bw.transport.members(room)
        assert len(network_in_transactions) == 1
        assert network_in_transactions[0].startswith("members from ")
        network_in_transactions.clear()  # caught as it should be: not this test's failure


@pytest.mark.parametrize("nested", [False, True])
async def test_the_check_follows_the_transaction_out(tmp_path: Path, nested: bool,
                                                     network_in_transactions: list[str]) -> None:
    async with bot_world(tmp_path) as bw:
        room = bw.world.create_room(bw.world.user("ann", "Ann"), name="Pantry")
        await bw.world.join(bw.bot, room)
        async with bw.app.db.transaction():
            if nested:
                async with bw.app.db.transaction():
                    pass
        await bw.transport.room_state(room)  # after the commit: allowed
        assert network_in_transactions == []
