"""A bot in an in-process world, for fast scenario tests of commands (no homeserver)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.app import Grapevine
from bot.features import sealing
from bot.service import assemble
from bot.transport.base import text_content
from bot.transport.world import World, WorldTransport
from config.settings import Settings, load_settings
from storage import outbox
from storage.engine import Database
from storage.migrate import upgrade
from tests.clocks import ManualClock


class BotWorld:
    """People talk in rooms; the bot answers; tests read what arrived."""

    def __init__(self, world: World, app: Grapevine, transport: WorldTransport,
                 clock: ManualClock) -> None:
        self.world = world
        self.app = app
        self.transport = transport
        self.clock = clock
        self.bot = transport.user_id

    async def deliver(self) -> int:
        """Send everything due in the outbox, as the outbox worker would."""
        sent = 0
        while True:
            async with self.app.db.transaction() as session:
                due = await outbox.due(session, self.clock.now())
            if not due:
                return sent
            for row in due:
                room_id = row.room_id or await self.transport.direct_room(row.to_user or "")
                body = row.body
                if row.kind == outbox.SEALED_KIND:  # opened in memory, as the worker does
                    body = sealing.opener(self.app.settings.privacy.notes_key)(body) or ""
                content = text_content(body, row.html,
                                       extra={**(row.extra or {}), "org.grapevine.outbox": row.id})
                event_id = await self.transport.send(room_id, content, txn_id=f"grapevine-{row.id}")
                async with self.app.db.transaction() as session:
                    await outbox.mark_sent(session, row.id, event_id, self.clock.now(), room_id)
                sent += 1

    async def say(self, user: str, room_id: str, body: str, **kwargs: Any) -> list[str]:
        """``user`` says ``body``; returns what the bot then posted in that room."""
        before = len(self.world.messages(room_id, sender=self.bot))
        await self.world.say(user, room_id, body, **kwargs)
        await self.deliver()
        return self.world.messages(room_id, sender=self.bot)[before:]

    def dms(self, user: str) -> list[str]:
        """Everything the bot has said to ``user`` in their direct-message room."""
        for room in self.world.rooms.values():
            if room.direct and user in set(room.members()) | set(room.members("invite")):
                return self.world.messages(room.room_id, sender=self.bot)
        return []


@asynccontextmanager
async def bot_world(tmp_path: Path, *, settings: Settings | None = None,
                    db_url: str | None = None, clock: ManualClock | None = None,
                    **overrides: Any) -> AsyncIterator[BotWorld]:
    """The bot in a fresh world; on SQLite in ``tmp_path`` unless ``db_url`` names another."""
    clock = clock or ManualClock()
    world = World(clock=clock)  # people post at the bot's time, as on a real server
    bot_id = world.user("grapevine", "Grapevine")
    settings = settings or load_settings(
        None, bot={"data_dir": str(tmp_path)}, matrix={"user_id": bot_id}, **overrides
    )
    db = Database(db_url or f"sqlite+aiosqlite:///{tmp_path / 'grapevine.db'}")
    await upgrade(db.engine)
    transport = WorldTransport(world, bot_id)
    app = assemble(settings, db, transport, clock=clock)
    transport.attach(app)
    transport.keep_state(app.room_states.apply)
    try:
        yield BotWorld(world, app, transport, clock)
    finally:
        await app.close()  # as the service's stop: background passes end before the db
        await db.close()
