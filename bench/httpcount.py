"""A counting reverse proxy between one bot and its homeserver, for request figures.

Every request passes through unchanged; ``counts`` tallies them by kind (sync,
room state, members, history, send, join, keys, other), so a benchmark can say
what each phase cost in requests to the homeserver. Tests count the same kinds
with a hook on the client (tests/integration/httpcount.py).
"""

from __future__ import annotations

from collections import Counter

import aiohttp
from aiohttp import web

# One classifier for tests and benches: a request's kind from its path.
from tests.integration.httpcount import kind_of

_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


class CountingProxy:
    """``await start()``; point the bot at ``url``; read and ``reset()`` ``counts``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    def reset(self) -> Counter[str]:
        """The counts so far, and start again from zero."""
        counts, self.counts = self.counts, Counter()
        return counts

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None),
                                           auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        self.counts[kind_of(request.path)] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        async with self._http.request(request.method, self.upstream + request.path_qs,
                                      headers=headers, data=body or None) as upstream:
            data = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            return web.Response(status=upstream.status, body=data, headers=out)
