"""Message-flow intake for the reach model: metadata from every room, never message text.

The hooks only note facts in memory (event id, room, pseudonym, time, kind, the
ids of notices a message names); the body itself is dropped in the hook. A
flush writes the buffer in one transaction, after filtering out what must
never be kept: anything from direct-message rooms or mediation case rooms, and
senders who opted out. Receipts become a count per room per notice.

Batching and crash-safety: a flush runs ~1 s after the first buffered fact, at
once when ``FLUSH_ROWS`` pile up, and on ``stop``. An event's handled-mark
commits with the app's own transaction before its flow row is written, so a
crash (or a stop that does not call :func:`stop`) loses at most the last
second of metadata; it is never written twice (event ids are unique) and never
half-written. Flow records are statistics and observed reach is a lower bound
anyway, so one lost second is worth not adding a write per event to busy rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.commands.context import RoomContext
from bot.commands.dispatch import command_line
from bot.events import Incoming, Reaction, Receipt
from config.settings import Settings
from storage import flow, mediation
from storage.flow import FlowRow

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger(__name__)

FLUSH_AFTER = 1.0  # seconds after the first buffered fact
FLUSH_ROWS = 500
MAX_BUFFER = 50_000  # if the database is down this long, drop the oldest facts
SEEN_RECEIPTS = 200_000

# "F12" as a word, or the counted link ".../n/F12/<room key>".
_MENTION = re.compile(r"(?<![A-Za-z0-9])F(\d{1,9})(?![A-Za-z0-9])|/n/[Ff](\d{1,9})/")


def flow_secret(settings: Settings) -> bytes:
    """The HMAC key for sender pseudonyms; deployments must set privacy.pseudonym_secret
    (``grapevine run`` refuses to start without it); tests and the shell fall back."""
    secret = settings.privacy.pseudonym_secret
    if secret is not None:
        return b"flow:" + secret.get_secret_value().encode()
    return f"flow:{settings.matrix.user_id}".encode()


def mentioned_notices(body: str) -> list[int]:
    """Notice ids a message names (``F12`` or a notice link), in order, once each."""
    ids: list[int] = []
    for match in _MENTION.finditer(body):
        number = int(match.group(1) or match.group(2))
        if number not in ids:
            ids.append(number)
    return ids


@dataclass(frozen=True)
class _Pending:
    seq: int  # arrival order, to tell facts buffered before an opt-out from later ones
    row: FlowRow
    mentions: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Read:
    seq: int
    room_id: str
    event_id: str
    sender_key: str


class Intake:
    """The buffer and its flushes for one app."""

    def __init__(self, app: Host) -> None:
        self.app = app
        self.secret = flow_secret(app.settings)
        self.rows: list[_Pending] = []
        self.reads: list[_Read] = []
        self._seen: set[bytes] = set()
        # Keys dropped by an opt-out or erasure, with the arrival number they were dropped
        # at, so a flush already under way cannot bring back what came before.
        self._dropped: dict[str, int] = {}
        self._seq = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.flush_after = FLUSH_AFTER
        self.flush_rows = FLUSH_ROWS
        self.flushed = 0  # rows written, for the bench and tests
        self.flushes = 0  # transactions that wrote them

    def key(self, user_id: str) -> str:
        return flow.pseudonym(self.secret, user_id)

    # -- hooks: memory only, never the session ------------------------------------------

    async def on_message(self, message: Incoming, room: RoomContext) -> None:
        if room.is_direct or command_line(message.body, self.app.settings.bot.prefix):
            return
        mentions = tuple(mentioned_notices(message.body))
        kind = "reply" if message.reply_to else "forward" if mentions else "message"
        self._add(_Pending(self._next(), FlowRow(
            event_id=message.event_id, room_id=message.room_id,
            sender_key=self.key(message.sender), at=message.timestamp, kind=kind,
            notice_id=mentions[0] if mentions else None, target_event=message.reply_to,
        ), mentions))

    async def on_reaction(self, reaction: Reaction) -> None:
        self._add(_Pending(self._next(), FlowRow(
            event_id=reaction.event_id, room_id=reaction.room_id,
            sender_key=self.key(reaction.sender), at=reaction.timestamp, kind="reaction",
            target_event=reaction.target_event_id,
        )))

    async def on_receipt(self, receipt: Receipt) -> None:
        # Only to count each person once per event; the set never leaves memory.
        seen = hashlib.blake2b(f"{receipt.sender}\n{receipt.event_id}".encode(),
                               key=self.secret[:64], digest_size=16).digest()
        if seen in self._seen:
            return
        if len(self._seen) >= SEEN_RECEIPTS:
            self._seen.clear()
        self._seen.add(seen)
        self.reads.append(
            _Read(self._next(), receipt.room_id, receipt.event_id, self.key(receipt.sender)))
        self._schedule()

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _was_dropped(self, key: str, seq: int) -> bool:
        return seq <= self._dropped.get(key, 0)

    def drop(self, sender_key: str) -> None:
        """Forget buffered facts from someone who just opted out or asked to be forgotten."""
        self._dropped[sender_key] = self._next()
        self.rows = [p for p in self.rows if p.row.sender_key != sender_key]
        self.reads = [r for r in self.reads if r.sender_key != sender_key]

    def _add(self, pending: _Pending) -> None:
        self.rows.append(pending)
        if len(self.rows) > MAX_BUFFER:
            del self.rows[: len(self.rows) - MAX_BUFFER]
            log.warning("flow intake buffer full: oldest records dropped")
        self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():
            return  # the running flush takes what has piled up when it ends
        if len(self.rows) + len(self.reads) >= self.flush_rows:
            self._spawn(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.flush_after, self._spawn, loop)

    def _spawn(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._task = loop.create_task(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("flow intake flush failed; will retry with the next batch")
        if self.rows or self.reads:
            # What arrived during the flush: at once if it is a batch, else on the timer.
            self._task = None
            self._schedule()

    # -- the flush -----------------------------------------------------------------------

    async def flush(self) -> int:
        """Write what is buffered in one transaction; returns the rows written."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            rows, self.rows = self.rows, []
            reads, self.reads = self.reads, []
            if not rows and not reads:
                return 0
            try:
                written = await self._write(rows, reads)
            except Exception:
                # Put them back (ahead of newer facts) for the next flush.
                self.rows[:0], self.reads[:0] = rows, reads
                raise
            self.flushed += written
            self.flushes += 1
            return written

    async def _write(self, rows: list[_Pending], reads: list[_Read]) -> int:
        # Room kinds may need the server: ask before the transaction takes the write lock.
        room_ids = {p.row.room_id for p in rows} | {r.room_id for r in reads}
        direct = {r for r in room_ids if (await self.app.room_context(r)).is_direct}
        now = self.app.clock.now()
        async with self.app.db.transaction() as session:
            excluded = direct | {r for r in room_ids - direct
                                 if await mediation.is_case_room(session, r)}
            keys = {p.row.sender_key for p in rows} | {r.sender_key for r in reads}
            out = await flow.opted_out(session, keys)
            rows = [p for p in rows if p.row.room_id not in excluded and p.row.sender_key not in out
                    and not self._was_dropped(p.row.sender_key, p.seq)]
            reads = [r for r in reads if r.room_id not in excluded and r.sender_key not in out
                     and not self._was_dropped(r.sender_key, r.seq)]
            targets = {p.row.target_event for p in rows if p.row.target_event}
            posts = await flow.notice_posts(session, targets | {r.event_id for r in reads})
            known = await flow.known_notices(session, {n for p in rows for n in p.mentions})
            final = [_resolve(p, posts, known) for p in rows]
            await flow.add_events(session, final)
            counts: dict[tuple[str, int], int] = {}
            for r in reads:
                notice_id = posts.get(r.event_id)
                if notice_id is not None:
                    counts[(r.room_id, notice_id)] = counts.get((r.room_id, notice_id), 0) + 1
            await flow.add_receipts(session, counts, now)
        return len(final)

    async def stop(self) -> None:
        """Flush what is left; call before the database closes."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self.flush()


def _resolve(p: _Pending, posts: dict[str, int], known: set[int]) -> FlowRow:
    """The notice a row points to: the post it replies or reacts to, else one it names."""
    row = p.row
    target = posts.get(row.target_event) if row.target_event else None
    if target is not None:
        return replace(row, notice_id=target)
    named = next((n for n in p.mentions if n in known), None)
    if named is None:
        return replace(row, notice_id=None, kind="message" if row.kind == "forward" else row.kind)
    return replace(row, notice_id=named, kind="forward" if row.kind != "reaction" else row.kind)


def intake_of(app: Host) -> Intake:
    """The app's intake (``install`` hooked it in; no registry of apps is kept)."""
    for hook in app.hooks.message:
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, Intake):
            return owner
    raise LookupError("the intake feature is not installed in this app")


async def stop(app: Host) -> None:
    """Flush the app's intake buffer; the service should call this before closing the db."""
    await intake_of(app).stop()


def install(app: Host) -> None:
    intake = Intake(app)
    app.hooks.message.append(intake.on_message)
    app.hooks.reaction.append(intake.on_reaction)
    app.hooks.receipt.append(intake.on_receipt)
    app.closers.append(intake.stop)
