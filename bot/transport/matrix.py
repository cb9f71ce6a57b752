"""The Transport on matrix-nio: every response checked, every refusal raised.

nio returns error objects instead of raising and, with the client config
that :mod:`bot.runtime.login` builds (``max_limit_exceeded=0, max_timeouts=0``),
lets 429s and network failures through to us: here they become
:class:`RateLimited`, :class:`UnknownToken` or :class:`TransportError`
(errcode :data:`NETWORK`), so callers decide how to wait.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import nio
from nio.api import Api, RoomPreset, RoomVisibility
from sqlalchemy import select

from bot.transport.base import (
    NETWORK,
    RateLimited,
    RoomInfo,
    RoomSpec,
    TransportError,
    UnknownToken,
)
from storage import state
from storage.engine import Database
from storage.models import BotState

log = logging.getLogger(__name__)

# errcodes we make up (besides NETWORK, for failures that never reached an answer)
E2E = "GV_E2E"
NOT_SYNCED = "GV_ROOM_NOT_SYNCED"

ENCRYPTION_STATE = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
# Room versions whose creators have unlimited power and must stay out of `users`.
CREATOR_POWER_VERSIONS = frozenset({"12", "org.matrix.hydra.11"})
DM_KEY = state.DIRECT_ROOM_KEY

R = TypeVar("R")


def error_from(response: nio.ErrorResponse, what: str) -> TransportError:
    """The exception for a nio error response (429, unknown token, anything else)."""
    transport = getattr(response, "transport_response", None)
    status = getattr(transport, "status", None)
    errcode = response.status_code or (f"HTTP_{status}" if status else "M_UNKNOWN")
    message = f"{what}: {response.message}"
    if errcode == "M_LIMIT_EXCEEDED" or status == 429:
        return RateLimited(response.retry_after_ms, message)
    if errcode == "M_UNKNOWN_TOKEN":
        return UnknownToken(errcode, message, status=status)
    return TransportError(errcode, message, status=status)


def checked(response: Any, expected: type[R], what: str) -> R:
    """``response`` if it is what we asked for, else the matching TransportError raised."""
    if isinstance(response, expected):
        return response
    if isinstance(response, nio.ErrorResponse):
        raise error_from(response, what)
    raise TransportError("M_UNKNOWN", f"{what}: unexpected {type(response).__name__}")


async def guarded(call: Any, what: str) -> Any:
    """Await a nio call, turning network failures and nio's local errors into TransportError."""
    try:
        return await call
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TransportError(NETWORK, f"{what}: {type(exc).__name__} {exc}") from exc
    except (
        nio.LocalProtocolError,
        nio.EncryptionError,
        nio.GroupEncryptionError,
        nio.OlmTrustError,
    ) as exc:
        raise TransportError(E2E, f"{what}: {exc}") from exc


