"""Sends what the outbox holds, exactly once as far as anyone in the room can tell.

Each row goes out with transaction id ``grapevine-<id>`` (the homeserver drops
a repeat from the same access token) and carries ``"org.grapevine.outbox": <id>``
in its content, so that after a crash between sending and recording, or a
fresh login that reset the homeserver's memory of transaction ids, the
worker finds its own event in the room instead of posting twice. The attempt
is committed before the send and the result after it: no database
transaction is ever held across a network call.

A homeserver sends an event only to the servers already in its room. The first
message in a DM room the bot has just made for someone on another server would
reach their server only if they scrolled back, so it is held until they join
(the app releases it when the join comes down the sync), or for ``join_wait`` at
most, then sent anyway and the wait logged. Messages to one person go in the order
they were queued, and what follows a held message in its room waits behind it: one
rule (:func:`storage.outbox.waits_behind`), checked from the database while holding
the person's turn just before each send, whichever path the row took (a pass, or
handed over by a command), so a conversation never arrives out of order.

Two lanes (:mod:`storage.outbox`): answers to people go first, the bot's own posts
(greetings, notices, digests, reminders) after them, one every ``post_gap`` seconds
of the bot's clock, and a post gives way whenever an answer is queued. A mass join
queues a thousand greetings; a person's ``!help`` queued after them still goes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.runtime.backoff import sleep_unless
from bot.transport.base import RateLimited, TransportError, text_content
from bridges import render
from storage import bridges as bridge_rows
from storage import outbox, rooms, state
from storage.engine import Database
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

MARKER = "org.grapevine.outbox"
MAX_ATTEMPTS = 8
RATE_LIMIT_RETRIES = 3
# Refusals that another try will not change (e.g. announcement-only WhatsApp groups).
# A sealed row this worker has no key for will not open on another try either.
UNSEALABLE = "GV_UNSEALABLE"
PERMANENT = frozenset({"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE",
                       UNSEALABLE})
# How long a message waits for the first person to join a room the bot just made.
JOIN_WAIT = timedelta(minutes=15)
# Seconds between two of the bot's own posts: a mass join's greetings or a notice to
# every room go out steadily (5 a second) instead of as one burst the homeserver queues.
POST_GAP = 0.2


class OutboxTransport(Protocol):
    """The part of :class:`bot.transport.base.Transport` the worker uses."""

    @property
    def user_id(self) -> str: ...

    async def send(
        self,
        room_id: str,
        content: Mapping[str, Any],
        *,
        txn_id: str | None = None,
        event_type: str = "m.room.message",
    ) -> str: ...

    async def upload(self, data: bytes, mime: str, filename: str, *, room_id: str | None = None
                     ) -> dict[str, Any]: ...

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]: ...

    async def direct_room(self, user_id: str) -> str: ...

    async def members(self, room_id: str) -> dict[str, str | None]: ...


def txn_id(message_id: int) -> str:
    return f"grapevine-{message_id}"


# How long a row handed straight to the worker is left to it before a pass may pick it.
LEASE = timedelta(seconds=60)


def leasable(row: OutboxMessage, now: datetime) -> bool:
    """A row being queued may be handed to :meth:`OutboxWorker.send_now`: due now,
    untried, and not one of the bot's own posts (those go paced, behind answers)."""
    return row.sent_at is None and row.failed_at is None and not row.attempts \
        and _aware(row.not_before) <= now and outbox.lane_of(row) != outbox.POSTS


def lease(row: OutboxMessage, now: datetime) -> bool:
    """Mark a row being queued as attempted and leased to :meth:`OutboxWorker.send_now`,
    inside the transaction that queues it; False (unchanged) if it is not
    :func:`leasable`."""
    if not leasable(row, now):
        return False
    row.attempts = 1
    row.attempted_at = now
    row.not_before = now + LEASE
    return True


