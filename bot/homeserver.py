"""An embedded Synapse on loopback, for `grapevine demo` and the integration tests.

Synapse runs as a child process in its own process group, with a config written
here (SQLite, one plain-HTTP client listener on 127.0.0.1, federation only when
asked, rate limits raised, cheap password hashing), so it starts in about a
second and needs nothing beyond the project's virtualenv. The data directory
is reusable: the secrets, signing key, port and database survive a stop, a
restart or a new process, so a demo can be stopped and started again with its
users and rooms.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml
from signedjson.key import generate_signing_key, write_signing_keys

log = logging.getLogger(__name__)

STATE_FILE = "embedded-synapse.json"
CONFIG_FILE = "homeserver.yaml"
LOG_FILE = "homeserver.log"
OUTPUT_FILE = "synapse-output.log"

_HIGH = {"per_second": 100_000, "burst_count": 1_000_000}

# Every requester-facing limiter Synapse 1.163 reads (synapse/config/ratelimiting.py).
RAISED_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _HIGH,
    "rc_registration": _HIGH,
    "rc_registration_token_validity": _HIGH,
    "rc_login": {"address": _HIGH, "account": _HIGH, "failed_attempts": _HIGH},
    "rc_admin_redaction": _HIGH,
    "rc_joins": {"local": _HIGH, "remote": _HIGH},
    "rc_joins_per_room": _HIGH,
    "rc_key_requests": _HIGH,
    "rc_3pid_validation": _HIGH,
    "rc_invites": {"per_room": _HIGH, "per_user": _HIGH, "per_issuer": _HIGH},
    "rc_third_party_invite": _HIGH,
    "rc_media_create": _HIGH,
    "rc_presence": {"per_user": _HIGH},
    "rc_delayed_event_mgmt": _HIGH,
    "rc_room_creation": _HIGH,
    "rc_reports": _HIGH,
    "rc_user_directory": _HIGH,
    "rc_profile": _HIGH,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 10_000,
        "sleep_delay": 1,
        "reject_limit": 100_000,
        "concurrent": 100,
    },
}


class HomeserverError(RuntimeError):
    """A Synapse request failed; `errcode` is the Matrix error code when there is one."""

    def __init__(self, message: str, *, status: int = 0, errcode: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode


class SynapseStartError(RuntimeError):
    """Synapse did not come up; the message ends with the tail of its logs."""


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    password: str
    access_token: str
    device_id: str


@dataclass(frozen=True)
class AppService:
    """An application service (a bridge) registered with the server, as Synapse reads it."""

    id: str
    as_token: str
    hs_token: str
    sender_localpart: str
    user_regex: str
    path: Path


@dataclass
class _State:
    """What must stay the same across restarts of one data directory."""

    server_name: str
    port: int
    registration_shared_secret: str
    macaroon_secret_key: str
    form_secret: str


# Synapse processes still alive when the interpreter exits (a crashed demo, an
# interrupted test run) are killed rather than left holding their port.
_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def registration_mac(
    secret: str, nonce: str, user: str, password: str, *, admin: bool = False
) -> str:
    """The HMAC-SHA1 the shared-secret registration API expects (admin_api/register_api)."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, user, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


def _federation_name(requested: str, stored: str | None) -> str:
    """`localhost:<port>`: other servers find a server by the port in its name."""
    host, _, port_text = requested.partition(":")
    if host != "localhost":
        raise ValueError(f"federation on loopback needs the name localhost[:port], not {requested}")
    if port_text:
        return requested
    if stored is not None and stored.startswith("localhost:"):
        return stored
    return f"localhost:{free_port()}"


class LoopbackCA:
    """A throwaway certificate authority, made with the openssl command, for loopback federation.

    Federating servers verify each other's TLS certificates as they would in
    production; on one machine they do so against this CA, which each server
    trusts through ``federation_custom_ca_list``. Every server gets a leaf for
    ``localhost`` and ``127.0.0.1`` signed by it (server names are ``localhost:<port>``).
    The files live in ``directory`` and are made once; several servers share them.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def key_path(self) -> Path:
        return self.directory / "ca.key"

    def ensure(self) -> None:
        """Make the CA's key and self-signed certificate unless they exist."""
        if self.cert_path.exists() and self.key_path.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(self.key_path), "-out", str(self.cert_path),
            "-days", "3650", "-subj", "/CN=Grapevine loopback test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
        self.key_path.chmod(0o600)

    def issue(self, cert_path: Path, key_path: Path) -> None:
        """A ten-year server certificate for localhost and 127.0.0.1, signed by this CA."""
        self.ensure()
        request = cert_path.with_suffix(".csr")
        extensions = cert_path.with_suffix(".ext")
        extensions.write_text(
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        )
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key_path), "-out", str(request), "-subj", "/CN=localhost",
        )
        key_path.chmod(0o600)
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.cert_path),
            "-CAkey", str(self.key_path), "-set_serial", str(secrets.randbits(63)),
            "-days", "3650", "-extfile", str(extensions), "-out", str(cert_path),
        )
        request.unlink()
        extensions.unlink()


