"""Builds and refreshes the room tree in the background, resumably.

Room creation is network I/O and may be slow (Synapse's room-creation rate
limit), so it never runs inside a command's transaction: the command records a
setup run, and this worker does the run after the commit, recording each room
in its own short transaction. A run the bot did not finish (a crash, a
restart) is still unfinished in the database and is done again; rooms already
recorded are only checked, so it resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote
from weakref import WeakKeyDictionary

from sqlalchemy import func, select

from bot.background import Woken
from bot.features import tree_plan as plan
from bot.transport.base import RateLimited, TransportError
from storage import outbox, roles, tree

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger("grapevine.rooms")

T = TypeVar("T")
# Without a rate-limit override, say how far the build has got at most this often.
PROGRESS_EVERY = 30.0
# Record progress in the run row every so many rooms.
CHECKPOINT_EVERY = 20
# Rooms made or checked at once. Links into parents run beside them (below), so three
# keep Synapse busy; six made it (one process) slower on a quiet machine.
CONCURRENCY = 3
# Links into parent spaces are light state events; more of them can be in flight.
LINK_CONCURRENCY = 6


@dataclass
class Outcome:
    total: int = 0
    done: int = 0
    created: int = 0
    changed: int = 0
    skipped: list[str] = field(default_factory=list)

    def copy_to(self, run: tree.SetupRun) -> None:
        run.done, run.total, run.created, run.changed = (
            self.done, self.total, self.created, self.changed)


class TreeBuilder(Woken):
    """One per app: does unfinished setup runs one at a time, woken after commits."""

    name = "room-tree"

    def __init__(self, app: Host) -> None:
        super().__init__()
        self.app = app
        # Run ids queued by commands (maybe not yet committed), and whether to look for
        # runs a previous process left unfinished.
        self._awaited: set[int] = set()
        self._resume = True
        self._unlimited: bool | None = None
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def expect(self, run_id: int) -> None:
        """A command queued this run; the wake after its commit starts it."""
        self._awaited.add(run_id)

    def resume(self) -> None:
        """Look again for unfinished runs (start-up, periodic sweep)."""
        self._resume = True
        self.wake()

    def wanted(self) -> bool:
        return bool(self._awaited or self._resume)

    async def work_once(self) -> bool:
        self._resume = False
        try:
            async with self.app.db.transaction() as session:
                runs = [r.id for r in await tree.unfinished_runs(session)]
                newest = await session.scalar(select(func.max(tree.SetupRun.id))) or 0
        except Exception:  # e.g. the database busy: the next wake or sweep tries again
            log.exception("could not read the room tree's setup runs")
            self._resume = True
            return False
        # Awaited runs at or below the newest id were committed or rolled back.
        self._awaited = {i for i in self._awaited if i > newest}
        for run_id in runs:
            try:
                await self._do(run_id)
            except Exception as exc:  # a run must never kill the worker
                log.exception("room tree run %s failed", run_id)
                await self._fail(run_id, exc)
        return True

    # -- one run ------------------------------------------------------------------------

    async def _do(self, run_id: int) -> None:
        app = self.app
        async with app.db.transaction() as session:
            run = await tree.get_run(session, run_id)
            if run is None or run.finished_at is not None:
                return
            recorded = {k: (r.room_id, list(r.moderators)) for k, r in
                        (await tree.all_rooms(session)).items()}
            grants = [(g.user_id, g.area_code) for g in await roles.all_grants(session)
                      if g.role == "moderator"]
            area_code, power_only = run.area_code, run.power_only
        by_area = plan.moderators_by_area(app.config_moderators, grants)
        wanted = plan.plan_for(app.areas, app.themes, area_code)
        if power_only:
            wanted = [r for r in wanted if r.key in recorded
                      and app.areas.contains(area_code, r.area_code)]
        run_state = _Run(self, run_id, wanted, recorded, by_area, power_only)
        try:
            outcome = await run_state.go()
        except Exception as exc:
            log.exception("room tree run %s failed", run_id)
            while isinstance(exc, ExceptionGroup):
                exc = exc.exceptions[0]
            await self._fail(run_id, exc, run_state.outcome)
            return
        await self._finish(run_id, outcome)

    async def lift_rate_limit(self) -> bool:
        """Ask Synapse to drop the bot's rate limits (works when the bot is a server admin)."""
        if self._unlimited is not None:
            return self._unlimited
        transport: Any = self.app.transport
        request = getattr(transport, "request", None)
        if request is None:
            self._unlimited = False
            return False
        path = f"/_synapse/admin/v1/users/{quote(transport.user_id, safe='')}/override_ratelimit"
        try:
            await request("POST", path, {"messages_per_second": 0, "burst_count": 0})
            self._unlimited = True
        except TransportError as exc:
            log.info("no rate-limit override (%s): pacing room creation", exc.errcode)
            self._unlimited = False
        return self._unlimited

    async def _finish(self, run_id: int, outcome: Outcome) -> None:
        app = self.app
        async with app.db.transaction() as session:
            run = await tree.get_run(session, run_id)
            if run is None:
                return
            outcome.copy_to(run)
            run.finished_at = app.clock.now()
            if run.report_room:
                await self._report(session, run, summary(app, run.area_code, outcome), "done")
        app.queued()

    async def _fail(self, run_id: int, exc: Exception, outcome: Outcome | None = None) -> None:
        """Stop a run that hit an error and say so; running it again carries on."""
        app = self.app
        reason = exc.errcode if isinstance(exc, TransportError) else type(exc).__name__
        async with app.db.transaction() as session:
            run = await tree.get_run(session, run_id)
            if run is None:
                return
            if outcome is not None:
                outcome.copy_to(run)
            run.finished_at = app.clock.now()
            run.error = reason[:500]
            if run.report_room:
                label = app.areas.label(run.area_code)
                await self._report(session, run, (
                    f"Setting up rooms for {label} stopped after {run.done} of {run.total} "
                    f"({reason}). Run {app.settings.bot.prefix}rooms setup area={run.area_code} "
                    "again to carry on from there."
                ), "failed")
        app.queued()

    async def checkpoint(self, run_id: int, outcome: Outcome, *, report: bool) -> None:
        app = self.app
        async with app.db.transaction() as session:
            run = await tree.get_run(session, run_id)
            if run is None:
                return
            outcome.copy_to(run)
            if report and run.report_room:
                label = app.areas.label(run.area_code)
                await self._report(session, run, (
                    f"Rooms for {label}: {outcome.done} of {outcome.total} done. The server "
                    "limits how fast I may make rooms, so this takes a while; I'll say when "
                    "it's finished."
                ), f"progress:{outcome.done}")
        if report:
            app.queued()

    async def _report(self, session: Any, run: tree.SetupRun, body: str, what: str) -> None:
        extra = ({"m.relates_to": {"m.in_reply_to": {"event_id": run.report_event}}}
                 if run.report_event else None)
        await outbox.enqueue(
            session, now=self.app.clock.now(), room_id=run.report_room, body=body,
            extra=extra, dedupe_key=f"tree-run:{run.id}:{what}",
        )

    async def paced(self, call: Callable[[], Awaitable[T]], on_wait: Callable[[], Awaitable[None]]
                    ) -> T:
        """``call()``, waiting out 429s for as long as the server asks."""
        while True:
            try:
                return await call()
            except RateLimited as exc:
                await on_wait()
                await self.sleep(max(exc.retry_after_ms or 1000, 50) / 1000)