class OutboxWorker:
    """Drains the outbox; ``run()`` until ``stop()``, ``wake()`` after queueing.

    ``idle_seconds`` caps a sleep when nothing is due (a safety net: the app
    should call ``wake()`` after committing a transaction that queued messages).
    ``sleep`` waits out rate limits (tests pass a recording one). A post longer than
    its room's network allows goes out as its first page; ``rest(room_id, lines)``
    keeps the remainder for anyone there to ask ``<prefix>more`` (the app's pager).
    ``opener`` opens rows of kind ``outbox.SEALED_KIND`` (text sealed at rest); without
    it, or when it cannot, such a row is given up rather than sent sealed.
    ``post_gap`` paces the bot's own posts on ``clock``; ``pace(seconds)`` waits between
    them (tests pass one that moves their clock; by default a wait an answer cuts short).
    """

    def __init__(
        self,
        db: Database,
        transport: OutboxTransport,
        clock: Clock,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        batch: int = 50,
        idle_seconds: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rest: Callable[[str, list[str]], None] | None = None,
        prefix: str = "!",
        opener: Callable[[str], str | None] | None = None,
        join_wait: timedelta = JOIN_WAIT,
        post_gap: float = POST_GAP,
        pace: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.transport = transport
        self.clock = clock
        self.max_attempts = max_attempts
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._sleep = sleep
        self._keep_rest = rest
        self._prefix = prefix
        self._open = opener
        self.join_wait = join_wait
        # One send at a time to each person, whichever path it takes: their DM room is
        # made once, and a first message's hold is in place before the next one looks.
        # Each lock is kept while someone holds or waits for it (the count), then dropped:
        # a bot that DMs thousands of people keeps no lock for each of them.
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}
        self._networks: dict[str, tuple[str | None, dict[str, Any] | None]] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._handed: list[OutboxMessage] = []
        self._sender: asyncio.Task[None] | None = None
        self.post_gap = post_gap
        self._pace_sleep = pace
        self._last_post: datetime | None = None

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def stopped(self, grace: float = 10.0) -> None:
        """Wait for a handed-over send to finish its row, cancelling it after ``grace``.

        Called after :meth:`stop` and before the database closes: a send still inside
        its transaction would otherwise keep SQLite's write lock past the close, and the
        next start on the same file (a restart in the same process) would find the
        database locked. What it leaves undone is resumable: the row stays leased.
        """
        sender, self._sender = self._sender, None
        if sender is None or sender.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(sender), grace)
        except Exception:  # timed out, or the send failed: either way it is over
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def reclaim(self) -> int:
        """At start, before any command runs: replies the last run leased to its worker
        but died before sending are due again now (the send looks first, so none goes
        twice). Returns how many."""
        async with self.db.transaction() as session:
            count = await outbox.reclaim_leases(session)
        if count:
            log.info("outbox: %d replies the last run never sent go out now", count)
        return count

    def send_now(self, rows: list[OutboxMessage]) -> None:
        """Send rows a command has just committed, without a pass to pick them.

        The command's transaction already marked them attempted and leased them
        (see :func:`bot.runtime.outbox_worker.lease`), so no pass picks them meanwhile
        and a crash before the send is found out by looking before resending.
        Their ``attempts`` is the count from before this try, as a pass leaves it.
        """
        self._handed.extend(rows)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_handed(),
                                                                  name="outbox-now")

    async def idle(self) -> None:
        """Until everything handed over by :meth:`send_now` has been tried."""
        while self._sender is not None and not self._sender.done():
            await asyncio.wait({self._sender})

    async def _send_handed(self) -> None:
        while self._handed and not self._stop.is_set():
            row = self._handed.pop(0)
            async with self._turn(row):
                if row.to_user is None and row.room_id in self._networks:
                    # Nothing goes before it (checked when it was leased), nor is it a DM
                    # that may open a room: straight out, no transaction first.
                    await self._deliver(row)
                    continue
                new_dm = await self._may_go(row, handed=True)
                if new_dm is None:
                    log.info("outbox %d waits behind an earlier message", row.id)
                    self.wake()  # a pass sends it once the earlier one has gone
                    continue
                await self._deliver(row, new_dm=new_dm)
            if row.to_user is not None:
                # A DM queued outside a command may be waiting for this one to go first.
                self.wake()

    async def _may_go(self, row: OutboxMessage, *, handed: bool = False) -> bool | None:
        """Whether ``row`` may go now, decided by both paths alike while they hold its
        person's turn, from the database as it is at that moment: None if an earlier
        message goes first (:func:`storage.outbox.waits_behind`), else whether it is
        the first message to a person with no DM room yet (it may be held for their
        join). A row ``handed`` over that must wait goes back in the queue for a pass.
        """
        async with self.db.transaction() as session:
            if await outbox.waits_behind(session, row):
                if handed:
                    await outbox.wait_behind(session, row)
                return None
            if row.room_id and row.room_id not in self._networks:
                self._networks[row.room_id] = await _network_of(session, row.room_id)
            return row.room_id is None and row.to_user is not None and \
                await state.get_value(session, state.DIRECT_ROOM_KEY + row.to_user) is None

    @contextlib.asynccontextmanager
    async def _turn(self, row: OutboxMessage) -> AsyncIterator[None]:
        """Hold the turn of the person a direct message goes to (rooms need none), also
        once it knows its room: the order check and the send are one step per person."""
        if row.to_user is None:
            yield
            return
        person = row.to_user
        lock, users = self._turns.get(person, (asyncio.Lock(), 0))
        self._turns[person] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[person]
            if users == 1:
                del self._turns[person]
            else:
                self._turns[person] = (lock, users - 1)

    def people_in_turn(self) -> list[str]:
        """Who has a message being sent, or waiting to be, in their turn now."""
        return sorted(self._turns)

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("outbox pass failed")
            await sleep_unless(self._wake, await self._seconds_until_due())

    async def _seconds_until_due(self) -> float:
        try:
            async with self.db.transaction() as session:
                due_at = await outbox.next_due_at(session)
        except Exception:
            log.exception("could not read the outbox")
            return self.idle_seconds
        if due_at is None:
            return self.idle_seconds
        wait = (_aware(due_at) - self.clock.now()).total_seconds()
        return min(self.idle_seconds, max(0.0, wait))

    async def drain(self) -> int:
        """One pass over what is due now, answers first; returns how many rows were sent."""
        self._wake.clear()
        sent = await self._pass(outbox.ANSWERS)
        return sent + await self._pass(outbox.POSTS)

    async def _pass(self, lane: str) -> int:
        """Send what is due in one lane. Between two posts, answers queued meanwhile
        go first, and the next post waits out the gap."""
        async with self.db.transaction() as session:
            now = self.clock.now()
            rows = await outbox.due(session, now, limit=self.batch, lane=lane)
            # Marked attempted in the same transaction that picks them: one commit per
            # batch instead of one per message on the reply path. ``row.attempts`` keeps
            # the count from before, which is what says "look before resending".
            await outbox.mark_attempts(session, [row.id for row in rows], now)
            # How each room's network wants text (bridges flatten HTML, cap length).
            self._networks.update({
                room_id: await _network_of(session, room_id)
                for room_id in {row.room_id for row in rows if row.room_id}
            })
        sent = 0
        stalled: set[str] = set()  # rooms that failed this pass: keep their order
        untried: dict[int, int] = {}
        for row in rows:
            target = row.room_id or f"user:{row.to_user}"
            if lane == outbox.POSTS:
                sent += await self._pace()
            if self._stop.is_set() or target in stalled:
                untried[row.id] = row.attempts
                continue
            started = self.clock.now()
            async with self._turn(row):
                new_dm = await self._may_go(row)
                delivered = new_dm is not None and await self._deliver(row, new_dm=new_dm)
            if new_dm is None:
                untried[row.id] = row.attempts
                stalled.add(target)
            elif delivered:
                sent += 1
                if lane == outbox.POSTS:
                    self._last_post = started  # one post per gap, however long a send takes
            else:
                stalled.add(target)
        if untried:
            # Waiting behind a failure is not a failure: without this, rows queued behind
            # a flaky send ran up attempts (and backoff, and gave up) without being tried.
            async with self.db.transaction() as session:
                await outbox.restore_attempts(session, untried)
        return sent

    async def _pace(self) -> int:
        """Before a post: send the answers queued since the pass began, then wait out
        what is left of ``post_gap`` since the last post; returns the answers sent."""
        sent = 0
        slept = False
        while not self._stop.is_set():
            if self._wake.is_set():
                self._wake.clear()
                sent += await self._pass(outbox.ANSWERS)
            wait = self._post_wait()
            if wait <= 0 or slept:
                break  # after one whole gap, go on even if the clock stood still
            if self._pace_sleep is not None:
                await self._pace_sleep(wait)
                slept = True
            else:
                slept = not await sleep_unless(self._wake, wait)
        return sent

    def _post_wait(self) -> float:
        if self._last_post is None or self.post_gap <= 0:
            return 0.0
        return self.post_gap - (self.clock.now() - self._last_post).total_seconds()

    async def _deliver(self, row: OutboxMessage, *, new_dm: bool = False) -> bool:
        """Send one row (or find it already sent); False if it must wait.

        ``new_dm``: the row is the first to a person with no DM room yet."""
        rate_limited = 0
        while True:
            try:
                return await self._send_once(row, new_dm=new_dm)
            except RateLimited as err:
                rate_limited += 1
                wait = (err.retry_after_ms or 1000) / 1000
                if rate_limited > RATE_LIMIT_RETRIES:
                    await self._later(row, err, wait)
                    return False
                log.info("outbox %d rate-limited: waiting %.1f s", row.id, wait)
                await self._pause(wait)
                if self._stop.is_set():
                    return False
            except TransportError as err:
                await self._later(row, err)
                return False
            except Exception as err:
                log.exception("outbox %d failed unexpectedly", row.id)
                await self._later(row, TransportError("GV_BUG", type(err).__name__))
                return False

    async def _send_once(self, row: OutboxMessage, *, new_dm: bool) -> bool:
        """Send the row; False if it is held for the first join in a new DM room."""
        room_id = row.room_id or await self.transport.direct_room(str(row.to_user))
        if new_dm and row.room_id is None:
            row.room_id = room_id  # as the hold records it: a retry does not hold it again
            if not await self._wait_for_join(row, room_id, str(row.to_user)):
                return False
        if row.join_wait_until is not None:
            log.warning("outbox %d: nobody joined %s within %s of its creation; sent anyway",
                        row.id, room_id, self.join_wait)
        if row.attempts > 0:
            found = await self._already_sent(row.id, room_id)
            if found is not None:
                log.info("outbox %d was already sent as %s", row.id, found)
                await self._record_sent(row, found, room_id)
                return True
        row.attempts += 1
        content = await self._content(row, room_id)
        event_id = await self.transport.send(room_id, content, txn_id=txn_id(row.id))
        await self._record_sent(row, event_id, room_id)
        return True

    async def _wait_for_join(self, row: OutboxMessage, room_id: str, user_id: str) -> bool:
        """Hold the row in the new DM room until ``user_id`` joins; True if they already have.

        The hold is committed before looking: a join the sync brings later releases it
        (the app calls :func:`storage.outbox.release_joined`), and one that came earlier
        is already on the server, so this look sees it. The hold puts back the attempt
        this try counted; if the row goes now after all, that attempt is counted again
        before the send, so a crash after it is found out by looking.
        """
        async with self.db.transaction() as session:
            now = self.clock.now()
            await outbox.hold_for_join(session, row, room_id, now + self.join_wait, now)
        if not await release_if_joined(self.db, self.transport, room_id):
            log.info("outbox %d held until %s joins %s", row.id, user_id, room_id)
            return False
        async with self.db.transaction() as session:
            await outbox.mark_attempt(session, row.id, self.clock.now())
        return True

    async def _already_sent(self, message_id: int, room_id: str) -> str | None:
        """The id of the bot's own event carrying this row's marker, if it is in the room."""
        for event in await self.transport.recent_events(room_id, limit=100):
            content = event.get("content") or {}
            if event.get("sender") == self.transport.user_id and content.get(MARKER) == message_id:
                return str(event.get("event_id"))
        return None

    async def _content(self, row: OutboxMessage, room_id: str) -> dict[str, Any]:
        extra = {**(row.extra or {}), MARKER: row.id}
        if row.file_data is None:
            network, features = self._networks.get(room_id, (None, None))
            body, html, rest = render.for_room(
                self._text(row), None if row.kind == outbox.SEALED_KIND else row.html,
                network, features, render.more_pointer(self._prefix))
            if rest and self._keep_rest is not None and row.kind not in outbox.PRIVATE_KINDS:
                self._keep_rest(room_id, rest)
            return text_content(body, html, extra=extra)
        name = row.file_name or "file"
        mime = row.file_mime or "application/octet-stream"
        where = await self.transport.upload(row.file_data, mime, name, room_id=room_id)
        return {
            "msgtype": "m.image" if mime.startswith("image/") else "m.file",
            "body": row.body or name,
            "filename": name,
            **where,
            "info": {"mimetype": mime, "size": len(row.file_data)},
            "m.mentions": {},
            **extra,
        }

    def _text(self, row: OutboxMessage) -> str:
        """The row's body, opened here (and only here) when it was sealed at rest."""
        if row.kind != outbox.SEALED_KIND:
            return row.body
        opened = self._open(row.body) if self._open is not None else None
        if opened is None:
            raise TransportError(UNSEALABLE, "sealed with a notes key this bot does not have")
        return opened

    async def _record_sent(self, row: OutboxMessage, event_id: str, room_id: str) -> None:
        async with self.db.transaction() as session:
            await outbox.mark_sent(session, row.id, event_id, self.clock.now(), room_id)
        log.debug("outbox %d sent as %s", row.id, event_id)

    async def _later(
        self, row: OutboxMessage, err: TransportError, wait: float | None = None
    ) -> None:
        give_up = err.errcode in PERMANENT or row.attempts >= self.max_attempts
        delay = timedelta(seconds=wait) if wait is not None else outbox.backoff(row.attempts)
        now = self.clock.now()
        async with self.db.transaction() as session:
            await outbox.retry_later(
                session, row.id, str(err), now if give_up else now + delay, give_up=give_up
            )
        if give_up:
            log.warning(
                "outbox %d given up after %d attempts: %s", row.id, row.attempts, err.errcode
            )
        else:
            log.info("outbox %d failed (%s): retry in %s", row.id, err.errcode, delay)

    async def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
        else:
            await sleep_unless(self._stop, seconds)


async def release_if_joined(db: Database, transport: OutboxTransport, room_id: str) -> bool:
    """Release what is held in ``room_id`` if someone besides the bot has joined it."""
    try:
        joined = set(await transport.members(room_id)) - {transport.user_id}
    except TransportError as err:
        log.info("could not see who joined %s (%s): waiting for the sync", room_id, err.errcode)
        return False
    if not joined:
        return False
    async with db.transaction() as session:
        await outbox.release_joined(session, room_id)
    return True


async def _network_of(
    session: AsyncSession, room_id: str
) -> tuple[str | None, dict[str, Any] | None]:
    known = await rooms.get(session, room_id)
    bridged = await bridge_rows.get(session, room_id)
    return (known.network if known else None, bridged.features if bridged else None)


def _aware(moment: datetime) -> datetime:
    """An aggregate may come back naive from SQLite; it was stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
