"""A person on Element's crypto stack: matrix-js-sdk with its Rust crypto, in Node.

``tests/interop/person.mjs`` speaks JSON lines on stdin/stdout; :class:`JsPerson`
starts one per device and awaits its answers. The npm packages are pinned in
``tests/interop/package-lock.json`` and installed with ``npm ci`` (by ``make test``,
or here when missing); without Node or npm the test fails, it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bot.homeserver import EmbeddedSynapse, RegisteredUser

INTEROP = Path(__file__).resolve().parents[1] / "interop"


def ensure_installed() -> None:
    """``npm ci`` unless node_modules already matches the lock file."""
    installed = INTEROP / "node_modules" / ".package-lock.json"
    lock = INTEROP / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed for the interop tests (Node 20 and npm)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True,
                   capture_output=True)


class JsPerson:
    """One js-sdk device of ``user``; every op returns the script's answer or raises."""

    def __init__(self, user: RegisteredUser, process: asyncio.subprocess.Process) -> None:
        self.user = user
        self.user_id = user.user_id
        self.process = process
        self.device_id = user.device_id
        self._ids = itertools.count(1)

    @classmethod
    async def start(cls, synapse: EmbeddedSynapse, user: RegisteredUser,
                    log: Path, *, bootstrap: bool = True) -> JsPerson:
        """``bootstrap``: make the person's own cross-signing keys, as a first device does."""
        ensure_installed()
        node = shutil.which("node")
        assert node is not None, "Node is needed for the interop tests"
        process = await asyncio.create_subprocess_exec(
            node, str(INTEROP / "person.mjs"), cwd=INTEROP,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log.open("ab"), limit=2**24,
        )
        person = cls(user, process)
        await person.call("start", homeserver=synapse.base_url, user_id=user.user_id,
                          access_token=user.access_token, device_id=user.device_id,
                          password=user.password, bootstrap=bootstrap)
        return person

    async def call(self, op: str, timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request_id = next(self._ids)
        self.process.stdin.write((json.dumps({"id": request_id, "op": op, **args}) + "\n")
                                 .encode())
        await self.process.stdin.drain()
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            assert line, f"the js-sdk person exited during {op}"
            answer = json.loads(line)
            if answer.get("id") == request_id:
                break
        assert answer.pop("ok"), f"{op} failed in js-sdk: {answer.get('error')}"
        answer.pop("id")
        return dict(answer)

    async def create_dm(self, other: str) -> str:
        return str((await self.call("create_dm", invite=other))["room_id"])

    async def send(self, room_id: str, body: str) -> str:
        return str((await self.call("send", room_id=room_id, body=body))["event_id"])

    async def wait_message(self, room_id: str, sender: str, contains: str | None = None,
                           timeout: float = 30.0) -> dict[str, Any]:
        return await self.call("wait_message", timeout=timeout + 5, room_id=room_id,
                               sender=sender, contains=contains, timeout_ms=timeout * 1000)

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(AssertionError, TimeoutError):
                await self.call("stop", timeout=5)
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def log_in_again(synapse: EmbeddedSynapse, user: RegisteredUser) -> RegisteredUser:
    """The same person on a new device (a fresh password login)."""
    data = await synapse.request("POST", "/_matrix/client/v3/login", body={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": user.password})
    return RegisteredUser(user.user_id, user.password, data["access_token"], data["device_id"])
