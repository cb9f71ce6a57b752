"""A TCP proxy that sits between the bot and Synapse and misbehaves on purpose.

Each HTTP request it carries is, with probability ``rate`` (a seeded RNG), one of:
- reset before it reaches the server (the connection is aborted),
- reset after the server has handled it (the answer is lost: the bot cannot tell
  whether its message was posted),
- answered ``502 Bad Gateway`` by the proxy, as a load balancer in front of a
  restarting homeserver would,
- delayed (0.2-1 s) on the way in.
Everything else passes untouched. One request per connection (the request is sent
on with ``Connection: close``), so a fault never spills into the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field

FAULTS = ("reset_before", "reset_after", "bad_gateway", "delay")
_PAGE = b"<html><h1>502 Bad Gateway</h1></html>\n"
BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PAGE), _PAGE))


@dataclass
class FaultProxy:
    """``await start()``, point the bot at ``url``, set ``rate``; ``counts`` says what it did."""

    upstream_host: str
    upstream_port: int
    seed: int = 12
    rate: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):  # handlers then end on their own
                writer.transport.abort()
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=5)
            await self._server.wait_closed()

    def _fault(self) -> str | None:
        if self._rng.random() >= self.rate:
            return None
        return self._rng.choice(FAULTS)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._open.add(writer)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            fault = self._fault()
            self.counts[fault or "passed"] += 1
            if fault == "reset_before":
                writer.transport.abort()
                return
            if fault == "bad_gateway":
                writer.write(BAD_GATEWAY)
                await writer.drain()
                return
            if fault == "delay":
                await asyncio.sleep(self._rng.uniform(0.2, 1.0))
            answer = await self._forward(request)
            if fault == "reset_after":
                writer.transport.abort()
                return
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            self._open.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(self, request: bytes) -> bytes:
        up_reader, up_writer = await asyncio.open_connection(self.upstream_host,
                                                             self.upstream_port)
        self._open.add(up_writer)
        try:
            up_writer.write(request)
            await up_writer.drain()
            return await up_reader.read()  # to EOF: the server closes after one answer
        finally:
            self._open.discard(up_writer)
            up_writer.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request, re-headed with ``Connection: close``; None if the client went away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head[:-4].split(b"\r\n")
    headers = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
    length = 0
    for line in headers:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked request bodies are not supported by this proxy")
    body = await reader.readexactly(length) if length else b""
    return b"\r\n".join([lines[0], *headers, b"Connection: close"]) + b"\r\n\r\n" + body
