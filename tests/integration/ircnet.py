"""A real IRC network for the integration tests: ngircd (Debian's package) and
heisenbridge (PyPI, in its own virtualenv), both on loopback, and IRC people as a
small asyncio client. ``install-irc.sh`` beside this file installs both (the
Makefile's test target runs it); when either cannot run, the tests that need
them fail with the reason, never skip.

Set-up follows bridges/deploy/irc/README.md: the registration comes from
``heisenbridge --generate``, Synapse reads it at start-up, the operator owns the
bridge and talks to it in its control room (ADDNETWORK, ADDSERVER, OPEN) and
network room (NICK, CONNECT, PLUMB).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from people import Person

from bot.homeserver import EmbeddedSynapse

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "bridges" / "deploy" / "irc" / "README.md"
INSTALL = Path(__file__).resolve().parent / "install-irc.sh"
VENV = Path(os.environ.get("GRAPEVINE_HEISENBRIDGE_VENV", REPO / ".venv-heisenbridge"))
HEISENBRIDGE = VENV / "bin" / "python"
IRC_HOST = "127.0.0.1"


class IrcUnavailable(AssertionError):
    """heisenbridge or ngircd cannot run here: a failure that names the fix."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((IRC_HOST, 0))
        return int(sock.getsockname()[1])


def _missing(what: str, detail: str) -> IrcUnavailable:
    return IrcUnavailable(f"{what} cannot run ({detail}); run {INSTALL.relative_to(REPO)}")


def guide_block(info: str) -> list[str]:
    """The lines of the deploy guide's fenced block opened with ```info."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^```{re.escape(info)}\n(.*?)^```", text, re.S | re.M)
    assert match is not None, f"{GUIDE} has no ```{info} block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def guide_shell(containing: str, values: dict[str, str]) -> str:
    """The guide's shell line containing ``containing``, with the tests' own values put in."""
    blocks = re.findall(r"^```sh\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.S | re.M)
    found = [line for block in blocks for line in block.splitlines() if containing in line]
    assert len(found) == 1, f"{GUIDE}: {len(found)} shell lines contain {containing!r}"
    return fill(found[0], values)


def fill(line: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        line = line.replace(placeholder, value)
    return line


def _venv_values(path: Path, port: int) -> dict[str, str]:
    return {"/opt/heisenbridge/bin/python": str(HEISENBRIDGE),
            "/opt/heisenbridge/heisenbridge.yaml": str(path), "9898": str(port)}


def generate_registration(path: Path, port: int) -> None:
    """The guide's step 2: ``heisenbridge -c PATH --generate`` listening on ``port``."""
    if not HEISENBRIDGE.exists():
        raise _missing("heisenbridge", f"no {HEISENBRIDGE}")
    path.parent.mkdir(parents=True, exist_ok=True)
    command = guide_shell("--generate", _venv_values(path, port))
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != 0 or not path.exists():
        raise _missing("heisenbridge --generate", done.stdout + done.stderr)


@dataclass(frozen=True)
class IrcRegistration:
    """heisenbridge's registration for Synapse, or why it could not be made."""

    path: Path
    port: int
    error: str | None = None

    @property
    def files(self) -> list[Path]:
        return [self.path] if self.error is None else []

    def check(self) -> None:
        if self.error is not None:
            raise IrcUnavailable(self.error)


def prepare_registration(folder: Path) -> IrcRegistration:
    """Generated before Synapse starts, so that Synapse reads it at start-up."""
    path, port = folder / "heisenbridge.yaml", free_port()
    try:
        generate_registration(path, port)
    except (IrcUnavailable, OSError, subprocess.SubprocessError) as exc:
        return IrcRegistration(path, port, str(exc))
    return IrcRegistration(path, port)


