"""The sync loop: what the homeserver says, handed to the sink once, in order.

Delivery is at-least-once: ``next_batch`` is stored only after every event
of a batch went to the sink (which is idempotent on event ids), so a crash
mid-batch replays it rather than losing it. The very first sync (no stored
token) only takes state; a timeline marked ``limited`` is completed from
/messages before the batch's own events, so nothing said during an outage
is lost. Errors wait and retry; nothing but :meth:`SyncLoop.stop` (or a
login that cannot be repaired) ends :meth:`SyncLoop.run`. Log lines carry
event ids and types, never message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import nio
from nio.api import Api

from bot.clock import Clock
from bot.events import EventSink, Incoming, Reaction, Receipt, StateChange
from bot.roomstate import RoomStates
from bot.runtime import history, login
from bot.runtime.backoff import Backoff, sleep_unless
from bot.runtime.inflight import Inflight
from bot.runtime.invites import InviteJoiner
from bot.runtime.undecryptable import Undecryptable
from bot.transport.base import RateLimited, TransportError, UnknownToken, is_transient
from bot.transport.matrix import NETWORK, MatrixTransport, checked, guarded
from bridges.capabilities import ROOM_FEATURES
from bridges.detect import BRIDGE_EVENT_TYPES
from config.settings import Settings
from storage import rooms, state
from storage.engine import Database

log = logging.getLogger(__name__)

TOKEN_KEY = state.SYNC_TOKEN_KEY
GAP_PAGE = 100
GAP_MAX_PAGES = 50
DECLINE_AFTER = timedelta(seconds=2)
# How long past its long-poll a /sync may take before it is abandoned as hung. Synapse
# can take most of a minute to answer the sync after a mass join, and longer for a
# first sync of thousands of rooms: giving up only makes it start over.
SYNC_GRACE_SECONDS = 90.0
FIRST_SYNC_GRACE_SECONDS = 600.0


# The event types anything in the bot reads: messages (and encrypted ones, which may
# be messages), reactions, and the state the kept room state and the state hooks use.
# Everything else (topics, avatars, pins, widgets, calls, typing) is not even sent.
TIMELINE_TYPES = ("m.room.message", "m.room.encrypted", "m.reaction")
STATE_TYPES = ("m.room.create", "m.room.member", "m.room.power_levels", "m.room.encryption",
               "m.room.name", "m.room.canonical_alias", "m.room.join_rules",
               "m.room.history_visibility", *BRIDGE_EVENT_TYPES, ROOM_FEATURES)


def sync_filter(timeline_limit: int) -> dict[str, Any]:
    """Lazy-loaded members, only the types the bot reads, no presence, receipts only:
    what a bot in thousands of busy rooms needs and no more."""
    return {
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "timeline": {"limit": timeline_limit, "lazy_load_members": True,
                         "types": [*TIMELINE_TYPES, *STATE_TYPES]},
            "state": {"lazy_load_members": True, "types": list(STATE_TYPES)},
            "ephemeral": {"types": ["m.receipt"]},
            "account_data": {"not_types": ["*"]},
        },
    }


def _time(ms: Any) -> datetime:
    return datetime.fromtimestamp((ms if isinstance(ms, int | float) else 0) / 1000, tz=UTC)


def strip_reply_fallback(body: str) -> str:
    """Drop the ``> quoted`` lines (and the blank line after) that old clients put in replies."""
    lines = body.split("\n")
    skip = 0
    while skip < len(lines) and lines[skip].startswith(">"):
        skip += 1
    if skip and skip < len(lines) and lines[skip] == "":
        skip += 1
    return "\n".join(lines[skip:]) if skip else body


def to_incoming(room_id: str, source: dict[str, Any]) -> Incoming | None:
    content = source.get("content") or {}
    body = content.get("body")
    if not isinstance(body, str):
        return None  # redacted, or not a message a person can read
    relates = content.get("m.relates_to") or {}
    reply_to = (relates.get("m.in_reply_to") or {}).get("event_id")
    replaces = relates.get("event_id") if relates.get("rel_type") == "m.replace" else None
    if replaces:
        new_body = (content.get("m.new_content") or {}).get("body")
        body = new_body if isinstance(new_body, str) else body
    elif reply_to:
        body = strip_reply_fallback(body)
    return Incoming(
        event_id=source["event_id"],
        room_id=room_id,
        sender=source["sender"],
        body=body,
        timestamp=_time(source.get("origin_server_ts")),
        msgtype=str(content.get("msgtype", "m.text")),
        reply_to=reply_to,
        replaces=replaces,
        content=content,
    )


def to_reaction(room_id: str, source: dict[str, Any]) -> Reaction | None:
    relates = (source.get("content") or {}).get("m.relates_to") or {}
    if relates.get("rel_type") != "m.annotation" or not relates.get("event_id"):
        return None
    return Reaction(
        event_id=source["event_id"],
        room_id=room_id,
        sender=source["sender"],
        target_event_id=relates["event_id"],
        key=str(relates.get("key", "")),
        timestamp=_time(source.get("origin_server_ts")),
    )


def to_state(room_id: str, source: dict[str, Any]) -> StateChange:
    return StateChange(
        event_id=source.get("event_id", ""),
        room_id=room_id,
        sender=source.get("sender", ""),
        event_type=source.get("type", ""),
        state_key=source.get("state_key", ""),
        content=source.get("content") or {},
        timestamp=_time(source.get("origin_server_ts")),
    )


class SyncLoop:
    """Long-polls /sync and feeds the sink; ``run()`` until ``stop()``.

    ``timeline_limit`` is the per-room timeline of each sync (longer timelines
    are completed from /messages). Tests may replace ``relogin`` (the password
    re-login after M_UNKNOWN_TOKEN) and ``backoff`` (the waits after failures).
    ``ready`` is set once the first sync of this process is delivered;
    ``last_sync_at`` is when the latest batch finished. ``inflight`` is the
    sink's work still running for delivered events: the stored token never
    passes an event whose work is open (see :mod:`bot.runtime.inflight`).

    Rooms the bot is in (the ``rooms`` table) are known from the start, so a
    restart continues from the stored token with no full-state sync and no
    per-room work: only what changed while the bot was away comes down.
    """

    def __init__(
        self,
        client: nio.AsyncClient,
        transport: MatrixTransport,
        db: Database,
        sink: EventSink,
        settings: Settings,
        clock: Clock,
        *,
        timeline_limit: int = 50,
        relogin: Callable[[], Awaitable[None]] | None = None,
        backoff: Backoff | None = None,
        inflight: Inflight | None = None,
        undecryptable: Undecryptable | None = None,
        states: RoomStates | None = None,
    ) -> None:
        self.client = client
        self.transport = transport
        self.db = db
        self.sink = sink
        self.settings = settings
        self.clock = clock
        self.timeline_limit = timeline_limit
        self._relogin = relogin or (lambda: login.relogin(client, settings, db))
        self.backoff = backoff or Backoff()
        self.inflight = inflight or Inflight()
        self.undecryptable = undecryptable or Undecryptable(client, transport, db, clock)
        self._stored: str | None = None
        # The kept room state (the app reads it); fed here, saved with the sync token.
        self.states = states if states is not None else RoomStates()
        self._stop = asyncio.Event()
        self._joined: set[str] = set()
        self._direct: dict[str, bool] = {}
        # Allowed invites are joined beside the loop, a few at a time (bot.runtime.invites).
        self.joiner = InviteJoiner(transport, clock, settings.matrix.server_name)
        self._declines: dict[str, datetime] = {}  # invites to decline, and from when
        self._first = True
        self._replaying = True
        self.ready = asyncio.Event()
        self.last_sync_at: datetime | None = None
        # Seconds the latest batch took to hand over and store (for !status).
        self.last_sync_took: float | None = None

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Sync until stopped; raises only :class:`login.LoginFailed`."""
        self._first = True
        # Events can come twice only in the first batch after a start (the stored token
        # may lag) or in a batch tried again after a failure: only then are handled ids
        # looked up, which keeps a transaction off every command's way to its answer.
        self._replaying = True
        async with self.db.transaction() as session:
            token = await state.get_value(session, TOKEN_KEY)
            known = await rooms.active(session) if token is not None else []
        self._stored = token
        await self.undecryptable.load()
        for room in known:
            self._joined.add(room.room_id)
            self._direct[room.room_id] = room.is_direct
        self._know_rooms(room.room_id for room in known)
        joining = asyncio.create_task(self.joiner.run(), name="invites")
        try:
            await self._run(token)
        finally:
            self.joiner.stop()
            await joining

    async def _run(self, token: str | None) -> None:
        backoff = self.backoff
        backoff.reset()
        while not self._stop.is_set():
            try:
                response = await self._next_sync(token)
                if response is None:
                    break
                began = self.clock.now()
                backoff.reset()
                await self._keep_keys()
                await self._deliver(response, token)
                await self._decline_due()
                await self._reopen()
                self.inflight.mark(response.next_batch, self.clock.now())
                await self._store_token()
                self.last_sync_took = (self.clock.now() - began).total_seconds()
            except RateLimited as err:
                wait = (err.retry_after_ms or 0) / 1000 or backoff.next_delay()
                log.warning("sync rate-limited: waiting %.1f s", wait)
                self._replaying = True
                await sleep_unless(self._stop, wait)
                continue
            except UnknownToken:
                log.warning("access token refused during sync: logging in again")
                self._replaying = True
                try:
                    await self._relogin()
                except TransportError as err:  # LoginFailed is not one: it ends the loop
                    wait = backoff.next_delay()
                    log.warning("login failed (%s): retrying in %.1f s", err.errcode, wait)
                    await sleep_unless(self._stop, wait)
                continue
            except (TransportError, nio.LocalProtocolError) as err:
                wait = backoff.next_delay()
                log.warning("sync failed (%s): retrying in %.1f s", err, wait)
                self._replaying = True
                await sleep_unless(self._stop, wait)
                continue
            except Exception:
                wait = backoff.next_delay()
                log.exception("sync round failed: retrying in %.1f s", wait)
                self._replaying = True
                await sleep_unless(self._stop, wait)
                continue
            token = response.next_batch
            self._first = False
            self._replaying = False
            self.last_sync_at = self.clock.now()
            if not self.ready.is_set():
                log.info("in sync with the homeserver: listening")
            self.ready.set()

    async def _store_token(self) -> None:
        """Store the newest token no open work is waiting behind (it may lag this batch),
        and the room state kept since the last time, in one transaction; none if neither."""
        safe = self.inflight.safe()
        moved = safe is not None and safe[0] != self._stored
        if not moved and not self.states.unsaved:
            return
        async with self.db.transaction() as session:
            if safe is not None and moved:
                await state.save_sync_position(session, *safe)
            await self.states.save(session, self.clock.now())
        self.states.saved()
        if safe is not None and moved:
            self._stored = safe[0]

    def _know_rooms(self, room_ids: Iterable[str]) -> None:
        """Rooms nio has not synced in this process, so that it can send to them.

        nio keeps its rooms in memory only (it remembers which are encrypted); an
        encrypted room it knows reads its members from the server before its first send.
        """
        client = self.client
        for room_id in room_ids:
            if room_id not in client.rooms:
                encrypted = room_id in client.encrypted_rooms or bool(
                    self.states.encrypted(room_id)
                )
                client.rooms[room_id] = nio.MatrixRoom(room_id, self.user_id, encrypted)

    async def _next_sync(self, token: str | None) -> nio.SyncResponse | None:
        """One /sync, or None if stop() came first (the long poll is abandoned)."""
        client = self.client
        if token is None:
            client.next_batch = ""  # a true initial sync, even when retried
        timeout = 0 if self._first else self.settings.matrix.sync_timeout_ms
        if self._declines:  # back for them soon, even if all is quiet
            timeout = min(timeout, int(DECLINE_AFTER.total_seconds() * 1000))
        grace = FIRST_SYNC_GRACE_SECONDS if token is None else SYNC_GRACE_SECONDS
        method, path = Api.sync(
            client.access_token,
            since=token,
            timeout=timeout or None,
            filter=sync_filter(1 if token is None else self.timeline_limit),
        )
        # Not client.sync(): its client timeout (long poll + 15 s) gives up on slow answers.
        request = asyncio.ensure_future(
            guarded(client._send(nio.SyncResponse, method, path, timeout=timeout / 1000 + grace),
                    "sync")
        )
        # If this task is cancelled mid-poll, the request dies with the client: that
        # outcome is expected, so mark it seen rather than warn at exit.
        request.add_done_callback(lambda done: done.cancelled() or done.exception())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait(
                {request, stopping},
                timeout=timeout / 1000 + grace,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopping.cancel()
        if not request.done():
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await request
            if self._stop.is_set():
                return None
            raise TransportError(NETWORK, "sync: no answer in time")
        return checked(request.result(), nio.SyncResponse, "sync")

    async def _keep_keys(self) -> None:
        """What nio's sync_forever does between syncs, so encrypted rooms keep working."""
        client = self.client
        if client.olm is None:
            return
        try:
            if client.should_upload_keys:
                checked(await guarded(client.keys_upload(), "keys"), nio.KeysUploadResponse, "keys")
            if client.should_query_keys:
                checked(await guarded(client.keys_query(), "keys"), nio.KeysQueryResponse, "keys")
            if client.should_claim_keys:
                users = client.get_users_for_key_claiming()
                checked(
                    await guarded(client.keys_claim(users), "keys"), nio.KeysClaimResponse, "keys"
                )
            await guarded(client.send_to_device_messages(), "to-device")
        except TransportError as err:
            log.warning("key maintenance failed: %s", err.errcode)

    # -- delivery -----------------------------------------------------------------

    async def _deliver(self, response: nio.SyncResponse, since: str | None) -> None:
        initial = since is None
        for room_id, invited in response.rooms.invite.items():
            await self._on_invite(room_id, invited.invite_state)
        joined_rooms = response.rooms.join
        # The state the app reads is current before anything of any room is handed over.
        for room_id, info in joined_rooms.items():
            self.states.apply(room_id, (_source(e) for e in [*info.state, *info.timeline.events]))
        arrivals = await self._arrivals(joined_rooms)
        # Rooms the bot was already in first: a person's command there is handed to its
        # lane before a mass join's dozens of new rooms are recorded (issue 20).
        for room_id, info in joined_rooms.items():
            if room_id not in arrivals:
                await self._deliver_room(room_id, info, since)
        if arrivals:
            await self._record_joins(arrivals)
            for room_id in arrivals:
                await self._deliver_room(room_id, joined_rooms[room_id], since)
        for room_id in response.rooms.leave:
            self._joined.discard(room_id)
            self.states.forget(room_id)
            if not initial:
                await self._hand("leave", room_id, self.sink.on_left(room_id))

    async def _arrivals(self, joined_rooms: dict[str, Any]) -> dict[str, bool]:
        """Rooms of this batch new to the bot (or newly seen to be a DM), and whether each
        is direct: said by its invite if it had one, else looked up for all in one query."""
        arrivals: dict[str, bool] = {}
        unknown: list[str] = []
        for room_id, info in joined_rooms.items():
            marked = _marks_direct([*info.state, *info.timeline.events], self.user_id)
            if room_id not in self._joined:
                arrivals[room_id] = marked
                if not marked and room_id not in self._direct:
                    unknown.append(room_id)
            elif marked and not self._direct.get(room_id):
                # A room the bot is creating as a DM can show up before its invite does.
                arrivals[room_id] = True
        remembered = await self.transport.direct_rooms_among(unknown) if unknown else set()
        for room_id, marked in arrivals.items():
            arrivals[room_id] = marked or self._direct.get(room_id, room_id in remembered)
        return arrivals

    async def _record_joins(self, arrivals: dict[str, bool]) -> None:
        """The sink records every room of the batch at once (one transaction, not one a
        room). The batch's token is stored only after this, so a crash before it commits
        delivers these rooms again after the restart: none is joined and left unrecorded."""
        for room_id, is_direct in arrivals.items():
            self._joined.add(room_id)
            self._direct[room_id] = is_direct
        try:
            await self.sink.on_joined_many(list(arrivals.items()))
        except Exception:
            log.exception("recording %d joined rooms at once failed: one by one", len(arrivals))
            for room_id, is_direct in arrivals.items():
                await self._hand("join", room_id, self.sink.on_joined(room_id, is_direct=is_direct))

    async def _deliver_room(self, room_id: str, info: Any, since: str | None) -> None:
        for event in info.state:
            await self._dispatch(room_id, event, state_only=True)
        events = list(info.timeline.events)
        if since is None:
            for event in events:
                await self._dispatch(room_id, event, state_only=True)
            return
        # A gap that reaches back past the bot's arrival holds nothing said to it: a newly
        # joined room's timeline usually shows its invite, and then no /messages is read.
        arrived = any(_arrived(_source(e), self.user_id) for e in events)
        if info.timeline.limited and info.timeline.prev_batch and not arrived:
            events = [*await self._fill_gap(room_id, info.timeline.prev_batch, since), *events]
        cut = await history.live_from([_source(e) for e in events], self.user_id,
                                      lambda event_id: self._event_time(room_id, event_id))
        # Before the bot was invited is history it never heard: take its state only.
        for event in events[:cut]:
            await self._dispatch(room_id, event, state_only=True)
        events = events[cut:]
        handled = await self._already_handled(events)
        for event in events:
            if _source(event).get("event_id") not in handled:
                await self._dispatch(room_id, event)
        for ephemeral in info.ephemeral:
            if isinstance(ephemeral, nio.ReceiptEvent):
                for receipt in ephemeral.receipts:
                    if receipt.user_id != self.user_id:
                        seen = Receipt(
                            room_id, receipt.user_id, receipt.event_id, _time(receipt.timestamp)
                        )
                        await self._hand("receipt", receipt.event_id, self.sink.on_receipt(seen))

    async def _fill_gap(self, room_id: str, prev_batch: str, since: str) -> list[Any]:
        """The events a limited timeline left out, oldest first, back to the last token."""
        newest_first: list[Any] = []
        start = prev_batch
        for _page in range(GAP_MAX_PAGES):
            try:
                response = checked(
                    await guarded(
                        self.client.room_messages(room_id, start=start, end=since, limit=GAP_PAGE),
                        "gap",
                    ),
                    nio.RoomMessagesResponse,
                    f"history of {room_id}",
                )
            except TransportError as err:
                if is_transient(err):
                    raise  # the whole batch is tried again
                # A refusal that will not change must not hold every other room back.
                log.warning("cannot fill the gap in %s (%s): skipping it", room_id, err.errcode)
                break
            chunk = list(response.chunk)
            arrived = next(
                (i for i, e in enumerate(chunk) if _arrived(_source(e), self.user_id)), None
            )
            if arrived is not None:
                # Nothing from before the bot was invited (or joined) was said to it.
                newest_first.extend(chunk[: arrived + 1])
                break
            newest_first.extend(chunk)
            if not chunk or not response.end or response.end == start:
                break
            start = response.end
        else:
            log.warning(
                "gap in %s longer than %d events: older ones skipped",
                room_id,
                GAP_PAGE * GAP_MAX_PAGES,
            )
        log.info("filled a gap of %d events in %s", len(newest_first), room_id)
        return newest_first[::-1]

    async def _event_time(self, room_id: str, event_id: str) -> int | None:
        try:
            event = await self.transport.request(
                "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(event_id)}")
        except TransportError as err:
            log.warning("cannot read %s in %s: %s", event_id, room_id, err.errcode)
            return None
        stamp = event.get("origin_server_ts")
        return int(stamp) if isinstance(stamp, int | float) else None

    async def _already_handled(self, events: Iterable[Any]) -> set[str]:
        ids = [i for i in (_source(e).get("event_id") for e in events) if isinstance(i, str)]
        if not ids or not self._replaying:
            return set()
        async with self.db.transaction() as session:
            return await state.handled_among(session, ids)

    async def _dispatch(self, room_id: str, event: Any, *, state_only: bool = False) -> None:
        """Hand one event over; an event we cannot make sense of is logged and skipped (but
        one that could not be put on the waiting list fails the batch, tried again)."""
        try:
            await self._dispatch_one(room_id, event, state_only=state_only)
        except NotKept:
            raise
        except Exception:
            log.exception(
                "could not deliver %s %s", type(event).__name__, _source(event).get("event_id")
            )

    async def _dispatch_one(self, room_id: str, event: Any, *, state_only: bool) -> None:
        if isinstance(event, nio.MegolmEvent):
            encrypted = event
            event = await self._decrypt(room_id, event, live=not state_only)
            if event is None:
                return
            if self.undecryptable.is_waiting(encrypted.event_id):
                # Delivered again (a restart before its token was stored), key in hand:
                # handed over here, so its waiting row can go once that work is done.
                await self._hand_event(room_id, event, state_only=state_only)
                self.undecryptable.discard(encrypted.event_id, self.inflight.position())
                return
        await self._hand_event(room_id, event, state_only=state_only)

    async def _hand_event(self, room_id: str, event: Any, *, state_only: bool) -> None:
        source = _source(event)
        kind = source.get("type")
        event_id = source.get("event_id")
        if "state_key" in source:
            await self._hand(kind, event_id, self.sink.on_state(to_state(room_id, source)))
        elif state_only or source.get("sender") == self.user_id:
            return
        elif kind == "m.room.message":
            message = to_incoming(room_id, source)
            if message is not None:
                await self._hand(kind, event_id, self.sink.on_message(message))
        elif kind == "m.reaction":
            reaction = to_reaction(room_id, source)
            if reaction is not None:
                await self._hand(kind, event_id, self.sink.on_reaction(reaction))

    async def _decrypt(self, room_id: str, event: nio.MegolmEvent, *, live: bool) -> Any | None:
        """nio decrypts what it can during sync; a live message it could not waits for its key."""
        if self.client.olm is None:
            return None  # encryption off: features/encrypted.py says so in the room
        try:
            return self.client.decrypt_event(event)
        except nio.EncryptionError:
            pass
        if live and event.sender != self.user_id:
            try:
                await self.undecryptable.add(room_id, event)
            except Exception as err:
                # Skipped, it would be lost: the sync position is about to pass it.
                raise NotKept(f"could not keep unreadable {event.event_id}") from err
        return None

    async def _reopen(self) -> None:
        """Messages whose keys came late are handled now; long-unreadable ones are reported.

        A message handled before a restart whose waiting row had not gone yet is not
        handed over again (the handled-event ids say so)."""
        waiting = self.undecryptable
        opened = await waiting.retry()
        if opened:
            ids = [str(_source(event).get("event_id")) for _, event in opened]
            async with self.db.transaction() as session:
                handled = await state.handled_among(session, ids)
            for room_id, event in opened:
                if _source(event).get("event_id") not in handled:
                    await self._dispatch(room_id, event)
            waiting.handed(ids, self.inflight.position())
        await waiting.settle(self.inflight.settled)
        await waiting.tell_overdue()

    async def _hand(self, what: str | None, ref: str | None, call: Awaitable[None]) -> None:
        """One sink call; its failure is logged and never stops the loop."""
        try:
            await call
        except Exception:
            log.exception("sink failed on %s %s", what, ref)

    # -- invites ----------------------------------------------------------------------

    async def _on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        """Accepted (by the joiner, beside the loop) from allowed servers; declined from
        any other."""
        if room_id in self._joined:
            return
        inviter, is_direct = "", False
        for event in invite_state:
            if getattr(event, "state_key", None) == self.user_id and isinstance(
                getattr(event, "content", None), dict
            ):
                inviter = str(getattr(event, "sender", ""))
                is_direct = bool(event.content.get("is_direct"))
        server = inviter.split(":", 1)[1] if ":" in inviter else ""
        if server not in self.settings.matrix.allowed_invite_servers:
            # The inviting server may not have stored its invite yet when it reaches us;
            # declined at once, its server refuses the rejection and never hears of it.
            self._declines.setdefault(room_id, self.clock.now() + DECLINE_AFTER)
            return
        # The sink hears of the join when the room comes down a later sync, with its state;
        # said here, not after the join, which that sync may overtake.
        self._direct[room_id] = is_direct
        self.joiner.add(room_id, server)

    async def _decline_due(self) -> None:
        now = self.clock.now()
        for room_id, due in list(self._declines.items()):
            if due <= now:
                del self._declines[room_id]
                await self._decline(room_id)

    async def _decline(self, room_id: str) -> None:
        log.info("declining an invite to %s from a server not in autojoin_servers", room_id)
        try:
            await self.transport.leave(room_id)
        except TransportError as err:
            log.warning("could not decline the invite to %s: %s", room_id, err.errcode)


class NotKept(Exception):
    """An unreadable message could not be put on the waiting list: the batch is tried again."""


def _marks_direct(events: Iterable[Any], user_id: str) -> bool:
    """Invited as a DM, or the bot inviting someone as one (a DM the bot made)."""
    for event in events:
        source = _source(event)
        member = source.get("type") == "m.room.member"
        mine = user_id in (source.get("state_key"), source.get("sender"))
        if member and mine and (source.get("content") or {}).get("is_direct"):
            return True
    return False


def _source(event: Any) -> dict[str, Any]:
    source = getattr(event, "source", None)
    return source if isinstance(source, dict) else {}


def _arrived(source: dict[str, Any], user_id: str) -> bool:
    """The bot's invite, or a join of its own that no invite came before."""
    membership = history.own_membership(source, user_id)
    if membership == "invite":
        return True
    prev = ((source.get("unsigned") or {}).get("prev_content") or {}).get("membership")
    return membership == "join" and prev not in ("invite", "join")