async def raw_request(
    client: nio.AsyncClient, method: str, path: str, body: Mapping[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    """One client-API call with the client's token: the HTTP status and the JSON body.

    For what nio lacks; callers that must read a refusal's body (user-interactive
    auth answers 401 with its flows) look at it before :func:`refusal` raises.
    """
    headers = {"Authorization": f"Bearer {client.access_token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    data = json.dumps(body) if body is not None else None
    try:
        response = await client.send(method, path, data, headers)
        async with response:
            try:
                parsed = await response.json(content_type=None)
            except ValueError:
                parsed = {}
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TransportError(NETWORK, f"{method} {path}: {exc}") from exc
    return status, parsed if isinstance(parsed, dict) else {}


def refusal(method: str, path: str, status: int, parsed: Mapping[str, Any]) -> TransportError:
    """The exception for a refused raw call (429, unknown token, anything else)."""
    errcode = parsed.get("errcode") or f"HTTP_{status}"
    message = f"{method} {path}: {parsed.get('error', '')}"
    if errcode == "M_LIMIT_EXCEEDED" or status == 429:
        return RateLimited(parsed.get("retry_after_ms"), message)
    if errcode == "M_UNKNOWN_TOKEN":
        return UnknownToken(errcode, message, status=status)
    return TransportError(errcode, message, status=status)


class MatrixTransport:
    """:class:`bot.transport.base.Transport` over one logged-in nio client.

    ``db`` remembers direct-message rooms (bot_state ``dm:<user>``).
    ``encrypt_direct_rooms``: new DM rooms get encryption (off by default:
    bridges without end-to-bridge encryption could not read them).
    Rate limits up to ``rate_limit_budget`` seconds per call are waited out
    here; longer ones raise :class:`RateLimited` for the caller to schedule.
    """

    def __init__(
        self,
        client: nio.AsyncClient,
        db: Database,
        *,
        encrypt_direct_rooms: bool = False,
        room_sync_wait: float = 10.0,
        rate_limit_budget: float = 30.0,
    ) -> None:
        self.client = client
        self.db = db
        self.encrypt_direct_rooms = encrypt_direct_rooms
        self.room_sync_wait = room_sync_wait
        self.rate_limit_budget = rate_limit_budget
        self._default_version: str | None = None

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]

    # -- low level ----------------------------------------------------------------

    async def _call(self, make: Callable[[], Awaitable[Any]], what: str) -> Any:
        """A nio call, made again after short rate limits (up to ``rate_limit_budget`` s)."""
        waited = 0.0
        while True:
            response = await guarded(make(), what)
            first = response[0] if isinstance(response, tuple) else response
            if not isinstance(first, nio.ErrorResponse):
                return response
            error = error_from(first, what)
            if not isinstance(error, RateLimited):
                return response
            waited = await self._wait_out(error, waited)

    async def _wait_out(self, error: RateLimited, waited: float) -> float:
        """Sleep as the homeserver asks, or raise ``error`` once the budget is spent."""
        wait = (error.retry_after_ms or 1000) / 1000
        if waited + wait > self.rate_limit_budget:
            raise error
        log.info("rate-limited: waiting %.1f s", wait)
        await asyncio.sleep(wait)
        return waited + wait

    async def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A raw client-API call for what nio lacks (join with via, capabilities, account data)."""
        waited = 0.0
        while True:
            try:
                return await self._request_once(method, path, body)
            except RateLimited as error:
                waited = await self._wait_out(error, waited)

    async def _request_once(
        self, method: str, path: str, body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        status, parsed = await raw_request(self.client, method, path, body)
        if status >= 300:
            raise refusal(method, path, status, parsed)
        return parsed

    # -- sending ------------------------------------------------------------------

    async def send(
        self,
        room_id: str,
        content: Mapping[str, Any],
        *,
        txn_id: str | None = None,
        event_type: str = "m.room.message",
    ) -> str:
        client = self.client
        body = dict(content)
        if client.olm is not None and room_id not in client.rooms:
            # nio can only send (encrypted or not) to rooms a sync has shown it.
            if await self._is_encrypted(room_id):
                await self._wait_for_room(room_id)
            else:
                return await self._send_plain(room_id, event_type, body, txn_id)
        await self._share_key_with_newcomers(room_id)
        response = await self._call(
            lambda: client.room_send(
                room_id, event_type, body, tx_id=txn_id, ignore_unverified_devices=True
            ),
            f"send {event_type} to {room_id}",
        )
        event_id: str = checked(response, nio.RoomSendResponse, f"send to {room_id}").event_id
        return event_id

    async def _share_key_with_newcomers(self, room_id: str) -> None:
        """Give the room's current key to devices that joined after it was shared.

        nio shares a room key only when it has none to reuse, so someone who joins an
        encrypted room later (a party entering a case room) could not read the bot's
        next messages. Devices already holding it are skipped by nio itself.
        """
        client = self.client
        room = client.rooms.get(room_id)
        if client.olm is None or room is None or not room.encrypted:
            return
        session = client.olm.outbound_group_sessions.get(room_id)
        if session is None or session.expired or not session.shared:
            return  # room_send will share a fresh key with everyone
        if client.should_query_keys:
            await self._call(lambda: client.keys_query(), "query keys")
        have = set(session.users_shared_with) | set(session.users_ignored)
        devices = client.device_store
        missing = [
            device for user in room.users for device in devices.active_user_devices(user)
            if (user, device.id) not in have and device.id != client.device_id
        ]
        if missing:
            await self._call(
                lambda: client.share_group_session(room_id, ignore_unverified_devices=True),
                f"share the room key in {room_id}",
            )

    async def _send_plain(
        self, room_id: str, event_type: str, content: dict[str, Any], txn_id: str | None
    ) -> str:
        method, path, data = Api.room_send(
            self.client.access_token, room_id, event_type, content, txn_id or uuid.uuid4().hex
        )
        response = await self._call(
            lambda: self.client._send(nio.RoomSendResponse, method, path, data, (room_id,)),
            f"send {event_type} to {room_id}",
        )
        event_id: str = checked(response, nio.RoomSendResponse, f"send to {room_id}").event_id
        return event_id

    async def _is_encrypted(self, room_id: str) -> bool:
        return await self.get_state(room_id, "m.room.encryption") is not None

    async def _wait_for_room(self, room_id: str) -> None:
        deadline = time.monotonic() + self.room_sync_wait
        while room_id not in self.client.rooms:
            if time.monotonic() > deadline:
                raise TransportError(NOT_SYNCED, f"{room_id} has not come down a sync yet")
            await asyncio.sleep(0.1)

    async def upload(self, data: bytes, mime: str, filename: str, *, room_id: str | None = None
                     ) -> dict[str, Any]:
        encrypt = room_id is not None and await self._is_encrypted(room_id)
        response, keys = await self._call(
            lambda: self.client.upload(
                io.BytesIO(data), content_type=mime, filename=filename, filesize=len(data),
                encrypt=encrypt,
            ),
            f"upload {filename}",
        )
        uri: str = checked(response, nio.UploadResponse, f"upload {filename}").content_uri
        if encrypt and keys:
            # Clients drop an encrypted room's media event that has a plain url.
            return {"file": {**keys, "url": uri, "mimetype": mime}}
        return {"url": uri}

    # -- rooms --------------------------------------------------------------------

    async def create_room(self, spec: RoomSpec) -> str:
        initial_state: list[dict[str, Any]] = [dict(e) for e in spec.initial_state]
        if spec.restricted_to:
            allow = [{"type": "m.room_membership", "room_id": r} for r in spec.restricted_to]
            initial_state.append(
                {
                    "type": "m.room.join_rules",
                    "state_key": "",
                    "content": {"join_rule": "restricted", "allow": allow},
                }
            )
        if spec.encrypted:
            initial_state.append(dict(ENCRYPTION_STATE))
        # Not trusted_private_chat for DMs: in v12 it makes every invitee a creator.
        preset = RoomPreset.public_chat if spec.public else RoomPreset.private_chat
        power = await self._power_override(spec)
        response = await self._call(
            lambda: self.client.room_create(
                visibility=RoomVisibility.private,
                alias=spec.alias_localpart,
                name=spec.name,
                topic=spec.topic,
                federate=spec.federate,
                is_direct=spec.direct,
                preset=preset,
                invite=list(spec.invite),
                initial_state=initial_state,
                power_level_override=power,
                space=spec.space,
            ),
            f"create room {spec.name!r}",
        )
        room_id: str = checked(response, nio.RoomCreateResponse, "create room").room_id
        return room_id

    async def _power_override(self, spec: RoomSpec) -> dict[str, Any] | None:
        """Power levels to merge into Synapse's defaults, never listing a v12 creator."""
        override: dict[str, Any] = dict(spec.power_overrides)
        users = {**override.get("users", {}), **spec.power_users}
        users.pop(self.user_id, None)
        if users:
            if await self._default_room_version() not in CREATOR_POWER_VERSIONS:
                users[self.user_id] = 100  # an older room: "users" replaces the creator's 100
            override["users"] = users
        else:
            override.pop("users", None)
        return override or None

    async def _default_room_version(self) -> str:
        if self._default_version is None:
            data = await self.request("GET", "/_matrix/client/v3/capabilities")
            versions = data.get("capabilities", {}).get("m.room_versions", {})
            self._default_version = str(versions.get("default", "1"))
        return self._default_version

    async def put_state(
        self, room_id: str, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> str:
        response = await self._call(
            lambda: self.client.room_put_state(room_id, event_type, dict(content), state_key),
            f"put {event_type} in {room_id}",
        )
        event_id: str = checked(response, nio.RoomPutStateResponse, f"put {event_type}").event_id
        return event_id

    async def get_state(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        response = await self._call(
            lambda: self.client.room_get_state_event(room_id, event_type, state_key),
            f"get {event_type} in {room_id}",
        )
        if isinstance(response, nio.ErrorResponse) and response.status_code == "M_NOT_FOUND":
            return None
        content: dict[str, Any] = checked(
            response, nio.RoomGetStateEventResponse, f"get {event_type}"
        ).content
        return content

    async def room_state(self, room_id: str) -> list[dict[str, Any]]:
        response = await self._call(
            lambda: self.client.room_get_state(room_id), f"state of {room_id}"
        )
        events = checked(response, nio.RoomGetStateResponse, f"state of {room_id}").events
        return [
            {
                "type": e.get("type"),
                "state_key": e.get("state_key", ""),
                "sender": e.get("sender"),
                "content": e.get("content", {}),
                "event_id": e.get("event_id"),
            }
            for e in events
        ]

    async def room_info(self, room_id: str) -> RoomInfo:
        events = await self.room_state(room_id)
        name: str | None = None
        encrypted = False
        joined = 0
        is_direct = False
        for event in events:
            kind, content = event["type"], event["content"]
            if kind == "m.room.name":
                name = content.get("name") or None
            elif kind == "m.room.encryption":
                encrypted = True
            elif kind == "m.room.member":
                if content.get("membership") == "join":
                    joined += 1
                if event["state_key"] == self.user_id:
                    is_direct = bool(content.get("is_direct"))
        return RoomInfo(
            room_id, name, joined, encrypted, is_direct or await self.remembers_direct(room_id)
        )

    async def remembers_direct(self, room_id: str) -> bool:
        """One of the DM rooms this bot made (remembered as bot_state ``dm:<user>``)."""
        query = select(BotState.key).where(
            BotState.key.startswith(DM_KEY), BotState.value == room_id
        )
        async with self.db.transaction() as session:
            return await session.scalar(query.limit(1)) is not None

    async def direct_rooms_among(self, room_ids: Sequence[str]) -> set[str]:
        """Which of ``room_ids`` are DM rooms this bot made, in one query (a sync batch
        of newly joined rooms asks once, not once a room)."""
        ids = list(room_ids)
        found: set[str] = set()
        async with self.db.transaction() as session:
            for start in range(0, len(ids), 500):  # within every database's parameter limit
                query = select(BotState.value).where(
                    BotState.key.startswith(DM_KEY), BotState.value.in_(ids[start:start + 500])
                )
                found.update(str(value) for value in await session.scalars(query))
        return found

    async def members(self, room_id: str) -> dict[str, str | None]:
        response = await self._call(
            lambda: self.client.joined_members(room_id), f"members of {room_id}"
        )
        members = checked(response, nio.JoinedMembersResponse, f"members of {room_id}").members
        return {m.user_id: m.display_name for m in members}

    async def invite(self, room_id: str, user_id: str) -> None:
        response = await self._call(
            lambda: self.client.room_invite(room_id, user_id), f"invite {user_id} to {room_id}"
        )
        checked(response, nio.RoomInviteResponse, f"invite to {room_id}")

    async def kick(self, room_id: str, user_id: str, reason: str = "") -> None:
        response = await self._call(
            lambda: self.client.room_kick(room_id, user_id, reason or None), f"kick from {room_id}"
        )
        checked(response, nio.RoomKickResponse, f"kick from {room_id}")

    async def redact(self, room_id: str, event_id: str, reason: str = "") -> None:
        response = await self._call(
            lambda: self.client.room_redact(room_id, event_id, reason or None),
            f"redact in {room_id}",
        )
        checked(response, nio.RoomRedactResponse, f"redact in {room_id}")

    async def join(self, room: str, via: Sequence[str] = ()) -> str:
        """Join with ``via`` servers: v12 room ids carry no server to ask."""
        query = urlencode([("via", s) for s in via] + [("server_name", s) for s in via])
        path = f"/_matrix/client/v3/join/{quote(room, safe='')}" + (f"?{query}" if query else "")
        data = await self.request("POST", path, {})
        room_id = data.get("room_id")
        if not isinstance(room_id, str):
            raise TransportError("M_UNKNOWN", f"join {room}: no room_id in the answer")
        return room_id

    async def leave(self, room_id: str) -> None:
        response = await self._call(lambda: self.client.room_leave(room_id), f"leave {room_id}")
        checked(response, nio.RoomLeaveResponse, f"leave {room_id}")

    async def resolve_alias(self, alias: str) -> str | None:
        response = await self._call(
            lambda: self.client.room_resolve_alias(alias), f"resolve {alias}"
        )
        if isinstance(response, nio.ErrorResponse) and response.status_code == "M_NOT_FOUND":
            return None
        room_id: str = checked(response, nio.RoomResolveAliasResponse, f"resolve {alias}").room_id
        return room_id

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        response = await self._call(
            lambda: self.client.room_messages(room_id, limit=limit), f"history of {room_id}"
        )
        chunk = checked(response, nio.RoomMessagesResponse, f"history of {room_id}").chunk
        return [{**event.source, "room_id": room_id} for event in chunk]

    # -- direct messages ---------------------------------------------------------------

    async def direct_room(self, user_id: str) -> str:
        key = DM_KEY + user_id
        async with self.db.transaction() as session:
            remembered = await state.get_value(session, key)
        if remembered is not None and await self._still_direct(remembered, user_id):
            return remembered
        room_id = await self.create_room(
            RoomSpec(
                name="",
                invite=(user_id,),
                direct=True,
                encrypted=self.encrypt_direct_rooms and self.client.olm is not None,
            )
        )
        async with self.db.transaction() as session:
            await state.set_value(session, key, room_id)
        log.debug("made direct room %s", room_id)
        try:
            await self._note_direct(user_id, room_id)
        except TransportError as err:
            log.warning("could not update m.direct: %s", err.errcode)
        return room_id

    async def _still_direct(self, room_id: str, user_id: str) -> bool:
        """The bot still in the room and the user joined or invited there."""
        try:
            member = await self.get_state(room_id, "m.room.member", user_id)
        except TransportError as err:
            if err.errcode in ("M_FORBIDDEN", "M_NOT_FOUND"):
                return False
            raise
        return member is not None and member.get("membership") in ("join", "invite")

    async def _note_direct(self, user_id: str, room_id: str) -> None:
        """Add the room to the bot's m.direct so clients show it as a DM."""
        path = f"/_matrix/client/v3/user/{quote(self.user_id, safe='')}/account_data/m.direct"
        try:
            direct = await self.request("GET", path)
        except TransportError as err:
            if err.errcode != "M_NOT_FOUND":
                raise
            direct = {}
        rooms = [r for r in direct.get(user_id, []) if r != room_id]
        await self.request("PUT", path, {**direct, user_id: [*rooms, room_id]})