async def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str,
                         log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _missing(what, f"exited {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(IRC_HOST, port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise _missing(what, f"nothing on port {port} after {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class NgIrcd:
    """ngircd in the foreground on a free loopback port, configured only for the tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.log = folder / "ngircd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        return "\n".join([
            "[Global]", "Name = irc.grapevine.test", "Info = Grapevine test IRC server",
            "AdminInfo1 = Grapevine tests", "AdminInfo2 = loopback",
            "AdminEMail = tests@grapevine.invalid", f"Listen = {IRC_HOST}",
            f"Ports = {self.port}", "MotdPhrase = Grapevine tests",
            f"PidFile = {self.folder / 'ngircd.pid'}",
            "[Limits]", "MaxNickLength = 30", "MaxConnectionsIP = 0",
            "[Options]", "DNS = no", "Ident = no", "PAM = no", "",
        ])

    async def start(self) -> None:
        binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
        if not Path(binary).exists():
            raise _missing("ngircd", "not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "ngircd.conf"
        config.write_text(self._config())
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([binary, "-n", "-f", str(config)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        await _wait_for_port(self.port, self.proc, "ngircd", self.log)

    def stop(self) -> None:
        _stop(self.proc)


class HeisenbridgeProcess:
    """The bridge, run as its README says: ``heisenbridge -c REG -o OWNER HOMESERVER``."""

    def __init__(self, registration: Path, port: int, homeserver: str, owner: str,
                 folder: Path) -> None:
        self.registration = registration
        self.port = port
        self.homeserver = homeserver
        self.owner = owner
        self.log = folder / "heisenbridge.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        if not HEISENBRIDGE.exists():
            raise _missing("heisenbridge", f"no {HEISENBRIDGE}")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            command = guide_shell(" -o ", {
                **_venv_values(self.registration, self.port),
                "@you:example.org": self.owner, "http://127.0.0.1:8008": self.homeserver})
            self.proc = subprocess.Popen(
                [*shlex.split(command), "-v"], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await _wait_for_port(self.port, self.proc, "heisenbridge", self.log, timeout=60)

    def stop(self) -> None:
        _stop(self.proc)

    def tail(self) -> str:
        return _tail(self.log, 40)


@dataclass(frozen=True)
class IrcLine:
    """One line from the server: ``:prefix COMMAND params :trailing``."""

    prefix: str
    command: str
    params: tuple[str, ...]

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]

    @property
    def text(self) -> str:
        return self.params[-1] if self.params else ""


_LINE = re.compile(r"^(?::(?P<prefix>\S+) )?(?P<command>\S+)(?P<rest>.*)$")


def parse(raw: str) -> IrcLine:
    match = _LINE.match(raw)
    if match is None:
        return IrcLine("", "", ())
    rest = match.group("rest")
    middle, _, trailing = rest.partition(" :")
    params = tuple(middle.split()) + ((trailing,) if " :" in rest else ())
    return IrcLine(match.group("prefix") or "", match.group("command").upper(), params)


class IrcClient:
    """A person on IRC: connects, joins a channel, talks, and keeps what arrives."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.lines: list[IrcLine] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def connect(self, port: int) -> IrcClient:
        self._reader, self._writer = await asyncio.open_connection(IRC_HOST, port)
        self._task = asyncio.create_task(self._read(), name=f"irc-{self.nick}")
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.nick} 0 * :{self.nick}")
        await self.wait_for(lambda line: line.command == "001")
        return self

    def send(self, raw: str) -> None:
        assert self._writer is not None
        self._writer.write(raw.encode() + b"\r\n")

    async def _read(self) -> None:
        assert self._reader is not None
        while raw := await self._reader.readline():
            line = parse(raw.decode(errors="replace").rstrip("\r\n"))
            if line.command == "PING":
                self.send(f"PONG :{line.text}")
            self.lines.append(line)
            self._arrived.set()

    async def wait_for(self, matches: Callable[[IrcLine], bool], *, since: int = 0,
                       timeout: float = 20.0) -> IrcLine:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines[since:]:
                if matches(line):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n  ".join(f"{x.prefix} {x.command} {x.params}" for x in self.lines[-15:])
                raise AssertionError(f"{self.nick} waited {timeout:.0f} s; last lines:\n  {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 1.0))

    async def join(self, channel: str) -> None:
        mark = len(self.lines)
        self.send(f"JOIN {channel}")
        await self.wait_for(lambda line: line.command == "366", since=mark)

    def say(self, channel: str, text: str) -> int:
        """Send a message; returns the position to read replies from."""
        mark = len(self.lines)
        self.send(f"PRIVMSG {channel} :{text}")
        return mark

    def said_in(self, channel: str, nick: str, since: int) -> list[str]:
        """What ``nick`` said in ``channel`` after ``since``, one entry per IRC line."""
        return [line.text for line in self.lines[since:] if line.command == "PRIVMSG"
                and line.nick == nick and line.params[:1] == (channel,)]

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self.send("QUIT :bye")
                await self._writer.drain()
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


RELAY_NICK = "relay"
NETWORK = "local"
# What heisenbridge answers to each command the guide has the operator type.
ANSWERS = {"ADDNETWORK": "Network added", "ADDSERVER": "Server added", "NICK": "Nickname set",
           "PLUMB": "Plumbed", "UNPLUMB": "Leaving"}


@dataclass
class IrcNetwork:
    """ngircd and heisenbridge running, the bridge connected to the server as ``relay``."""

    server: NgIrcd
    bridge: HeisenbridgeProcess
    operator: Person
    network_room: str
    registration: IrcRegistration

    async def command(self, room: str, text: str, answer: str, timeout: float = 30.0) -> None:
        """The operator types a bridge command and waits for the bridge's notice."""
        mark = await self.operator.mark()
        await self.operator.send(room, text)
        try:
            await self.operator.wait_for_message(room, sender=self.bridge_bot, contains=answer,
                                                 since=mark, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nheisenbridge log:\n{self.bridge.tail()}") from None

    @property
    def bridge_bot(self) -> str:
        return f"@heisenbridge:{self.operator.server_name}"

    async def follow(self, room: str, line: str) -> None:
        """One command from the guide, and what shows it worked."""
        word = line.split()[0].upper()
        if word == "CONNECT":
            await self.operator.send(room, line)
            await self.connected(room)
        elif word in ANSWERS:
            await self.command(room, line, ANSWERS[word])
        else:
            await self.operator.send(room, line)

    async def connected(self, room: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                await self.command(room, "STATUS", "Connected for", 2.0)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    async def plumb(self, room_id: str, channel: str) -> None:
        """The guide's last step, ``PLUMB <room> <#channel>`` in the network room."""
        for line in guide_block("heisenbridge-plumb"):
            await self.follow(self.network_room, fill(line, {
                "!roomid:example.org": room_id, "#the-group": channel}))

    def stop(self) -> None:
        self.bridge.stop()
        self.server.stop()


async def start_network(synapse: EmbeddedSynapse, registration: IrcRegistration,
                        folder: Path, operator: Person) -> IrcNetwork:
    """Both processes up, then the operator sets the bridge up as the deploy guide says."""
    registration.check()
    server = NgIrcd(folder)
    await server.start()
    bridge = HeisenbridgeProcess(registration.path, registration.port, synapse.base_url,
                                 operator.user_id, folder)
    try:
        await bridge.start()
        control = await operator.wait_for_invite(timeout=60, joined=True)
        network = IrcNetwork(server, bridge, operator, "", registration)
        values = {"irc.libera.chat": IRC_HOST, "libera": NETWORK, "6667": str(server.port),
                  "grapevine-relay": RELAY_NICK}
        for line in guide_block("heisenbridge-control"):
            await network.follow(control, fill(line, values))
        network.network_room = await operator.wait_for_invite(timeout=30, joined=True)
        for line in guide_block("heisenbridge-network"):
            await network.follow(network.network_room, fill(line, values))
        return network
    except BaseException:
        bridge.stop()
        server.stop()
        raise