class _Run:
    """The state of one run while it walks the plan, parents first."""

    def __init__(self, builder: TreeBuilder, run_id: int, wanted: list[plan.PlannedRoom],
                 recorded: dict[str, tuple[str, list[str]]], by_area: dict[str, set[str]],
                 power_only: bool) -> None:
        self.builder = builder
        self.app = builder.app
        self.run_id = run_id
        self.wanted = wanted
        self.room_ids = {key: room_id for key, (room_id, _) in recorded.items()}
        self.previous = {key: mods for key, (_, mods) in recorded.items()}
        self.by_area = by_area
        self.power_only = power_only
        self.made_now: set[str] = set()
        self.outcome = Outcome(total=len(wanted))
        self.children: dict[str, list[plan.PlannedRoom]] = {}
        for room in wanted:
            if room.parent_key:
                self.children.setdefault(room.parent_key, []).append(room)
        self._last_report = time.monotonic()
        self._waited = False
        self._links = asyncio.Semaphore(LINK_CONCURRENCY)

    @property
    def server(self) -> str:
        return self.app.transport.server_name

    async def go(self) -> Outcome:
        if any(room.key not in self.room_ids for room in self.wanted):
            await self.builder.lift_rate_limit()
        # Generation by generation (a parent is done before its children start); within
        # one, a few rooms at a time: the homeserver overlaps their work.
        limit = asyncio.Semaphore(CONCURRENCY)
        for generation in _generations(self.wanted):
            async with asyncio.TaskGroup() as group:
                for room in generation:
                    group.create_task(self._one(room, limit))
        return self.outcome

    async def _one(self, room: plan.PlannedRoom, limit: asyncio.Semaphore) -> None:
        link: Callable[[], Awaitable[object]] | None = None
        async with limit:
            if room.key in self.room_ids:
                await self._refresh(room)
            else:
                link = await self._create(room)
            self.outcome.done += 1
            if self.outcome.done % CHECKPOINT_EVERY == 0:
                await self.builder.checkpoint(self.run_id, self.outcome, report=False)
        if link is not None:
            # Linking into the parent is a light state event: it overlaps the next
            # creations instead of holding one of the few creation slots.
            async with self._links:
                await self.builder.paced(link, self._waiting)

    async def _waiting(self) -> None:
        self._waited = True
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_EVERY:
            self._last_report = now
            await self.builder.checkpoint(self.run_id, self.outcome, report=True)

    def _moderators(self, room: plan.PlannedRoom) -> set[str]:
        return plan.moderators_of(self.app.areas, room.area_code, self.by_area)

    async def _refresh(self, room: plan.PlannedRoom) -> None:
        transport = self.app.transport
        room_id = self.room_ids[room.key]
        state = await transport.room_state(room_id)
        moderators = self._moderators(room)
        if self.power_only:
            power = plan.power_change(
                next((e for e in state if e.get("type") == "m.room.create"), None),
                next((e.get("content") or {} for e in state
                      if e.get("type") == "m.room.power_levels" and not e.get("state_key")), {}),
                moderators, self.previous.get(room.key, ()),
            )
            changes = [] if power is None else [
                plan.StateEvent("m.room.power_levels", "", power)]
        else:
            parent_id = self.room_ids.get(room.parent_key) if room.parent_key else None
            children = {self.room_ids[c.key]: c.order for c in self.children.get(room.key, [])
                        if c.key in self.room_ids and c.key not in self.made_now}
            changes = plan.state_changes(
                state, parent_room_id=parent_id, children=children, server=self.server,
                moderators=moderators, previous_moderators=self.previous.get(room.key, ()),
            )
        for event in changes:
            await self.builder.paced(functools.partial(
                transport.put_state, room_id, event.type, event.content, event.state_key,
            ), self._waiting)
        if changes:
            self.outcome.changed += 1
        if sorted(moderators) != sorted(self.previous.get(room.key, ())):
            async with self.app.db.transaction() as session:
                await tree.set_moderators(session, room.key, sorted(moderators))

    async def _create(self, room: plan.PlannedRoom) -> Callable[[], Awaitable[object]] | None:
        """Make the room; returns the request that links it into its parent space."""
        transport = self.app.transport
        parent_id = self.room_ids.get(room.parent_key) if room.parent_key else None
        if room.parent_key and parent_id is None:
            self.outcome.skipped.append(room.name)
            return None
        alias = f"#{room.alias}:{self.server}"
        moderators = self._moderators(room)
        spec = plan.room_spec(room, parent_id, self.server, moderators)
        try:
            room_id = await self.builder.paced(lambda: transport.create_room(spec), self._waiting)
        except TransportError as exc:
            if exc.errcode != "M_ROOM_IN_USE":
                raise
            await self._adopt(room, alias)
            return None
        await self._record(room, room_id, alias, sorted(moderators))
        self.made_now.add(room.key)
        self.outcome.created += 1
        if parent_id is None:
            return None
        return lambda: transport.put_state(
            parent_id, "m.space.child", plan.child_link(self.server, room.order), room_id)

    async def _adopt(self, room: plan.PlannedRoom, alias: str) -> None:
        """The alias exists: a room made just before an interruption, never recorded?"""
        existing = await self.app.transport.resolve_alias(alias)
        if existing is None or not await self._made_by_bot(existing):
            self.outcome.skipped.append(f"{alias} (taken by another room)")
            return
        await self._record(room, existing, alias, [])
        await self._refresh(room)
        parent_id = self.room_ids.get(room.parent_key) if room.parent_key else None
        if parent_id is not None and not (await self.app.transport.get_state(
                parent_id, "m.space.child", existing) or {}).get("via"):
            await self.app.transport.put_state(
                parent_id, "m.space.child", plan.child_link(self.server, room.order), existing)

    async def _made_by_bot(self, room_id: str) -> bool:
        try:
            state = await self.app.transport.room_state(room_id)
        except TransportError:
            return False
        create = next((e for e in state if e.get("type") == "m.room.create"), {})
        return create.get("sender") == self.app.transport.user_id

    async def _record(self, room: plan.PlannedRoom, room_id: str, alias: str,
                      moderators: list[str]) -> None:
        now = self.app.clock.now()
        async with self.app.db.transaction() as session:
            await tree.record_room(session, tree.TreeRoom(
                key=room.key, room_id=room_id, alias=alias, kind=room.kind,
                area_code=room.area_code, theme=room.theme, name=room.name,
                parent_key=room.parent_key, moderators=moderators, created_at=now,
            ))
        self.room_ids[room.key] = room_id
        self.previous[room.key] = moderators


