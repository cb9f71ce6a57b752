"""Making mediation case rooms, after the opening command has committed.

Room creation is network I/O, so it never runs inside a command's transaction:
the command records the case, and this worker (woken after commits, and by a
periodic sweep after a restart or a refusal) makes the room. The room's alias
comes from the case's key, so a creation whose reply was lost, or a crash
between creating and recording, finds the same room instead of making a second.

The room is created with nobody in it but the bot; each person is then invited
on their own, so one whose server is down does not stop the others, and the
case records who really was invited. Those still pending are tried again on the
schedule the coordinator is told (backing off while their server stays down),
also when a room made before a crash is found again by its alias. Messages to
the room wait for the first person to join it (see bot/features/first_join.py),
so every server in the room receives them live.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.background import Woken
from bot.runtime.outbox_worker import JOIN_WAIT, release_if_joined
from bot.transport.base import RoomSpec, TransportError
from storage import mediation as cases
from storage import outbox, rooms
from storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger("grapevine.mediation")

RETRY_AFTER = timedelta(minutes=10)
# Pending invites are tried again after 5, 10, 20, 40 minutes, then every hour.
INVITE_RETRY_FIRST = timedelta(minutes=5)
INVITE_RETRY_MOST = timedelta(hours=1)
OUTBOX_MARKER = "org.grapevine.outbox"  # what the outbox worker stamps on each send
LOCKED = 100  # only the bot (the creator) may invite, kick or change the room's state
ROOM_EVENTS = ("m.room.name", "m.room.power_levels", "m.room.history_visibility",
               "m.room.canonical_alias", "m.room.avatar", "m.room.tombstone",
               "m.room.server_acl", "m.room.encryption", "m.room.join_rules",
               "m.room.topic", "m.room.pinned_events", "m.space.child")


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def federates(invite: list[str], server_name: str) -> bool:
    """A case room stays on this server unless someone invited lives elsewhere."""
    return any(server_of(u) != server_name for u in invite)


def invite_retry_after(tries: int) -> timedelta:
    """How long pending invites wait after ``tries`` failed rounds."""
    return min(INVITE_RETRY_MOST, INVITE_RETRY_FIRST * 2 ** max(tries - 1, 0))


def room_spec(ref: str, key: str, federate: bool, encrypted: bool) -> RoomSpec:
    """Invite-only, locked to the bot, history visible from the invite on, no guests.

    Nobody is invited in the creation itself: see :func:`invite_pending`.
    """
    return RoomSpec(
        name=f"Mediation {ref}",
        alias_localpart=f"gv-case-{key}",
        federate=federate,
        encrypted=encrypted,
        power_overrides={
            "invite": LOCKED, "kick": LOCKED, "ban": LOCKED, "redact": LOCKED,
            "state_default": LOCKED, "events": dict.fromkeys(ROOM_EVENTS, LOCKED),
        },
        initial_state=(
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": "invited"}},
            {"type": "m.room.guest_access", "state_key": "",
             "content": {"guest_access": "forbidden"}},
        ),
    )


def intro(ref: str, title: str, parties: list[str], mediator: str, prefix: str) -> str:
    return (
        f"{ref}: {title}. Parties: {', '.join(parties)}. Mediator: {mediator}.\n"
        "Only the people invited here can join; I record nothing about what is said here.\n"
        f"{prefix}mediation agree \"...\" proposes a shared norm; each group's admin confirms it "
        f"with {prefix}mediation confirm N1. {prefix}mediation action, done, session start|end, "
        "summary and close do the rest."
    )


@dataclass(frozen=True)
class _Wanted:
    case_id: int
    ref: str
    title: str
    key: str
    invite: list[str]
    parties: list[str]
    mediator: str
    opened_by: str


async def _make(app: Host, want: _Wanted) -> str:
    alias = f"#gv-case-{want.key}:{app.transport.server_name}"
    existing = await app.transport.resolve_alias(alias)
    if existing is not None:
        return existing
    spec = room_spec(want.ref, want.key, federates(want.invite, app.transport.server_name),
                     app.settings.matrix.encryption)
    return await app.transport.create_room(spec)


async def provision_rooms(app: Host, *, now: datetime | None = None,
                          force: bool = False) -> int:
    """One pass at a time per bot: the sweep and the worker would otherwise both invite
    (and count two failed rounds, so the retry would not be when the coordinator was told)."""
    lock = _locks.setdefault(app, asyncio.Lock())
    async with lock:
        return await _provision(app, now=now, force=force)


_locks: weakref.WeakKeyDictionary[Host, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _provision(app: Host, *, now: datetime | None, force: bool) -> int:
    """Make the rooms of cases that have none, and invite who is pending where it is due.

    Returns how many rooms were made. A case whose room could not be made is tried
    again after RETRY_AFTER, pending invites at the case's invite_retry_at
    (``force``: both now).
    """
    now = now or app.clock.now()
    async with app.db.transaction() as session:
        wanted = [
            _Wanted(c.id, c.ref, c.title, c.room_key, list(c.to_invite),
                    [f"{p.group_name} (G{p.group_id})"
                     for p in await cases.parties(session, c.id)],
                    c.mediator, c.opened_by)
            for c in await cases.without_room(session)
            if force or c.room_tried_at is None or c.room_tried_at <= now - RETRY_AFTER
        ]
    made = 0
    for want in wanted:
        try:
            room_id: str | None = await _make(app, want)
            error = None
        except TransportError as exc:
            log.warning("could not make the room of %s: %s", want.ref, exc.errcode)
            room_id, error = None, exc.errcode
        async with app.db.transaction() as session:
            greeting = await _record(app, session, want, room_id, error, now)
        if room_id is not None and greeting is not None:
            await _take_back(app, room_id, greeting)
        made += room_id is not None
    async with app.db.transaction() as session:
        due = [c.id for c in await cases.inviting(session)
               if force or c.invite_retry_at is None or c.invite_retry_at <= now]
    for case_id in due:
        await invite_pending(app, case_id, now)
    if wanted or due:
        app.queued()
    return made


@dataclass(frozen=True)
class _Round:
    """One round of invites: who got one, who did not and why."""

    invited: list[str]
    failed: dict[str, str]  # user -> errcode


async def invite_pending(app: Host, case_id: int, now: datetime) -> None:
    """Invite, one by one, everyone the case room is for who has no invite yet.

    People already in the room or invited (a room found again by its alias) count
    as invited without a new invite. The coordinator who opened the case hears
    the truth: who is invited, who is not yet and when the next try is.
    """
    async with app.db.transaction() as session:
        case = await cases.get(session, case_id)
        if case is None or case.room_id is None or not case.is_open or not case.pending:
            return
        room_id, pending = case.room_id, case.pending
    try:
        present = _members(await app.transport.room_state(room_id))
    except TransportError as exc:
        log.warning("could not read who is in %s: %s", room_id, exc.errcode)
        present = set()
    done = _Round([u for u in pending if u in present], {})
    for user in pending:
        if user in present:
            continue
        try:
            await app.transport.invite(room_id, user)
            done.invited.append(user)
        except TransportError as exc:
            log.warning("could not invite %s to %s: %s", user, room_id, exc.errcode)
            done.failed[user] = exc.errcode
    async with app.db.transaction() as session:
        case = await cases.get(session, case_id)
        if case is not None:
            await _record_round(app, session, case, done, now)
    await release_if_joined(app.db, app.transport, room_id)


def _members(state: list[dict[str, Any]]) -> set[str]:
    """Who is joined to or invited into a room, from its state."""
    return {str(e.get("state_key")) for e in state
            if e.get("type") == "m.room.member"
            and (e.get("content") or {}).get("membership") in ("join", "invite")}


async def _record_round(app: Host, session: AsyncSession, case: cases.Case,
                        done: _Round, now: datetime) -> None:
    first = not case.invited and case.invite_tries == 0
    case.invited = [*case.invited, *(u for u in done.invited if u not in case.invited)]
    if case.pending:
        case.invite_tries += 1
        case.invite_retry_at = now + invite_retry_after(case.invite_tries)
    else:
        case.invite_tries, case.invite_retry_at = 0, None
    later = _not_yet(app, done.failed, case.invite_retry_at)
    if first:
        where = ("It does not federate: it stays on this server." if not case.federated else
                 "Someone invited is on another server, so the room federates with theirs.")
        ready = (f"{case.ref}'s private room is ready; invited: {', '.join(case.invited)}."
                 if case.invited else f"{case.ref}'s private room is made, but nobody is "
                 "invited yet.")
        body = " ".join(part for part in (ready, later, where) if part)
        await outbox.enqueue(session, now=now, to_user=case.opened_by, kind="notice",
                             body=body, dedupe_key=f"mediation:{case.id}:room-ready")
    elif done.invited:
        body = " ".join(part for part in (
            f"{case.ref}: I've now invited {', '.join(done.invited)}.", later) if part)
        await outbox.enqueue(session, now=now, to_user=case.opened_by, kind="notice",
                             body=body,
                             dedupe_key=f"mediation:{case.id}:invited:{len(case.invited)}")


def _not_yet(app: Host, failed: dict[str, str], retry_at: datetime | None) -> str:
    """"Not invited yet: ..., next try at 14:05." (empty when everyone is invited)."""
    if not failed or retry_at is None:
        return ""
    who = ", ".join(f"{user} (their server {server_of(user)} refused or did not answer: "
                    f"{errcode})" for user, errcode in failed.items())
    at = retry_at.astimezone(app.settings.bot.tz)
    return f"Not invited yet: {who}. I'll try again at {at:%H:%M}, then less often."


async def _record(app: Host, session: AsyncSession, want: _Wanted,
                  room_id: str | None, error: str | None, now: datetime) -> int | None:
    """Record the outcome; returns the outbox id of a greeting queued meanwhile, if any."""
    case = await cases.get(session, want.case_id)
    if case is None or case.room_id is not None:
        return None
    case.room_tried_at = now
    prefix = app.settings.bot.prefix
    if room_id is None:
        case.room_error = error
        await outbox.enqueue(
            session, now=now, to_user=want.opened_by, kind="notice",
            body=(f"I couldn't create {want.ref}'s private room yet ({error}). I'll keep "
                  f"trying every {RETRY_AFTER.seconds // 60} minutes; {prefix}mediation shows "
                  "when it's ready."),
            dedupe_key=f"mediation:{want.case_id}:room-failed",
        )
        return None
    case.room_id = room_id
    case.room_error = None
    # Known and "greeted" now, so the join seen later over sync does not post the
    # message-flow notice: nothing is recorded here, and the intro below says so.
    known = await rooms.joined(session, room_id, now)
    known.greeted_at = known.greeted_at or now
    greeting = await _cancel_greeting(session, room_id, now)
    case.federated = federates(want.invite, app.transport.server_name)
    # Held until the first person joins, so it reaches their server live.
    await outbox.enqueue(session, now=now, room_id=room_id, kind="notice",
                         body=intro(want.ref, want.title, want.parties, want.mediator, prefix),
                         dedupe_key=f"mediation:{want.case_id}:intro",
                         wait_for_join=now + JOIN_WAIT)
    return greeting


async def _cancel_greeting(session: AsyncSession, room_id: str, now: datetime) -> int | None:
    """The join can reach the app over sync before the room is recorded, and then the
    app queues its message-flow greeting ("greeting:<room>", see bot/app.py). That
    notice is wrong here: stop it if unsent; the caller takes it back if it went."""
    row = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == f"greeting:{room_id}"))
    if row is None:
        return None
    if row.sent_at is None and row.failed_at is None:
        row.failed_at = now
        row.last_error = "not posted: a mediation case room records nothing"
    return row.id


async def _take_back(app: Host, room_id: str, outbox_id: int) -> None:
    """Redact the greeting if it was sent before it could be stopped (best effort)."""
    try:
        for event in await app.transport.recent_events(room_id, limit=30):
            content = event.get("content") or {}
            if (event.get("sender") == app.transport.user_id
                    and content.get(OUTBOX_MARKER) == outbox_id):
                await app.transport.redact(room_id, str(event["event_id"]),
                                           "a mediation case room records nothing")
    except TransportError as exc:
        log.warning("could not take back the greeting in %s: %s", room_id, exc.errcode)


class CaseRooms(Woken):
    """One per app: makes rooms for newly opened cases once their command has committed."""

    name = "mediation-rooms"

    def __init__(self, app: Host) -> None:
        super().__init__()
        self.app = app
        # Cases opened by commands that may not have committed yet.
        self._awaited: set[int] = set()

    def expect(self, case_id: int) -> None:
        self._awaited.add(case_id)

    def wanted(self) -> bool:
        """Called after every commit that queued messages; cheap when nothing is awaited."""
        return bool(self._awaited)

    async def work_once(self) -> bool:
        async with self.app.db.transaction() as session:
            newest = await cases.newest_id(session)
        # Awaited cases at or below the newest id have committed or rolled back.
        self._awaited = {i for i in self._awaited if i > newest}
        try:
            # New cases have never been tried; a retry waits for the schedule announced.
            await provision_rooms(self.app)
        except Exception:  # the worker must outlive any one failure
            log.exception("making case rooms failed")
        return True


_workers: weakref.WeakKeyDictionary[Host, CaseRooms] = weakref.WeakKeyDictionary()


def case_rooms(app: Host) -> CaseRooms:
    worker = _workers.get(app)
    if worker is None:
        worker = _workers[app] = CaseRooms(app)
    return worker