def _openssl(*args: str) -> None:
    """Run the openssl command; its own words on failure."""
    try:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise SynapseStartError(
            "the openssl command is needed for loopback federation (apt-get install openssl)"
        ) from None
    except subprocess.CalledProcessError as err:
        raise SynapseStartError(
            f"openssl {args[0]} failed: {err.stderr.decode(errors='replace').strip()}"
        ) from None


def _set_parent_death_signal() -> None:
    """Runs in the child before exec: Synapse gets SIGTERM if our process dies."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedSynapse:
    """One Synapse process on 127.0.0.1 serving the client and admin APIs.

    `server_name` is independent of the client port (default "localhost", so
    user ids are `@alice:localhost`); the port is picked once per data
    directory and kept while it stays free, so clients set up for a demo keep
    working. With `federation=True` the server also listens for federation
    over TLS on the port in its name, `localhost:<port>` (a free one unless the
    name gives it), so several instances on one machine can share rooms. Its
    certificate is signed by `ca` and the other servers' are verified against
    it, as production servers verify each other: instances that federate share
    one CA (without one, each makes its own in its data directory and trusts
    only itself). `extra_config` is merged into
    the generated homeserver.yaml (mappings key by key; anything else replaces).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        server_name: str = "localhost",
        port: int | None = None,
        appservice_files: Sequence[Path] = (),
        extra_config: Mapping[str, Any] | None = None,
        raise_rate_limits: bool = True,
        federation: bool = False,
        ca: LoopbackCA | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._appservice_files = [Path(p).resolve() for p in appservice_files]
        self._extra_config = dict(extra_config or {})
        self._raise_rate_limits = raise_rate_limits
        self.federation = federation
        self.ca = ca or LoopbackCA(self.data_dir / "ca")
        self._state = self._load_or_create_state(server_name, port)
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    # -- identity -----------------------------------------------------------

    @property
    def server_name(self) -> str:
        return self._state.server_name

    @property
    def port(self) -> int:
        return self._state.port

    @property
    def federation_port(self) -> int | None:
        if not self.federation:
            return None
        return int(self.server_name.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._state.port}"

    @property
    def shared_secret(self) -> str:
        return self._state.registration_shared_secret

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The Synapse process (benches read its CPU time), while it runs."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    @property
    def appservice_files(self) -> list[Path]:
        """The registrations given, then those `add_appservice` keeps in the data dir."""
        added = sorted((self.data_dir / "appservices").glob("*.yaml"))
        return [*self._appservice_files, *(p for p in added if p not in self._appservice_files)]

    def add_appservice(
        self, service_id: str, *, sender_localpart: str, user_prefix: str, url: str | None = None
    ) -> AppService:
        """Register a bridge-like appservice owning `@<user_prefix>...` (from the next start).

        Its users are exempt from rate limits; with `url=None` Synapse pushes it
        nothing, which suits a bridge driven only through the client API.
        Adding the same id again returns the stored registration.
        """
        path = self.data_dir / "appservices" / f"{service_id}.yaml"
        server = re.escape(self.server_name)
        user_regex = f"@{re.escape(user_prefix)}.*:{server}"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            registration = {
                "id": service_id,
                "url": url,
                "as_token": secrets.token_urlsafe(32),
                "hs_token": secrets.token_urlsafe(32),
                "sender_localpart": sender_localpart,
                "rate_limited": False,
                "namespaces": {
                    "users": [
                        {"exclusive": True, "regex": f"@{re.escape(sender_localpart)}:{server}"},
                        {"exclusive": True, "regex": user_regex},
                    ],
                    "aliases": [
                        {"exclusive": True, "regex": f"#{re.escape(user_prefix)}.*:{server}"}
                    ],
                    "rooms": [],
                },
            }
            path.write_text(yaml.safe_dump(registration, sort_keys=False))
            path.chmod(0o600)
        stored = yaml.safe_load(path.read_text())
        return AppService(
            id=stored["id"],
            as_token=stored["as_token"],
            hs_token=stored["hs_token"],
            sender_localpart=stored["sender_localpart"],
            user_regex=user_regex,
            path=path,
        )

    # -- files ----------------------------------------------------------------

    def _load_or_create_state(self, server_name: str, port: int | None) -> _State:
        path = self.data_dir / STATE_FILE
        stored = _State(**json.loads(path.read_text())) if path.exists() else None
        if self.federation:
            server_name = _federation_name(server_name, stored.server_name if stored else None)
        if stored is not None:
            state = stored
            if state.server_name != server_name:
                raise ValueError(
                    f"{self.data_dir} holds the homeserver {state.server_name!r}, "
                    f"not {server_name!r}: use another data directory"
                )
            if port is not None:
                state.port = port
            elif not _port_is_free(state.port):
                state.port = self._free_client_port(server_name)
            return state  # saved by start(), once this instance owns the directory
        state = _State(
            server_name=server_name,
            port=port if port is not None else self._free_client_port(server_name),
            registration_shared_secret=secrets.token_urlsafe(32),
            macaroon_secret_key=secrets.token_urlsafe(32),
            form_secret=secrets.token_urlsafe(32),
        )
        self._save_state(state)
        return state

    def _free_client_port(self, server_name: str) -> int:
        federation_port = server_name.rpartition(":")[2] if self.federation else None
        port = free_port()
        while str(port) == federation_port:
            port = free_port()
        return port

    def _save_state(self, state: _State) -> None:
        path = self.data_dir / STATE_FILE
        path.write_text(json.dumps(state.__dict__, indent=2))
        path.chmod(0o600)

    def _write_files(self) -> None:
        key_path = self.data_dir / "signing.key"
        if not key_path.exists():
            with key_path.open("w") as stream:
                write_signing_keys(stream, [generate_signing_key("a_" + secrets.token_hex(2))])
        log_config = {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": str(self.log_path),
                    "formatter": "plain",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        log_config_path = self.data_dir / "log.yaml"
        log_config_path.write_text(yaml.safe_dump(log_config))
        config = self._config(key_path, log_config_path)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.config_path.chmod(0o600)

    def _config(self, key_path: Path, log_config_path: Path) -> dict[str, Any]:
        state = self._state
        config: dict[str, Any] = {
            "server_name": state.server_name,
            "public_baseurl": self.base_url + "/",
            "listeners": self._client_listeners(),
            "database": {
                "name": "sqlite3",
                "args": {"database": str(self.data_dir / "homeserver.db")},
            },
            "log_config": str(log_config_path),
            "media_store_path": str(self.data_dir / "media_store"),
            "signing_key_path": str(key_path),
            "registration_shared_secret": state.registration_shared_secret,
            "macaroon_secret_key": state.macaroon_secret_key,
            "form_secret": state.form_secret,
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_registration": False,
            "app_service_config_files": [str(p) for p in self.appservice_files],
            # Cheap hashing: registering and logging in dozens of test users stays fast.
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "allow_guest_access": False,
        }
        if self._raise_rate_limits:
            config.update(RAISED_RATE_LIMITS)
        if self.federation_port is not None:
            config.update(self._federation_config(self.federation_port))
        return _deep_merge(config, self._extra_config)

    def _federation_config(self, port: int) -> dict[str, Any]:
        cert_path, key_path = self.data_dir / "tls.crt", self.data_dir / "tls.key"
        if not cert_path.exists() or not key_path.exists():
            self.ca.issue(cert_path, key_path)
        listener = {
            "port": port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": True,
            "resources": [{"names": ["federation"], "compress": False}],
        }
        return {
            "listeners": [*self._client_listeners(), listener],
            "tls_certificate_path": str(cert_path),
            "tls_private_key_path": str(key_path),
            # Loopback is in Synapse's default outbound blocklist.
            "ip_range_whitelist": ["127.0.0.1/8", "::1/128"],
            # Verified as in production, against the CA the federating servers share.
            "federation_custom_ca_list": [str(self.ca.cert_path)],
        }

    def _client_listeners(self) -> list[dict[str, Any]]:
        return [
            {
                "port": self.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ]

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of Synapse's own output and log, for error messages."""
        parts = []
        for name in (OUTPUT_FILE, LOG_FILE):
            path = self.data_dir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts) or "(Synapse wrote no log)"

    # -- process --------------------------------------------------------------

    async def start(self, timeout: float = 60.0) -> None:
        """Start Synapse and return once its client API answers."""
        if self.is_running:
            return
        began = time.monotonic()
        lock = self._lock_data_dir()
        try:
            for taken in (self.port, self.federation_port):
                if taken is not None and not _port_is_free(taken):
                    raise SynapseStartError(f"port {taken} on 127.0.0.1 is already in use")
            self._save_state(self._state)
            self._write_files()
            with (self.data_dir / OUTPUT_FILE).open("ab") as output:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                    cwd=self.data_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    pass_fds=(lock,),
                    start_new_session=True,
                    preexec_fn=_set_parent_death_signal if sys.platform == "linux" else None,
                )
        finally:
            os.close(lock)  # the child's copy holds the lock for as long as Synapse lives
        _LIVE.add(self._proc)
        try:
            await self._wait_until_up(began + timeout)
        except BaseException:
            await self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        log.info("Synapse up at %s in %.1f s", self.base_url, self.startup_seconds)

    def _lock_data_dir(self) -> int:
        """Two Synapses on one SQLite database would corrupt it: refuse the second."""
        fd = os.open(self.data_dir / "synapse.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SynapseStartError(
                f"another Synapse is already running on {self.data_dir}"
            ) from None
        return fd

    async def _wait_until_up(self, deadline: float) -> None:
        url = self.base_url + "/health"
        probe = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=probe) as http:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    raise SynapseStartError(
                        f"Synapse exited with status {code} while starting\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(url) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise SynapseStartError(
                        f"Synapse did not answer on {url} in time\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not gone in `timeout`."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        try:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while proc.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                if proc.poll() is None:
                    log.warning("Synapse ignored SIGTERM for %.0f s: killing it", timeout)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await asyncio.to_thread(proc.wait)
        finally:
            _LIVE.discard(proc)

    async def restart(self, timeout: float = 60.0) -> None:
        """Stop and start again on the same port with the same data."""
        await self.stop()
        await self.start(timeout)

    async def __aenter__(self) -> EmbeddedSynapse:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- HTTP -----------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One JSON request to the homeserver; raises HomeserverError unless 2xx."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(method, self.base_url + path, json=body, headers=headers) as response,
        ):
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = {}
            if not isinstance(data, dict):
                data = {"response": data}
            if response.status >= 300:
                raise HomeserverError(
                    f"{method} {path}: {response.status} {data.get('errcode')} "
                    f"{data.get('error', '')}".rstrip(),
                    status=response.status,
                    errcode=data.get("errcode"),
                )
            return data

    def default_password(self, localpart: str) -> str:
        """A password derived from the server's secret, so re-registering can log in."""
        key = self.shared_secret.encode()
        return hmac.new(key, localpart.encode(), hashlib.sha256).hexdigest()[:32]

    async def register(
        self,
        localpart: str,
        password: str | None = None,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> RegisteredUser:
        """Create a user with the shared secret; if it exists, log in with the password.

        Logging in an existing user never changes its admin flag.
        """
        password = password if password is not None else self.default_password(localpart)
        path = "/_synapse/admin/v1/register"
        nonce = (await self.request("GET", path))["nonce"]
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": registration_mac(self.shared_secret, nonce, localpart, password, admin=admin),
        }
        if displayname is not None:
            body["displayname"] = displayname
        try:
            data = await self.request("POST", path, body=body)
        except HomeserverError as err:
            if err.errcode != "M_USER_IN_USE":
                raise
            return await self.login(localpart, password)
        return RegisteredUser(data["user_id"], password, data["access_token"], data["device_id"])

    async def login(
        self, user: str, password: str, *, device_id: str | None = None
    ) -> RegisteredUser:
        """A password login (localpart or full id): a new device unless `device_id` is given."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        }
        if device_id is not None:
            body["device_id"] = device_id
        data = await self.request("POST", "/_matrix/client/v3/login", body=body)
        return RegisteredUser(data["user_id"], password, data["access_token"], data["device_id"])

    async def override_ratelimit(self, user_id: str, admin_token: str) -> None:
        """Lift every rate limit for `user_id` (a zero override disables them all)."""
        path = f"/_synapse/admin/v1/users/{quote(user_id, safe='')}/override_ratelimit"
        body = {"messages_per_second": 0, "burst_count": 0}
        await self.request("POST", path, token=admin_token, body=body)