def _generations(rooms: list[plan.PlannedRoom]) -> list[list[plan.PlannedRoom]]:
    """Rooms grouped by depth in the plan, top first (the plan lists parents first)."""
    depth: dict[str, int] = {}
    groups: dict[int, list[plan.PlannedRoom]] = {}
    for room in rooms:
        level = depth.get(room.parent_key, -1) + 1 if room.parent_key else 0
        depth[room.key] = level
        groups.setdefault(level, []).append(room)
    return [groups[level] for level in sorted(groups)]


def summary(app: Host, area_code: str, outcome: Outcome) -> str:
    label = app.areas.label(area_code)
    lines = []
    if outcome.created == 0 and outcome.changed == 0:
        lines.append(f"Rooms for {label}: nothing to change; all {outcome.done} rooms and "
                     "spaces are in place.")
    else:
        right = outcome.done - outcome.created - outcome.changed
        parts = [f"made {outcome.created}" if outcome.created else "",
                 f"updated {outcome.changed}" if outcome.changed else "",
                 f"{right} already right" if right else ""]
        lines.append(f"Rooms for {label}: {', '.join(p for p in parts if p)}.")
    if outcome.skipped:
        shown = ", ".join(outcome.skipped[:5])
        more = f" and {len(outcome.skipped) - 5} more" if len(outcome.skipped) > 5 else ""
        lines.append(f"Skipped: {shown}{more}.")
    lines.append(f"{app.settings.bot.prefix}rooms area={area_code} lists them.")
    return "\n".join(lines)


async def build_now(app: Host, area_code: str, requested_by: str = "grapevine"
                    ) -> tree.SetupRun:
    """Build or refresh one area's part of the tree and wait for it (demo, bench, scripts)."""
    async with app.db.transaction() as session:
        run_id = (await tree.start_run(session, area_code=area_code, requested_by=requested_by,
                                       at=app.clock.now())).id
    builder = builder_for(app)
    builder.expect(run_id)
    builder.wake()
    await builder.idle()
    async with app.db.transaction() as session:
        run = await tree.get_run(session, run_id)
    assert run is not None
    return run


_BUILDERS: WeakKeyDictionary[Host, TreeBuilder] = WeakKeyDictionary()


def builder_for(app: Host) -> TreeBuilder:
    builder = _BUILDERS.get(app)
    if builder is None:
        builder = _BUILDERS[app] = TreeBuilder(app)
    return builder
