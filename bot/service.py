"""One running bot: lock, migrations, Matrix login, app, sync loop, outbox, scheduler, web."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from typing import Any

from bot.app import Grapevine
from bot.clock import Clock, shared
from bot.features import install_all, sealing
from bot.offload import InProcesses
from bot.runtime import login
from bot.runtime.inflight import Inflight, Lanes
from bot.runtime.outbox_worker import OutboxWorker
from bot.runtime.sync import SyncLoop
from bot.scheduler import Scheduler
from bot.transport.base import Transport
from bot.transport.matrix import MatrixTransport
from bot.web import WebServer, install_health
from config.settings import Settings
from storage.engine import Database
from storage.lock import InstanceLock
from storage.migrate import current_heads, upgrade

log = logging.getLogger("grapevine")


def assemble(settings: Settings, db: Database, transport: Transport, **options: Any) -> Grapevine:
    """The router with every feature installed: how the service, the shell and the test
    worlds all build a bot. The router itself knows no feature; features know only
    :class:`bot.host.Host`, so this is the one place both meet."""
    app = Grapevine(settings, db, transport, **options)
    install_all(app)
    return app


class Service:
    """Start with ``await start()``; ``await stop()`` leaves the device logged in."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 web: bool = True) -> None:
        self.settings = settings
        # One clock for the app, the worker, the scheduler and the sync loop.
        self.clock = shared(clock)
        self.db = Database(settings.database_url)
        self.lock = InstanceLock(self.db.engine)
        self.web = WebServer(settings.web.listen) if web else None
        self.app: Grapevine | None = None
        self.sync: SyncLoop | None = None
        self.worker: OutboxWorker | None = None
        self.scheduler: Scheduler | None = None
        # Commands run in per-room lanes off the sync loop; the stored sync token
        # waits for them (bot.runtime.inflight).
        self.inflight = Inflight()
        # Heavy pure work (a model, a seed choice) in a process of its own, niced.
        self.offload = InProcesses()
        self._client: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        settings = self.settings
        settings.bot.data_dir.mkdir(parents=True, exist_ok=True)
        await self.lock.acquire()
        try:
            before = await current_heads(self.db.engine)
            await upgrade(self.db.engine)
            after = await current_heads(self.db.engine)
            if after != before:  # alembic's own step-by-step lines are for -v
                log.info("database schema upgraded to %s", ", ".join(after))
            self._client = await login.connect(settings, self.db)
            transport = MatrixTransport(self._client, self.db)
            self.scheduler = Scheduler(self.db, self.clock, settings.bot.tz)
            self.app = assemble(settings, self.db, transport, clock=self.clock,
                                scheduler=self.scheduler)
            self.worker = OutboxWorker(
                self.db, transport, self.clock, rest=self.app.pager.keep_for_room,
                prefix=settings.bot.prefix, opener=sealing.opener(settings.privacy.notes_key))
            self.app.on_queued(self.worker.wake, outbox=True)
            await self.worker.reclaim()  # before any command can lease a row
            self.app.lanes = Lanes(self.inflight)
            self.app.handoff = self.worker.send_now
            self.app.offload = self.offload
            await self.app.load_rooms()
            await self.app.dm_reach.load(self.db)  # watches on DM invites, re-armed
            self.sync = SyncLoop(self._client, transport, self.db, self.app, settings, self.clock,
                                 inflight=self.inflight, states=self.app.room_states)
            self.app.sync_status = lambda: self.sync.last_sync_at if self.sync else None
            self.app.sync_took = lambda: self.sync.last_sync_took if self.sync else None
            await self.scheduler.start()
            if self.web is not None:
                install_health(self.web, self.app)
                self.web.probes.append(self._synced)
                self.web.add_routes(self.app.web_routes)
                await self.web.start()
        except BaseException as err:
            if "database is locked" in str(err):
                self._name_lock_holders()
            await self._close()
            raise
        self._tasks = [
            asyncio.create_task(self.sync.run(), name="sync"),
            asyncio.create_task(self.worker.run(), name="outbox"),
        ]
        log.info("Grapevine is running as %s", settings.matrix.user_id)

    def _name_lock_holders(self) -> None:
        """One line for a start that found SQLite locked: who in this process holds it
        (another process is the other answer), and which threads are alive."""
        holders = self.db.held_elsewhere()
        log.error("the database is locked: held in this process by %s; threads alive: %s",
                  ", ".join(holders) if holders else "no task (another process?)",
                  ", ".join(sorted(t.name for t in threading.enumerate())))

    async def _synced(self) -> dict[str, Any]:
        return {"synced": self.sync is not None and self.sync.ready.is_set()}

    async def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.sync is not None
        await asyncio.wait_for(self.sync.ready.wait(), timeout)

    async def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT; then stop cleanly (the device stays logged in)."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        waiter = asyncio.create_task(stopping.wait())
        await asyncio.wait([waiter, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in self._tasks:
            if task.done() and task.exception() is not None:
                log.error("%s stopped: %s", task.get_name(), task.exception())
        await self.stop()

    async def stop(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        if self.worker is not None:
            self.worker.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self.worker is not None:
            await self.worker.stopped()
        # Unfinished commands are heard again after a restart: the token waited for them.
        await self.inflight.cancel()
        self.offload.close()  # what a cancelled job left running there ends with it
        if self.scheduler is not None:
            self.scheduler.shutdown()  # no job may start on a database about to close
            await self.scheduler.wait_stopped()
        if self.app is not None:
            await self.app.close()
        await self._close()

    async def _close(self) -> None:
        self.offload.close()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.web is not None:
            await self.web.stop()
        if self._client is not None:
            # Never logout(): that would delete the device and its encryption keys.
            await self._client.close()
            self._client = None
        await self.lock.release()
        await self.db.close()
