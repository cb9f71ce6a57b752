"""``grapevine shell``: type commands as anyone, in any room, with no homeserver.

Like Hubot's shell adapter or ``errbot -T``: the same app and features run on
an in-process world. Lines starting with ``/`` steer the shell; anything else
is said by the current person in the current room.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.app import Grapevine
from bot.clock import SharedClock
from bot.features import sealing
from bot.runtime.outbox_worker import OutboxWorker
from bot.service import assemble
from bot.transport.world import World, WorldTransport
from config.settings import Settings, load_settings
from storage.engine import Database
from storage.migrate import upgrade

HELP = """/as <name> [display name]  speak as someone else (made on first use)
/room <name>               go to a group room (made on first use, you its admin)
/dm                        go to your direct-message room with the bot
/where                     who and where you are
/quit                      leave (Ctrl-D works too)"""


class Shell:
    def __init__(self, world: World, app: Grapevine, transport: WorldTransport,
                 worker: OutboxWorker, out: TextIO) -> None:
        self.world, self.app, self.transport, self.worker = world, app, transport, worker
        self.out = out
        self.user = world.user("you", "You")
        self.rooms: dict[str, str] = {}
        self.room = ""

    async def enter_room(self, name: str) -> None:
        if name not in self.rooms:
            room_id = self.world.create_room(self.user, name=name, power={self.user: 100})
            self.rooms[name] = room_id
            await self.world.join(self.transport.user_id, room_id)
        else:
            room_id = self.rooms[name]
            if self.user not in self.world.room(room_id).members():
                await self.world.join(self.user, room_id)
        self.room = self.rooms[name]
        await self.flush()

    async def enter_dm(self) -> None:
        self.room = await self.transport.direct_room(self.user)
        if self.user not in self.world.room(self.room).members():
            await self.world.join(self.user, self.room)

    async def flush(self) -> None:
        """Deliver what the bot queued and print what it said where the person can see it."""
        before = {rid: len(r.timeline) for rid, r in self.world.rooms.items()}
        await self.worker.drain()
        for room_id, room in self.world.rooms.items():
            if self.user not in set(room.members()) | set(room.members("invite")):
                continue
            for event in room.timeline[before.get(room_id, 0):]:
                if event["sender"] == self.transport.user_id and event["type"] == "m.room.message":
                    where = "" if room_id == self.room else f" [{self._name(room_id)}]"
                    body = event["content"].get("body", "")
                    self.out.write(f"grapevine{where}> " + body.replace("\n", "\n    ") + "\n")
        self.out.flush()

    def _name(self, room_id: str) -> str:
        for name, rid in self.rooms.items():
            if rid == room_id:
                return name
        return "direct message" if self.world.room(room_id).direct else room_id

    async def line(self, text: str) -> bool:
        """Handle one typed line; False to quit."""
        text = text.rstrip("\n")
        if not text.strip():
            return True
        if text.startswith("/"):
            word, _, rest = text[1:].partition(" ")
            if word in {"quit", "exit"}:
                return False
            if word == "as" and rest.strip():
                local, _, display = rest.strip().partition(" ")
                self.user = self.world.user(local.lstrip("@").split(":")[0], display or local)
                if self.room and self.user not in self.world.room(self.room).members():
                    await self.world.join(self.user, self.room)
            elif word == "room" and rest.strip():
                await self.enter_room(rest.strip())
            elif word == "dm":
                await self.enter_dm()
            elif word == "where":
                self.out.write(f"you are {self.user} in {self._name(self.room)}\n")
            else:
                self.out.write(HELP + "\n")
            return True
        await self.world.say(self.user, self.room, text)
        await self.flush()
        return True


async def run_shell(settings: Settings | None = None, *, stdin: TextIO = sys.stdin,
                    out: TextIO = sys.stdout) -> int:
    clock = SharedClock()  # the world stamps events by the bot's own clock
    world = World("shell.local", clock=clock)
    bot_id = world.user("grapevine", "Grapevine")
    you = f"@you:{world.server_name}"
    with tempfile.TemporaryDirectory(prefix="grapevine-shell-") as scratch:
        settings = settings or load_settings(
            None,
            bot={"data_dir": scratch},
            matrix={"user_id": bot_id},
            roles={"admins": [you], "coordinators": [you]},
        )
        db = Database(f"sqlite+aiosqlite:///{Path(scratch) / 'shell.db'}")
        await upgrade(db.engine)
        transport = WorldTransport(world, bot_id)
        app = assemble(settings, db, transport, clock=clock)
        transport.keep_state(app.room_states.apply)
        transport.attach(app)
        worker = OutboxWorker(db, transport, app.clock, rest=app.pager.keep_for_room,
                              prefix=app.settings.bot.prefix,
                              opener=sealing.opener(settings.privacy.notes_key))
        shell = Shell(world, app, transport, worker, out)
        interactive = stdin.isatty()
        if interactive:
            out.write("Grapevine shell: you are an admin and coordinator here. /help for more.\n")
        await shell.enter_room("community")
        loop = asyncio.get_running_loop()
        try:
            while True:
                if interactive:
                    out.write(f"{shell.user} in {shell._name(shell.room)}> ")
                    out.flush()
                text = await loop.run_in_executor(None, stdin.readline)
                if not text or not await shell.line(text):
                    break
        finally:
            await db.close()
    return 0
