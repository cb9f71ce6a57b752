"""Logging in as the bot's one device, kept across restarts.

Matrix deduplicates transaction ids per access token and encrypted rooms
know the bot by its device keys, so the device id and token of the first
password login are kept in the database (bot_state) and restored next
time; a refused token leads to a fresh password login on the same device.
Never ``logout()`` on shutdown: that deletes the device and its keys.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import nio

from bot.runtime import cross_signing
from bot.transport.base import TransportError, UnknownToken
from bot.transport.matrix import checked, guarded
from config.settings import Settings
from storage import state
from storage.engine import Database

log = logging.getLogger(__name__)

DEVICE_KEY = "device_id"
TOKEN_KEY = "access_token"
PICKLE_KEY = "crypto_pickle_key"


class LoginFailed(Exception):
    """The bot cannot log in; the message says what the operator should do."""


def client_config(encryption: bool, pickle_key: str) -> nio.AsyncClientConfig:
    """429s and network failures come back to our loops instead of being retried forever."""
    return nio.AsyncClientConfig(
        max_limit_exceeded=0,
        max_timeouts=0,
        store_sync_tokens=False,
        encryption_enabled=encryption,
        pickle_key=pickle_key,
        request_timeout=90,
    )


def crypto_dir(settings: Settings) -> Path:
    """nio's key store; back it up with the database, or encrypted rooms go dark."""
    return settings.bot.data_dir / "crypto"


async def connect(settings: Settings, db: Database) -> nio.AsyncClient:
    """A logged-in client on the bot's remembered device, with its keys uploaded."""
    matrix = settings.matrix
    async with db.transaction() as session:
        device_id = await state.get_value(session, DEVICE_KEY)
        token = await state.get_value(session, TOKEN_KEY)
        pickle_key = await state.get_value(session, PICKLE_KEY)
        if pickle_key is None:
            pickle_key = secrets.token_urlsafe(32)
            await state.set_value(session, PICKLE_KEY, pickle_key)
    store = crypto_dir(settings)
    if matrix.encryption:
        store.mkdir(parents=True, exist_ok=True)
        if device_id and not (store / f"{matrix.user_id}_{device_id}.db").exists():
            log.warning("no key store for device %s: logging in as a new device", device_id)
            device_id, token = None, None
    client = nio.AsyncClient(
        matrix.homeserver,
        matrix.user_id,
        device_id=device_id or "",
        store_path=str(store) if matrix.encryption else "",
        config=client_config(matrix.encryption, pickle_key),
    )
    try:
        if matrix.access_token is not None:
            token = matrix.access_token.get_secret_value()
        if token:
            await _restore(client, settings, db, token)
        else:
            await password_login(client, settings, db, why="no access token is known")
        if client.olm is not None and client.should_upload_keys:
            checked(
                await guarded(client.keys_upload(), "upload keys"), nio.KeysUploadResponse, "keys"
            )
        await cross_signing.establish(client, settings, db)
    except BaseException:
        await client.close()
        raise
    log.info("logged in as %s on device %s", client.user_id, client.device_id)
    return client


async def _restore(client: nio.AsyncClient, settings: Settings, db: Database, token: str) -> None:
    """Use a known token; if the homeserver forgot it, log in again on the same device."""
    client.access_token = token  # whoami needs it before restore_login loads the store
    try:
        who = checked(await guarded(client.whoami(), "whoami"), nio.WhoamiResponse, "whoami")
    except UnknownToken:
        log.warning("the stored access token was refused: logging in again")
        client.access_token = ""
        await password_login(client, settings, db, why="the access token was refused")
        return
    if who.user_id != settings.matrix.user_id:
        raise LoginFailed(
            f"matrix.access_token belongs to {who.user_id}, not matrix.user_id "
            f"{settings.matrix.user_id}"
        )
    device_id = who.device_id or client.device_id
    if not device_id:
        raise LoginFailed("the homeserver did not say which device the access token is for")
    client.restore_login(who.user_id, device_id, token)
    async with db.transaction() as session:
        await state.set_value(session, DEVICE_KEY, device_id)


async def password_login(
    client: nio.AsyncClient, settings: Settings, db: Database, *, why: str
) -> None:
    """Password login on the remembered device (a new one the first time); remember both."""
    matrix = settings.matrix
    if matrix.password is None:
        raise LoginFailed(
            f"{why} and no matrix.password is set: "
            "set GRAPEVINE_MATRIX__PASSWORD, or a fresh GRAPEVINE_MATRIX__ACCESS_TOKEN"
        )
    try:
        response = await guarded(
            client.login(matrix.password.get_secret_value(), device_name=matrix.device_name),
            "login",
        )
        checked(response, nio.LoginResponse, "login")
    except TransportError as err:
        if err.errcode == "M_FORBIDDEN":
            raise LoginFailed(f"the homeserver refused the password for {matrix.user_id}") from err
        raise
    async with db.transaction() as session:
        await state.set_value(session, DEVICE_KEY, client.device_id)
        await state.set_value(session, TOKEN_KEY, client.access_token)


async def relogin(client: nio.AsyncClient, settings: Settings, db: Database) -> None:
    """After M_UNKNOWN_TOKEN mid-run: a fresh token for the same device."""
    client.access_token = ""
    await password_login(client, settings, db, why="the access token was refused")
    log.info("logged in again on device %s", client.device_id)
