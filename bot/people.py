"""`Person`: a simulated human with an ordinary Matrix client, for the demo and the tests.

Each Person is a real matrix-nio client (with end-to-end encryption when it is
given a store directory, as Element users have), logged in with a token from
the homeserver's registration API. Every timeline event its syncs bring is kept
in `events`, so a wait that starts late still sees a reply that came early.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomInviteResponse,
    RoomKickResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomPutStateResponse,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
    UpdateReceiptMarkerResponse,
)
from nio.api import RoomPreset, RoomVisibility
from nio.responses import EmptyResponse

from bot.homeserver import AppService, EmbeddedSynapse, HomeserverError, RegisteredUser

EventDict = dict[str, Any]
Predicate = Callable[[EventDict], bool]

# Long timelines per sync so that a burst of bot replies never arrives as a gap.
SYNC_FILTER: dict[str, Any] = {"room": {"timeline": {"limit": 200}}}
POLL_SECONDS = 1.0
# Room versions where creators are outside `users` in m.room.power_levels.
V12_AND_LATER_VERSIONS = frozenset({"12", "org.matrix.hydra.11"})


class MatrixRequestFailed(AssertionError):
    """A Person's request was refused; `errcode` says why (e.g. M_FORBIDDEN)."""

    def __init__(self, message: str, errcode: str | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


def _checked(response: Any, expected: type | tuple[type, ...], what: str) -> Any:
    if isinstance(response, expected):
        return response
    errcode = getattr(response, "status_code", None)
    message = getattr(response, "message", None) or repr(response)
    raise MatrixRequestFailed(f"{what} failed: {errcode} {message}", errcode)


def describe(event: EventDict) -> str:
    """One line per event for assertion messages."""
    content = event.get("content", {})
    if event.get("type") == "m.room.encrypted":
        return f"{event.get('sender')} m.room.encrypted: (could not decrypt)"
    text = content.get("body") or content.get("membership") or content.get("m.relates_to") or ""
    return f"{event.get('sender')} {event.get('type')}: {str(text)[:120]!r}"


class Person:
    """A human in the tests. Create with `await Person.connect(...)`; `close()` at the end."""

    def __init__(
        self, user: RegisteredUser, homeserver_url: str, *, store_dir: Path | None = None
    ) -> None:
        self.user = user
        self.user_id = user.user_id
        self.server_name = user.user_id.split(":", 1)[1]
        if store_dir is not None:
            store_dir.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=store_dir is not None, store_sync_tokens=False
        )
        self.client = AsyncClient(
            homeserver_url,
            user.user_id,
            device_id=user.device_id,
            store_path=str(store_dir) if store_dir is not None else "",
            config=config,
        )
        self.events: list[EventDict] = []
        self.invites: dict[str, list[EventDict]] = {}  # pending: room id -> invite state
        self.receipts: set[tuple[str, str, str]] = set()  # (room_id, event_id, user_id)
        self._start = 0
        self._last_sent: dict[str, str] = {}
        self._sync_lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, user: RegisteredUser, homeserver_url: str, *, store_dir: Path | None = None
    ) -> Person:
        """Log in with the token and catch up; history from before now is kept but not waited on."""
        person = cls(user, homeserver_url, store_dir=store_dir)
        person.client.restore_login(user.user_id, user.device_id, user.access_token)
        await person.sync(timeout=0)
        person._start = len(person.events)
        return person

    async def close(self) -> None:
        await self.client.close()

    def __repr__(self) -> str:
        return f"Person({self.user_id})"

    # -- syncing ----------------------------------------------------------------

    async def sync(self, timeout: float = 0.0) -> None:
        """One /sync (long-polling up to `timeout` s), recording every event it brings."""
        async with self._sync_lock:
            client = self.client
            response = _checked(
                await client.sync(timeout=int(timeout * 1000), sync_filter=SYNC_FILTER),
                SyncResponse,
                f"{self.user_id} sync",
            )
            for room_id, joined in response.rooms.join.items():
                self.invites.pop(room_id, None)
                for event in joined.timeline.events:
                    self.events.append({**event.source, "room_id": room_id})
                for ephemeral in joined.ephemeral:
                    for receipt in getattr(ephemeral, "receipts", ()):
                        self.receipts.add((room_id, receipt.event_id, receipt.user_id))
            for room_id, left in response.rooms.leave.items():  # kicked, banned, or left
                self.invites.pop(room_id, None)
                for event in left.timeline.events:
                    self.events.append({**event.source, "room_id": room_id})
            for room_id, invited in response.rooms.invite.items():
                self.invites[room_id] = [getattr(e, "source", {}) for e in invited.invite_state]
            if client.olm is not None:
                await self._keep_keys_current()

    async def _keep_keys_current(self) -> None:
        """What nio's sync_forever does between syncs, so encrypted rooms work."""
        client = self.client
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    async def mark(self) -> int:
        """A position in `events` after everything the server has now: pass it as `since`."""
        await self.sync(timeout=0)
        return len(self.events)

    # -- waiting ----------------------------------------------------------------

    async def wait_for_message(
        self,
        room_id: str,
        *,
        sender: str | None = None,
        contains: str | None = None,
        predicate: Predicate | None = None,
        event_type: str = "m.room.message",
        after: str | None = None,
        since: int | None = None,
        timeout: float = 15.0,
    ) -> EventDict:
        """The first matching event in the room from someone else (or from `sender`).

        Only events after a starting point count: the event `after`, else the
        position `since` (from `mark()`), else this Person's last message in
        the room, else the moment the Person connected.
        """

        def matches(event: EventDict) -> bool:
            if event.get("type") != event_type:
                return False
            if sender is None and event.get("sender") == self.user_id:
                return False
            if sender is not None and event.get("sender") != sender:
                return False
            body = event.get("content", {}).get("body")
            if contains is not None and (not isinstance(body, str) or contains not in body):
                return False
            return predicate is None or predicate(event)

        anchor = after
        if anchor is None and since is None:
            anchor = self._last_sent.get(room_id)
        start = self._start if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            candidates = self._events_after(room_id, anchor, start)
            for event in candidates:
                if matches(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    self._timeout_report(room_id, candidates, sender, contains, timeout)
                )
            await self.sync(timeout=min(remaining, POLL_SECONDS))

    def _events_after(self, room_id: str, anchor: str | None, start: int) -> list[EventDict]:
        in_room = [e for e in self.events[start:] if e.get("room_id") == room_id]
        if anchor is None:
            return in_room
        for index, event in enumerate(in_room):
            if event.get("event_id") == anchor:
                return in_room[index + 1 :]
        return []  # the anchor itself has not come down the sync yet

    def _timeout_report(
        self,
        room_id: str,
        seen: list[EventDict],
        sender: str | None,
        contains: str | None,
        timeout: float,
    ) -> str:
        wanted = f"sender={sender!r} contains={contains!r}"
        lines = [describe(e) for e in seen[-20:]] or ["(nothing)"]
        return (
            f"{self.user_id} waited {timeout:.0f} s in {room_id} for a message with {wanted}; "
            f"saw {len(seen)} events there:\n  " + "\n  ".join(lines)
        )

    async def wait_for_invite(
        self, timeout: float = 15.0, *, room_id: str | None = None, joined: bool = False
    ) -> str:
        """The id of a room this Person has been invited to (and not yet joined).

        With `joined=True` the invite is accepted before returning.
        """
        deadline = time.monotonic() + timeout
        while True:
            pending = [r for r in self.invites if room_id is None or r == room_id]
            if pending:
                if joined:
                    await self._accept(pending[0], deadline)
                return pending[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.user_id} got no invite{' to ' + room_id if room_id else ''} "
                    f"in {timeout:.0f} s; pending invites: {sorted(self.invites)}"
                )
            await self.sync(timeout=min(remaining, POLL_SECONDS))

    async def _accept(self, room_id: str, deadline: float) -> None:
        """Join a room this Person was invited to.

        Over federation the invite can reach this Person's server before the inviting
        server has stored it, which then refuses the join for a moment: try again.
        """
        while True:
            try:
                await self.join(room_id)
                return
            except MatrixRequestFailed as err:
                if err.errcode != "M_FORBIDDEN" or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def wait_for_receipt(
        self, room_id: str, event_id: str, user_id: str, timeout: float = 15.0
    ) -> None:
        """Until this Person's client hears that `user_id` has read up to `event_id`."""
        deadline = time.monotonic() + timeout
        while (room_id, event_id, user_id) not in self.receipts:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.user_id} saw no receipt from {user_id} for {event_id}")
            await self.sync(timeout=min(remaining, POLL_SECONDS))

    # -- rooms -------------------------------------------------------------------

    async def create_room(
        self,
        *,
        name: str | None = None,
        invite: Iterable[str] = (),
        is_direct: bool = False,
        encrypted: bool = False,
        power_users: Mapping[str, int] | None = None,
        alias: str | None = None,
        topic: str | None = None,
        public: bool = False,
        space: bool = False,
        initial_state: Iterable[EventDict] = (),
    ) -> str:
        """A new room created by this Person (so, in v12, with unlimited power in it)."""
        state = list(initial_state)
        if encrypted:
            state.append(
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            )
        users = {u: level for u, level in (power_users or {}).items() if u != self.user_id}
        if public:
            preset = RoomPreset.public_chat
        elif is_direct:
            preset = RoomPreset.trusted_private_chat
        else:
            preset = RoomPreset.private_chat
        response = await self.client.room_create(
            visibility=RoomVisibility.private,
            alias=alias,
            name=name,
            topic=topic,
            is_direct=is_direct,
            preset=preset,
            invite=list(invite),
            initial_state=state,
            power_level_override={"users": users} if users else None,
            space=space,
        )
        room_id: str = _checked(response, RoomCreateResponse, f"{self.user_id} create room").room_id
        await self.sync(timeout=0)
        return room_id

    async def create_dm(self, other: str, *, encrypted: bool = True) -> str:
        """A direct-message room the way Element makes one: encrypted, is_direct, m.direct set."""
        room_id = await self.create_room(invite=[other], is_direct=True, encrypted=encrypted)
        path = f"/_matrix/client/v3/user/{quote(self.user_id, safe='')}/account_data/m.direct"
        await self._request("PUT", path, {other: [room_id]}, "set m.direct")
        return room_id

    async def join(self, room: str, *, via: Iterable[str] | None = None) -> str:
        """Join by id or alias; `via` defaults to this Person's own server (v12 ids need one)."""
        servers = list(via) if via is not None else [self.server_name]
        query = urlencode([("via", s) for s in servers] + [("server_name", s) for s in servers])
        path = f"/_matrix/client/v3/join/{quote(room, safe='')}?{query}"
        response = await self.client._send(JoinResponse, "POST", path, "{}")
        room_id: str = _checked(response, JoinResponse, f"{self.user_id} join {room}").room_id
        await self.sync(timeout=0)
        return room_id

    async def leave(self, room_id: str) -> None:
        _checked(
            await self.client.room_leave(room_id), RoomLeaveResponse, f"{self.user_id} leave"
        )

    async def invite(self, room_id: str, user_id: str) -> None:
        response = await self.client.room_invite(room_id, user_id)
        _checked(response, RoomInviteResponse, f"{self.user_id} invite {user_id}")

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        response = await self.client.room_kick(room_id, user_id, reason)
        _checked(response, RoomKickResponse, f"{self.user_id} kick {user_id}")

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> EventDict | None:
        """The content of one state event, or None when the room has none."""
        response = await self.client.room_get_state_event(room_id, event_type, state_key)
        # nio 0.26 hands some error bodies back as a *successful* response's content.
        content = getattr(response, "content", None)
        errcode = content.get("errcode") if isinstance(content, dict) else None
        errcode = errcode or getattr(response, "status_code", None)
        if errcode == "M_NOT_FOUND":
            return None
        if errcode is not None:
            raise MatrixRequestFailed(
                f"{self.user_id} read {event_type} in {room_id}: {errcode} {content or response}",
                errcode,
            )
        checked: EventDict = _checked(response, RoomGetStateEventResponse, "read state").content
        return checked

    async def put_state(
        self, room_id: str, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> str:
        response = await self.client.room_put_state(room_id, event_type, dict(content), state_key)
        checked = _checked(response, RoomPutStateResponse, f"{self.user_id} set {event_type}")
        event_id: str = checked.event_id
        return event_id

    async def set_power_level(self, room_id: str, user_id: str, level: int) -> None:
        """Read-modify-write the whole power-levels event (room creators cannot be listed)."""
        if user_id in await self.creators(room_id):
            raise ValueError(f"{user_id} created {room_id}: its power cannot be changed")
        content = await self.state(room_id, "m.room.power_levels") or {}
        content["users"] = {**content.get("users", {}), user_id: level}
        await self.put_state(room_id, "m.room.power_levels", content)

    async def creators(self, room_id: str) -> set[str]:
        """Who has unlimited power by having created a v12 room (empty before v12)."""
        response = await self.client.room_get_state(room_id)
        state = _checked(response, RoomGetStateResponse, f"{self.user_id} read state")
        for event in state.events:
            if event.get("type") == "m.room.create":
                content = event.get("content", {})
                if str(content.get("room_version", "1")) in V12_AND_LATER_VERSIONS:
                    return {event["sender"], *content.get("additional_creators", [])}
        return set()

    async def set_displayname(self, name: str) -> None:
        response = await self.client.set_displayname(name)
        _checked(response, EmptyResponse, f"{self.user_id} set displayname")

    # -- messages -------------------------------------------------------------------

    async def send(
        self,
        room_id: str,
        text: str,
        *,
        msgtype: str = "m.text",
        reply_to: str | None = None,
        html: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Send a message (encrypted when the room is) and return its event id."""
        content: dict[str, Any] = {"msgtype": msgtype, "body": text}
        if html is not None:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        if reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        content.update(extra or {})
        event_id = await self.send_event(room_id, "m.room.message", content)
        self._last_sent[room_id] = event_id
        return event_id

    async def send_event(self, room_id: str, event_type: str, content: Mapping[str, Any]) -> str:
        room = self.client.rooms.get(room_id)
        if room is None or room.encrypted:
            # Catch up first: a member who joined since the last sync must get the room key.
            await self.sync(timeout=0)
        response = await self.client.room_send(
            room_id, event_type, dict(content), ignore_unverified_devices=True
        )
        checked = _checked(response, RoomSendResponse, f"{self.user_id} send {event_type}")
        event_id: str = checked.event_id
        return event_id

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        relation = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        return await self.send_event(room_id, "m.reaction", {"m.relates_to": relation})

    async def read_receipt(self, room_id: str, event_id: str) -> None:
        response = await self.client.update_receipt_marker(room_id, event_id)
        _checked(response, UpdateReceiptMarkerResponse, f"{self.user_id} read receipt")

    async def redact(self, room_id: str, event_id: str, reason: str | None = None) -> str:
        response = await self.client.room_redact(room_id, event_id, reason)
        redaction: str = _checked(response, RoomRedactResponse, "redact").event_id
        return redaction

    async def messages(self, room_id: str, limit: int = 50) -> list[EventDict]:
        """The room's latest events from the server (/messages), oldest first."""
        response = await self.client.room_messages(room_id, limit=limit)
        checked = _checked(response, RoomMessagesResponse, f"{self.user_id} read history")
        return [{**e.source, "room_id": room_id} for e in reversed(checked.chunk)]

    async def _request(self, method: str, path: str, body: Mapping[str, Any], what: str) -> None:
        response = await self.client._send(EmptyResponse, method, path, json.dumps(body))
        _checked(response, EmptyResponse, what)


async def new_person(
    homeserver: EmbeddedSynapse,
    name: str,
    *,
    store_root: Path | None = None,
    admin: bool = False,
) -> Person:
    """Register a fresh user called `name` (a unique localpart, display name `name`).

    With `store_root` the Person's client does end-to-end encryption, keeping
    its keys under that directory, as an Element user's would.
    """
    localpart = f"{name.lower().replace(' ', '-')}.{secrets.token_hex(4)}"
    user = await homeserver.register(localpart, admin=admin, displayname=name)
    store_dir = store_root / localpart if store_root is not None else None
    return await Person.connect(user, homeserver.base_url, store_dir=store_dir)


class FakeBridge:
    """A bridge as mautrix runs one: a bridge bot and ghosts of remote people.

    It drives the appservice API directly (no remote network behind it): it
    makes portal rooms carrying `m.bridge` / `uk.half-shot.bridge` state,
    puts ghosts in them and speaks as them, or relays as its bot.
    """

    def __init__(
        self,
        homeserver: EmbeddedSynapse,
        appservice: AppService,
        *,
        protocol: str,
        displayname: str,
        ghost_prefix: str,
    ) -> None:
        self.homeserver = homeserver
        self.appservice = appservice
        self.protocol = protocol
        self.displayname = displayname
        self.ghost_prefix = ghost_prefix
        self.bot_user_id = homeserver.user_id(appservice.sender_localpart)
        self._txn = itertools.count(1)

    async def _as(
        self, method: str, path: str, user_id: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        separator = "&" if "?" in path else "?"
        path = f"{path}{separator}user_id={quote(user_id, safe='')}"
        return await self.homeserver.request(
            method, path, token=self.appservice.as_token, body=body or {}
        )

    async def ghost(self, remote_id: str, displayname: str | None = None) -> str:
        """The Matrix id of the ghost for a remote account, registered on first use."""
        localpart = f"{self.ghost_prefix}{remote_id}"
        body = {"type": "m.login.application_service", "username": localpart}
        try:
            await self.homeserver.request(
                "POST", "/_matrix/client/v3/register", token=self.appservice.as_token, body=body
            )
        except HomeserverError as err:
            if err.errcode != "M_USER_IN_USE":
                raise
        user_id = self.homeserver.user_id(localpart)
        if displayname is not None:
            path = f"/_matrix/client/v3/profile/{quote(user_id, safe='')}/displayname"
            await self._as("PUT", path, user_id, {"displayname": displayname})
        return user_id

    async def create_portal(
        self, name: str, *, channel_id: str, invite: Iterable[str] = (), room_type: str = "group"
    ) -> str:
        """A portal room for a remote group chat, announced as bridged."""
        info = {
            "bridgebot": self.bot_user_id,
            "creator": self.bot_user_id,
            "protocol": {"id": self.protocol, "displayname": self.displayname},
            "channel": {"id": channel_id, "displayname": name},
            "com.beeper.room_type": room_type,
        }
        state_key = f"{self.appservice.id}://{self.protocol}/{channel_id}"
        body = {
            "name": name,
            "preset": "private_chat",
            "invite": list(invite),
            "initial_state": [
                {"type": kind, "state_key": state_key, "content": info}
                for kind in ("m.bridge", "uk.half-shot.bridge")
            ],
        }
        created = await self._as("POST", "/_matrix/client/v3/createRoom", self.bot_user_id, body)
        room_id: str = created["room_id"]
        return room_id

    async def add_ghost(self, room_id: str, ghost_user_id: str) -> None:
        """Invite the ghost as the bridge bot and join it, as a remote member joining."""
        invite = {"user_id": ghost_user_id}
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
        await self._as("POST", f"{path}/invite", self.bot_user_id, invite)
        await self._as("POST", f"{path}/join", ghost_user_id)

    async def accept_invite(self, user_id: str, room_id: str) -> None:
        """The ghost joins a room it was invited to, as mautrix ghosts accept a DM invite."""
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/join"
        await self._as("POST", path, user_id)

    async def send_as(self, user_id: str, room_id: str, text: str) -> str:
        """A message from the ghost (or the bot) into the portal, as a bridged message."""
        txn = f"fake{next(self._txn)}"
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}"
        sent = await self._as("PUT", path, user_id, {"msgtype": "m.text", "body": text})
        event_id: str = sent["event_id"]
        return event_id

    async def relay(self, room_id: str, name: str, text: str) -> str:
        """A relayed message: the bridge bot speaking with the remote sender's name in front."""
        return await self.send_as(self.bot_user_id, room_id, f"{name}: {text}")
