"""The bot itself: events in, commands dispatched, effects and replies committed together.

Handlers decide and storage persists; this module only routes. Each command
runs in one transaction together with the record that its event was handled
and the replies it queued, so a crash or restart neither replays nor loses it.
What it routes through lives beside it: who and where (``bot.directory``), the
questions it has open (``bot.questions``), the greeting (``bot.greeting``),
redacting personal data (``bot.redaction``), its refusals
(``bot.commands.refusals``) and its apology when the server keeps failing
(``bot.apology``); what a command leaves for after its commit
(``bot.aftercommit``), deferred jobs (``bot.deferral``) and handing committed
replies to the outbox worker (``bot.runtime.handoff``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot import aftercommit
from bot.aftercommit import collecting, defer, run_after_commit, wake_after_commit
from bot.apology import apologise
from bot.clock import Clock, SharedClock, shared
from bot.commands.context import Context, Sender
from bot.commands.dispatch import (
    Choose,
    CommandLine,
    FixThenAsk,
    Missing,
    Overrides,
    bind,
    command_line,
)
from bot.commands.lexer import LexError, tokenize
from bot.commands.refusals import not_allowed, sorry, unknown
from bot.commands.registry import REGISTRY, AskFor, Command, CommandError, Registry, Where
from bot.deferral import Deferrals
from bot.directory import Directory, WhoAndWhere
from bot.dm_reach import DmReach
from bot.events import Incoming, Reaction, Receipt, RoomContext, StateChange
from bot.features import quiet
from bot.greeting import joined_many
from bot.host import Hooks, RoleListener
from bot.offload import InThread, Offload
from bot.pager import Pager
from bot.prefetch import ReadFirst, kept, once, reading
from bot.questions import Questions
from bot.ratelimit import RateLimiter, Verdict
from bot.redaction import Redaction
from bot.runtime.backoff import Backoff
from bot.runtime.handoff import Handoff, hand_over, lease_as_queued, lease_replies
from bot.runtime.inflight import Lanes
from bot.scheduler import Job, Scheduler
from bot.transport.base import Transport, TransportError, is_transient
from config.areas import AreaIndex
from config.settings import Settings
from config.themes import Theme, load_themes
from storage import activity, groups, outbox, rooms, state
from storage.engine import Database, after_commit

log = logging.getLogger("grapevine")

# Server reads one command may ask for before it is decided (bot.prefetch).
MAX_READS = 20

# Where a failed handler's answer is kept for the command's second decision.
FAILED = "handler failed"

Answer = Callable[[Context], Awaitable[None]]


class HandlerFailed(Exception):
    """A handler failed: its transaction is rolled back and the command decided again,
    answering with what the failure left (kept under :data:`FAILED`)."""


class Grapevine(WhoAndWhere):
    """The router. Features see it only as a :class:`bot.host.Host`; the service
    (or the shell, or a test world) installs them after constructing it."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        transport: Transport,
        *,
        clock: Clock | None = None,
        areas: AreaIndex | None = None,
        themes: tuple[Theme, ...] | None = None,
        registry: Registry = REGISTRY,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.transport = transport
        self._clock = shared(clock)
        self.areas = areas or AreaIndex.load(settings.areas.file)
        self.themes = themes or load_themes()
        self.registry = registry
        self.hooks = Hooks()
        # Set by the service; None in the shell and fast tests (jobs are then run by hand).
        self.scheduler = scheduler
        # aiohttp routes features serve (notice links); the service mounts them.
        self.web_routes: list[web.RouteDef] = []
        self.sync_status: Callable[[], datetime | None] = lambda: None
        # Seconds the last sync's batch took to hand over and store (for !status).
        self.sync_took: Callable[[], float | None] = lambda: None
        # Run on a clean stop, before the database closes (flush buffers).
        self.closers: list[Callable[[], Awaitable[None]]] = []
        # Called when a role changes, e.g. to update power levels in the area's rooms.
        self.role_listeners: list[RoleListener] = []
        self.started_at = self.clock.now()
        self.limiter = RateLimiter(settings.bot.commands_per_minute)
        self.pager = Pager(self.clock)
        self.dm_reach = DmReach()
        # Who and where (room kinds, power levels, roles, recent senders), cached.
        self.directory = Directory(settings, db, transport, self.areas)
        self.config_moderators = self.directory.config_moderators
        self.ignore_checks = self.directory.ignore_checks
        self.questions = Questions(db)
        # Creation, power levels and encryption of each room, fed by the sync loop.
        self.room_states = self.directory.room_states
        # Callbacks woken after a commit, each with whether it is the outbox worker's.
        self._wake: list[tuple[Callable[[], None], bool]] = []
        # Set by the service: events are then handled in per-room lanes off the sync
        # loop. None (the shell, the in-process world): handled before on_message returns.
        self.lanes: Lanes | None = None
        # Set by the service: where just-committed replies go to be sent at once.
        self.handoff: Handoff | None = None
        # Event ids queued in a lane and not finished yet (a retried batch delivers again).
        self._taken: set[str] = set()
        # A command whose preparation fails on a transient error is tried this many
        # times, waiting ``retry_backoff`` between tries, before the person is told.
        self.retry_tries = 8
        self.retry_backoff = lambda: Backoff(initial=0.5, cap=30.0)
        # Deferred work (!reach ...) says "working on it" when it has not finished
        # after ``working_after`` seconds (lanes only); bot.deferral runs it.
        self.working_after = 3.0
        self.deferrals = Deferrals(self)
        # Where deferred jobs run heavy work: a thread here; the service sets a process
        # pool, so a model's Python does not hold the GIL the event loop needs.
        self.offload: Offload = InThread()

    # -- wiring ---------------------------------------------------------------------------

    async def close(self) -> None:
        for closer in self.closers:
            try:
                await closer()
            except Exception:
                log.exception("a feature failed to close cleanly")

    def add_job(self, job: Job) -> None:
        """A periodic job (sweeps, digests, polling); ignored where there is no scheduler."""
        if self.scheduler is not None:
            self.scheduler.add(job)

    def on_queued(self, callback: Callable[[], None], *, outbox: bool = False) -> None:
        """Call ``callback`` after a transaction queued work (outbox messages, rooms to
        make); ``outbox``: it is the outbox worker's, which a command whose messages all
        went straight to the worker does not call (see :meth:`_decide_once`)."""
        self._wake.append((callback, outbox))

    def queued(self) -> None:
        if wake_after_commit():
            return  # inside a command's transaction: woken once it commits
        self._wake_all(outbox=True)

    def _wake_all(self, *, outbox: bool) -> None:
        for callback, for_outbox in self._wake:
            if outbox or not for_outbox:
                callback()

    @property
    def clock(self) -> SharedClock:
        """The bot's one clock, shared with its outbox worker, scheduler and sync loop."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        # Every component holds the shared clock, so this moves them all, not the app alone.
        self._clock.follow(clock)

    # -- events ---------------------------------------------------------------------------

    async def on_message(self, message: Incoming) -> None:
        if message.replaces or message.msgtype not in {"m.text", "m.emote"}:
            # m.notice is how bots talk; answering it is how two bots loop.
            return
        self.directory.remember_sender(message)
        line = command_line(message.body, self.settings.bot.prefix)
        # Bots are ignored, except a relay bot passing on a person's "Name: !cmd",
        # which is answered as a member's (the relay's own power never counts).
        if self.is_ignored_sender(message.sender) and not (line and line.relayed):
            return
        if message.sender == self.transport.user_id:
            return
        lanes = self.lanes
        if lanes is None:
            await self._handle(message, line)
            return
        if message.event_id in self._taken:
            return
        room = self.directory.known_room_context(message.room_id)
        if (room is not None and line is None and not lanes.busy(message.room_id)
                and not await self.questions.may_be_answering(message)):
            await self._hear(message, room)  # ordinary chat: no task, no transaction
            return
        self._taken.add(message.event_id)

        async def job() -> None:
            try:
                await self._handle(message, line)
            finally:
                self._taken.discard(message.event_id)

        lanes.submit(message.room_id, job)

    async def _hear(self, message: Incoming, room: RoomContext) -> None:
        for hook in self.hooks.message:
            await hook(message, room)

    async def _handle(self, message: Incoming, line: CommandLine | None) -> None:
        """Prepare (network reads), then decide in one transaction; transient failures
        are tried again with backoff, so a command is answered once, not dropped."""
        with reading():  # the server reads a command needs, kept across its tries
            await self._tries(message, line)

    async def _tries(self, message: Incoming, line: CommandLine | None) -> None:
        backoff = self.retry_backoff()
        heard = False
        tries = 0
        while True:
            tries += 1
            try:
                # Network reads first: a transaction holds SQLite's write lock until it ends.
                room = await self.room_context(message.room_id)
                if not heard:
                    heard = True
                    await self._hear(message, room)
                if line is None and not await self.questions.may_be_answering(message):
                    return  # ordinary chat: no transaction at all
                if not room.is_direct:
                    await self.power_levels(message.room_id)
                await self._decide(message, room, line)
                return
            except TransportError as err:
                if not is_transient(err):
                    raise
                if tries >= self.retry_tries:
                    log.warning("giving up on %s after %d tries: %s",
                                message.event_id, tries, err.errcode)
                    if line is not None:
                        await apologise(self, message)
                    return
                wait = backoff.next_delay()
                log.info("handling %s failed (%s): try %d in %.1f s",
                         message.event_id, err.errcode, tries + 1, wait)
                await asyncio.sleep(wait)

    async def _decide(self, message: Incoming, room: RoomContext,
                      line: CommandLine | None) -> None:
        """Decide in one transaction; a server read the command turns out to need is
        made outside it, and the command decided again with the answer (bot.prefetch)."""
        for _ in range(MAX_READS):
            try:
                await self._decide_once(message, room, line)
                return
            except ReadFirst as first:
                await first.read()  # the transaction has rolled back
            except HandlerFailed:
                pass  # rolled back; decided again, with the failure's answer kept
        raise RuntimeError(f"{message.event_id} kept asking for server reads")

    async def _decide_once(self, message: Incoming, room: RoomContext,
                           line: CommandLine | None) -> None:
        with collecting() as pending:
            async with self.db.transaction() as session:
                now = self.clock.now()
                if self.handoff is not None:
                    lease_as_queued(session, now)
                # Checked and recorded in one statement: the fewer round trips a command's
                # transaction makes, the sooner a person has the answer (bench/latency.py).
                if not await state.claim(session, message.event_id, message.room_id, now):
                    return
                if line is not None:
                    await self._command(session, message, room, line, now)
                else:
                    await self._maybe_answer_prompt(session, message, room, now)
                if pending.deferred:
                    # A deferred command is recorded as handled with its answer, later.
                    await state.unclaim(session, message.event_id)
                # Just-committed replies go straight to the worker (bot.runtime.handoff).
                handed = await lease_replies(session, now) if self.handoff is not None else []
                # The worker needs a pass only for what it was not handed: a pass after
                # every reply would run beside its send, and slow it (bench/latency.py).
                for_pass = pending.wake or len(outbox.queued_in(session)) > len(handed)
                after_commit(session, lambda: hand_over(handed, self.handoff))
            await self.committed(outbox=for_pass)
        for ctx, job in pending.deferred:
            await self.deferrals.run(ctx, job, name=f"deferred {message.event_id}")

    # -- contexts -----------------------------------------------------------------------

    def context_for(self, session: AsyncSession, message: Incoming, room: RoomContext,
                    sender: Sender, now: datetime, command: Command | None = None) -> Context:
        """A handler's context; its deferred jobs go to bot.aftercommit, then bot.deferral."""
        return Context(self, session, message, room, sender, now, command,
                       registry=self.registry, defer_to=defer)

    async def on_reaction(self, reaction: Reaction) -> None:
        if self.is_ignored_sender(reaction.sender):
            return
        for hook in self.hooks.reaction:
            await hook(reaction)

    async def on_receipt(self, receipt: Receipt) -> None:
        if self.is_ignored_sender(receipt.sender):
            return
        for hook in self.hooks.receipt:
            await hook(receipt)

    async def on_state(self, change: StateChange) -> None:
        # The kept state itself is fed by the sync loop before the room's events arrive.
        wanted = [hook for wants, hook in self.hooks.state if wants(change)]
        if not wanted:
            return
        async with self.db.transaction() as session:
            for hook in wanted:
                await hook(session, change)
        await self.committed()

    async def on_joined(self, room_id: str, *, is_direct: bool) -> None:
        await self.on_joined_many([(room_id, is_direct)])

    async def on_joined_many(self, joins: Sequence[tuple[str, bool]]) -> None:
        for room_id, _ in joins:
            self.forget_room_context(room_id)
        await joined_many(self, joins)
        await self.committed()

    async def on_left(self, room_id: str) -> None:
        self.forget_room_context(room_id)
        self.room_states.forget(room_id)
        async with self.db.transaction() as session:
            await rooms.left(session, room_id, self.clock.now())

    async def committed(self, *, outbox: bool = True) -> None:
        """After a transaction commits: wake the workers (the outbox worker only if
        ``outbox``), run what the command left."""
        self._wake_all(outbox=outbox)
        await run_after_commit()

    # -- commands -------------------------------------------------------------------------

    async def _command(
        self,
        session: AsyncSession,
        message: Incoming,
        room: RoomContext,
        line: CommandLine,
        now: datetime,
        overrides: Overrides | None = None,
    ) -> None:
        prefix = self.settings.bot.prefix
        sender = await self.directory.sender(session, message.sender, room,
                                             relayed=line.relayed)
        ctx = self.context_for(session, message, room, sender, now)
        try:
            tokens = tokenize(line.text)
        except LexError as exc:
            # Only our own words get told off: other bots in the room own other !words.
            first = line.text.split(maxsplit=1)[0].lower() if line.text.split() else ""
            if first in self.registry.top_words() or self.registry.near_miss(first):
                await ctx.reply(str(exc))
            return
        found = self.registry.find(tokens.words)
        if found is not None and found[0].personal:
            # Personal data leaves the room whatever happens next (even if not answered);
            # in a shared room, the answers by DM wait to say whether it did.
            redaction = self._redact_after_commit(message)
            if not room.is_direct:
                ctx.redaction = redaction
        group = None if room.is_direct else await groups.by_room(session, room.room_id)
        if not quiet.may_answer(message, room, sender, group):
            return
        if found is None:
            await unknown(ctx, self.registry, tokens.words)
            return
        command, consumed = found
        ctx.command = command
        if group is not None:
            # A group room that uses the bot is an active room for the adoption report.
            await activity.note_command(session, room.room_id, ctx.today, now)
        if command.personal or (command.where is Where.DM and not room.is_direct):
            ctx.private_replies = True
        if overrides is None:
            verdict = once(("limit", message.event_id),
                           lambda: self.limiter.check(sender.user_id, now.timestamp()))
            if verdict is Verdict.DROP:
                return
            if verdict is Verdict.WARN:
                await ctx.reply(
                    "You're sending commands faster than I can take them; "
                    "please wait a minute and try again."
                )
                return
        if command.where is Where.ROOM and room.is_direct:
            # Said first: in a DM nobody is a group admin, so the role check would mislead.
            await ctx.reply(f"Run {prefix}{command.name} in your group's own room, not here.")
            return
        if not sender.may(command):
            await ctx.reply(not_allowed(command, sender, prefix))
            return
        if command.words != ("cancel",):
            # A new command abandons any question still open for this sender here.
            await self.cancel_prompt(session, room.room_id, sender.user_id)
        try:
            args = await bind(command, tokens, consumed, ctx, overrides)
        except CommandError as exc:
            await ctx.reply(str(exc))
            return
        except FixThenAsk as fix:
            # Told now what was wrong; asked for it again once this question is answered.
            again: Overrides = {**(overrides or {}), **dict.fromkeys(fix.bad)}
            await self.questions.ask(ctx, line, again, fix.then, before=fix.problems)
            return
        except (Missing, Choose) as question:
            await self.questions.ask(ctx, line, overrides, question)
            return
        await self._execute(ctx, command, args, line, overrides)

    async def _execute(self, ctx: Context, command: Command, args: Any, line: CommandLine,
                       overrides: Overrides | None) -> None:
        """Run the handler. If it fails, whatever it wrote must not stand: the whole
        transaction is rolled back (:class:`HandlerFailed`) and the command decided again
        with the failure's answer in the handler's place. A savepoint around every
        handler did the same for two statements on every command; failures are rare."""
        failed: Answer | None = kept((FAILED, ctx.message.event_id))
        if failed is not None:
            await failed(ctx)
            return
        answer: Answer
        try:
            await command.handler(ctx, args)
            return
        except CommandError as exc:
            text = str(exc)
            answer = lambda ctx: ctx.reply(text)  # noqa: E731
        except AskFor as ask:
            param = ask.param
            answer = lambda ctx: self.questions.ask_missing(ctx, line, overrides, param)  # noqa: E731
        except ReadFirst:
            raise  # rolled back, read outside, decided again
        except TransportError as exc:
            if is_transient(exc):
                raise  # the whole command is rolled back and tried again
            text = sorry(f"command {command.name}", ctx.message)
            answer = lambda ctx: ctx.reply(text)  # noqa: E731
        except Exception:
            text = sorry(f"command {command.name}", ctx.message)
            answer = lambda ctx: ctx.reply(text)  # noqa: E731
        once((FAILED, ctx.message.event_id), lambda: answer)
        raise HandlerFailed(command.name)

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` once the command's transaction has committed (never on rollback)."""
        aftercommit.after_commit(action)

    def _redact_after_commit(self, message: Incoming) -> Redaction:
        return aftercommit.after_commit_once(f"redact:{message.event_id}",
                                             lambda: Redaction(self, message))

    # -- answers to the bot's questions (bot.questions) -----------------------------------

    async def _maybe_answer_prompt(
        self, session: AsyncSession, message: Incoming, room: RoomContext, now: datetime
    ) -> None:
        key = (room.room_id, message.sender)
        question, private = await self.questions.open(session, key, now)
        redaction = self._redact_after_commit(message) if private else None
        if question is None:
            return
        try:
            overrides = question.answered(message.body, self.settings.bot.prefix)
        except CommandError as exc:
            sender = await self.directory.sender(session, message.sender, room)
            ctx = self.context_for(session, message, room, sender, now)
            if not room.is_direct:
                ctx.redaction = redaction
            await ctx.reply(str(exc))
            return
        await self.cancel_prompt(session, *key)
        line = CommandLine(question.command_line, relayed=question.relayed)
        await self._command(session, message, room, line, now, overrides)

    async def cancel_prompt(self, session: AsyncSession, room_id: str, user_id: str) -> bool:
        return await self.questions.cancel(session, room_id, user_id)
