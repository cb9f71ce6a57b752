"""The bot's cross-signing identity, so Element trusts its device without anyone's help.

Element is making cross-signing mandatory ("exclude insecure devices",
MSC4153): a device its owner has not signed gets no room keys and its
messages are hidden. matrix-nio has no cross-signing (matrix-nio#229), so
this module does the little the bot needs: three ed25519 keys (master,
self-signing, user-signing) made once, published with
``/keys/device_signing/upload`` and kept in the data directory sealed with
``matrix.cross_signing_key``; on every start the current device is signed
with the self-signing key (``/keys/signatures/upload``). A fresh login or a
lost crypto store is therefore signed again with no one's help.

Signing uses PyCA ``cryptography`` (ed25519, and Fernet for the file at
rest; already a dependency, and vodozemac's Python binding exposes no
free-standing ed25519 signing key) over ``canonicaljson`` (matrix-org's
encoder, the one Synapse checks signatures with). Nothing here ever leaves
the bot but public keys and signatures.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import canonicaljson
import nio
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot.transport.base import TransportError
from bot.transport.matrix import raw_request, refusal
from config.settings import Settings
from storage import state
from storage.engine import Database

log = logging.getLogger(__name__)

KEY_FILE = "cross-signing.keys"
USAGES = ("master", "self_signing", "user_signing")
QUERY = "/_matrix/client/v3/keys/query"
UPLOAD_KEYS = "/_matrix/client/v3/keys/device_signing/upload"
UPLOAD_SIGNATURES = "/_matrix/client/v3/keys/signatures/upload"


class SealedKeysUnreadable(Exception):
    """The key file exists but ``matrix.cross_signing_key`` does not open it."""


@dataclass(frozen=True)
class Identity:
    """The three private keys; ``public(usage)`` is what the homeserver publishes."""

    master: Ed25519PrivateKey
    self_signing: Ed25519PrivateKey
    user_signing: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Identity:
        return cls(*(Ed25519PrivateKey.generate() for _ in USAGES))

    def key(self, usage: str) -> Ed25519PrivateKey:
        return {"master": self.master, "self_signing": self.self_signing,
                "user_signing": self.user_signing}[usage]

    def public(self, usage: str) -> str:
        return public_key(self.key(usage))


@dataclass(frozen=True)
class Outcome:
    """What start-up achieved, in words for the log and for ``!status``."""

    signed: bool
    detail: str


def unpadded(data: bytes) -> str:
    """Matrix's base64: the standard alphabet without ``=`` padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def public_key(key: Ed25519PrivateKey) -> str:
    return unpadded(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def canonical(obj: dict[str, Any]) -> bytes:
    """The bytes a Matrix signature covers: the object minus ``signatures`` and ``unsigned``."""
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return bytes(canonicaljson.encode_canonical_json(stripped))


def sign(obj: dict[str, Any], user_id: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``obj`` that also carries ``key``'s signature (key id ``ed25519:<public>``)."""
    signature = unpadded(key.sign(canonical(obj)))
    signatures = {u: dict(s) for u, s in (obj.get("signatures") or {}).items()}
    signatures.setdefault(user_id, {})[f"ed25519:{public_key(key)}"] = signature
    return {**obj, "signatures": signatures}


def key_object(identity: Identity, user_id: str, usage: str) -> dict[str, Any]:
    """A published cross-signing key; the two sub-keys are signed by the master key."""
    public = identity.public(usage)
    obj: dict[str, Any] = {"user_id": user_id, "usage": [usage],
                           "keys": {f"ed25519:{public}": public}}
    return obj if usage == "master" else sign(obj, user_id, identity.master)


# -- the sealed file ------------------------------------------------------------------------


def _fernet(secret: str) -> Fernet:
    """A Fernet key stretched from the configured secret (a long random string)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"grapevine cross-signing keys").derive(secret.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(identity: Identity, secret: str) -> bytes:
    seeds = {usage: unpadded(identity.key(usage).private_bytes_raw()) for usage in USAGES}
    return _fernet(secret).encrypt(json.dumps(seeds).encode("utf-8"))


def unseal(sealed: bytes, secret: str) -> Identity:
    try:
        seeds = json.loads(_fernet(secret).decrypt(sealed))
    except (InvalidToken, ValueError) as exc:
        raise SealedKeysUnreadable(str(exc)) from exc
    return Identity(*(Ed25519PrivateKey.from_private_bytes(
        base64.b64decode(seeds[usage] + "=" * (-len(seeds[usage]) % 4))) for usage in USAGES))


def key_path(settings: Settings) -> Path:
    return settings.bot.data_dir / KEY_FILE


def load_or_create(path: Path, secret: str) -> Identity:
    """The identity in ``path``, or a new one written there first (so a crash loses nothing)."""
    if path.exists():
        return unseal(path.read_bytes(), secret)
    identity = Identity.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(seal(identity, secret))
    os.chmod(partial, 0o600)
    partial.replace(path)
    log.info("made a new cross-signing identity in %s: back it up with the data dir", path)
    return identity


# -- the homeserver side --------------------------------------------------------------------


async def _post(client: nio.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, parsed = await raw_request(client, "POST", path, body)
    if status >= 300:
        raise refusal("POST", path, status, parsed)
    return parsed


def _published_master(keys: dict[str, Any], user_id: str) -> str | None:
    master = (keys.get("master_keys") or {}).get(user_id) or {}
    values = list((master.get("keys") or {}).values())
    return str(values[0]) if values else None


async def _upload_identity(
    client: nio.AsyncClient, settings: Settings, identity: Identity
) -> str | None:
    """Publish the three public keys; None when done, else what the operator should do."""
    user_id = str(client.user_id)
    body: dict[str, Any] = {f"{u}_key": key_object(identity, user_id, u) for u in USAGES}
    status, parsed = await raw_request(client, "POST", UPLOAD_KEYS, body)
    if status == 401 and "flows" in parsed:
        # Replacing published keys needs user-interactive auth: the bot's password.
        password = settings.matrix.password
        if password is None:
            return ("the homeserver wants the bot's password to publish its cross-signing keys: "
                    "start it once with GRAPEVINE_MATRIX__PASSWORD set")
        body["auth"] = {"type": "m.login.password", "session": parsed.get("session"),
                        "identifier": {"type": "m.id.user", "user": user_id},
                        "password": password.get_secret_value()}
        status, parsed = await raw_request(client, "POST", UPLOAD_KEYS, body)
    if status >= 300:
        if status == 401:
            return "the homeserver refused the bot's password for publishing cross-signing keys"
        raise refusal("POST", UPLOAD_KEYS, status, parsed)
    log.debug("published the cross-signing keys (master %s)", identity.public("master"))
    return None


async def _sign_device(client: nio.AsyncClient, identity: Identity,
                       keys: dict[str, Any]) -> str | None:
    """Sign this device's published keys with the self-signing key; None when done."""
    user_id, device_id = str(client.user_id), str(client.device_id)
    device = ((keys.get("device_keys") or {}).get(user_id) or {}).get(device_id)
    own = client.olm.account.identity_keys["ed25519"] if client.olm is not None else None
    if not device or own is None or device.get("keys", {}).get(f"ed25519:{device_id}") != own:
        return f"the homeserver does not list this device's own keys ({device_id})"
    key_id = f"ed25519:{identity.public('self_signing')}"
    if key_id in (device.get("signatures") or {}).get(user_id, {}):
        return None
    signed = sign({k: v for k, v in device.items() if k != "unsigned"}, user_id,
                  identity.self_signing)
    failures = (await _post(client, UPLOAD_SIGNATURES,
                            {user_id: {device_id: signed}})).get("failures") or {}
    if failures:
        raise TransportError("M_UNKNOWN", f"signing device {device_id}: {failures}")
    log.debug("signed device %s with the self-signing key", device_id)
    return None


async def ensure(client: nio.AsyncClient, settings: Settings) -> Outcome:
    """Publish the identity if the homeserver lacks it, and sign this device with it."""
    secret = settings.matrix.cross_signing_key
    device = client.device_id
    if client.olm is None:
        return Outcome(False, "encryption is off")
    if secret is None:
        return Outcome(False, "no matrix.cross_signing_key is set: set "
                              "GRAPEVINE_MATRIX__CROSS_SIGNING_KEY to a long random secret")
    path = key_path(settings)
    try:
        identity = load_or_create(path, secret.get_secret_value())
    except SealedKeysUnreadable:
        return Outcome(False, f"matrix.cross_signing_key does not open {path}: set the key it "
                              "was made with, or move the file away to make a new identity")
    user_id = str(client.user_id)
    keys = await _post(client, QUERY, {"device_keys": {user_id: []}})
    if _published_master(keys, user_id) != identity.public("master"):
        problem = await _upload_identity(client, settings, identity)
        if problem is not None:
            return Outcome(False, problem)
        keys = await _post(client, QUERY, {"device_keys": {user_id: []}})
    problem = await _sign_device(client, identity, keys)
    if problem is not None:
        return Outcome(False, problem)
    return Outcome(True, f"device {device} is signed by the bot's cross-signing key")


def sentence(outcome: Outcome, device_id: str) -> str:
    """The line ``!status`` shows: whether this device is cross-signed, and if not, why."""
    if outcome.signed:
        return f"Device {device_id}: cross-signed."
    return f"Device {device_id}: NOT cross-signed ({outcome.detail})."


async def establish(client: nio.AsyncClient, settings: Settings, db: Database) -> Outcome:
    """:func:`ensure` at start-up: a failure is logged and reported, never fatal."""
    try:
        outcome = await ensure(client, settings)
    except TransportError as err:
        outcome = Outcome(False, f"the homeserver refused ({err.errcode}); it is tried again "
                                 "at the next start")
    if outcome.signed:
        log.info("cross-signing: %s", outcome.detail)
    elif client.olm is not None:
        log.warning("cross-signing: the bot's device is not cross-signed: %s; Element clients "
                    "that exclude insecure devices will not talk to it", outcome.detail)
    async with db.transaction() as session:
        await state.set_value(session, state.CROSS_SIGNING_KEY,
                              sentence(outcome, str(client.device_id)))
    return outcome
