"""No network I/O inside a database transaction: the in-process world's transport
fails a test whose bot calls the chat server while holding one open (tests/conftest.py's
autouse ``network_in_transactions``), so every command the unit tests run is checked.
Here: that the check itself catches such a call, and lets the same call pass outside."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import RoleGrant
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


async def test_a_command_needing_a_server_read_makes_it_once_before_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = "@ada:grapevine.local"
    async with bot_world(tmp_path, roles={"admins": [ada]}) as bw:
        bw.world.user("ada", "Ada")
        mo = bw.world.user("mo", "Mo Member")
        room = bw.world.create_room(ada, name="Wisbech Food Bank", members=[mo])
        await bw.world.join(bw.bot, room)
        await bw.deliver()
        read: list[str] = []
        members = bw.transport.members

        async def counted(room_id: str) -> dict[str, str | None]:
            read.append(room_id)
            return await members(room_id)

        monkeypatch.setattr(bw.transport, "members", counted)
        # "Mo Member" is a display name: who it is needs the room's members from the server.
        [done] = await bw.say(ada, room, '!role grant "Mo Member" moderator area=Wisbech')
        assert done == "@mo:grapevine.local is now moderator of Wisbech."
        assert read == [room]  # once, and (the autouse check) outside any transaction
        async with bw.app.db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(RoleGrant)) == 1
