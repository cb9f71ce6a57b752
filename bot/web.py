"""The bot's small HTTP face: a health check, and routes features add (notice links)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bot.host import Host

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]


class WebServer:
    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host, int(port)
        self.app = web.Application()
        self.probes: list[HealthProbe] = []
        self.app.router.add_get("/health", self._health)
        self._runner: web.AppRunner | None = None

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        self.app.router.add_routes(routes)

    async def _health(self, request: web.Request) -> web.Response:
        report: dict[str, Any] = {"ok": True}
        for probe in self.probes:
            try:
                report.update(await probe())
            except Exception as exc:  # a failing probe is exactly what health must say
                report["ok"] = False
                report.setdefault("errors", []).append(type(exc).__name__)
        return web.json_response(report, status=200 if report["ok"] else 503)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def install_health(server: WebServer, app: Host) -> None:
    from sqlalchemy import text

    async def database() -> dict[str, Any]:
        async with app.db.transaction() as session:
            await session.execute(text("SELECT 1"))
        return {"database": app.db.dialect}

    server.probes.append(database)
