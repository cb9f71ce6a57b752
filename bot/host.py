"""What a feature may ask of the running bot: the one interface features and commands type against.

Features (``bot.features``), command handlers (``bot.commands``), ``bot.voice`` and
``bot.web`` never import ``bot.app``: they see the bot only through :class:`Host`, so
a feature can be read, and tested, without the whole router. ``bot.app.Grapevine``
implements it; any object with these members would do (mypy checks it structurally).

This module sits at the bottom of ``bot``: it imports config, storage and the small
leaf modules of ``bot`` (clock, events, offload, pager, power, roomstate, scheduler, transport),
never
the command framework or a feature, so it can be in no import circle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.dm_reach import DmReach
from bot.events import Incoming, Reaction, Receipt, RoomContext, StateChange
from bot.offload import Offload
from bot.pager import Pager
from bot.power import PowerLevels
from bot.roomstate import RoomStates
from bot.scheduler import Job
from bot.transport.base import Transport
from config.areas import AreaIndex
from config.settings import Settings
from config.themes import Theme
from storage.engine import Database


@dataclass(frozen=True)
class RoleChange:
    """A role granted or revoked by an admin, told to listeners inside that command's
    transaction (e.g. the room tree updates a new moderator's power in their area)."""

    user_id: str
    role: str
    area_code: str
    granted: bool
    by: str
    at: datetime


# Listeners for ordinary chat traffic get no database session: they must be cheap
# (intake buffers in memory and writes in batches), so a busy room costs no transactions.
MessageHook = Callable[[Incoming, RoomContext], Awaitable[None]]
ReactionHook = Callable[[Reaction], Awaitable[None]]
ReceiptHook = Callable[[Receipt], Awaitable[None]]
StateHook = Callable[[AsyncSession, StateChange], Awaitable[None]]
# Decides, in memory, whether a state event is one its hook acts on: most state events
# (the membership churn of busy and bridged rooms) then cost no transaction at all.
StateFilter = Callable[[StateChange], bool]
RoleListener = Callable[[AsyncSession, RoleChange], Awaitable[None]]


@dataclass
class Hooks:
    """Listeners for events that are not commands (reach intake, bridge detection ...)."""

    message: list[MessageHook] = field(default_factory=list)
    reaction: list[ReactionHook] = field(default_factory=list)
    receipt: list[ReceiptHook] = field(default_factory=list)
    state: list[tuple[StateFilter, StateHook]] = field(default_factory=list)

    def add_state(self, wants: StateFilter, hook: StateHook) -> None:
        """``hook`` runs (in a transaction) only for the state events ``wants`` accepts."""
        self.state.append((wants, hook))


class Host(Protocol):
    """The bot as its features see it. Read-only members: a feature uses them, the
    bot owns them (lists such as ``hooks`` and ``closers`` are appended to at install)."""

    # -- what every feature uses ----------------------------------------------------------

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def transport(self) -> Transport: ...

    @property
    def areas(self) -> AreaIndex: ...

    @property
    def themes(self) -> tuple[Theme, ...]: ...

    @property
    def config_moderators(self) -> dict[str, frozenset[str]]:
        """User id -> area codes they moderate by the config file (grants are in storage)."""

    def queued(self) -> None:
        """Wake the workers (outbox, rooms to make): call after a transaction that queued
        work commits. Called inside a command's transaction, they wake once it commits."""

    def add_job(self, job: Job) -> None:
        """A periodic job (sweeps, digests, polling); ignored where there is no scheduler."""

    @property
    def offload(self) -> Offload:
        """Where CPU-heavy pure work runs (bot.offload): other processes under the service."""

    # -- wiring, done once by a feature's ``install`` -------------------------------------

    @property
    def hooks(self) -> Hooks: ...

    @property
    def closers(self) -> list[Callable[[], Awaitable[None]]]:
        """Run on a clean stop, before the database closes (flush buffers)."""

    @property
    def role_listeners(self) -> list[RoleListener]: ...

    @property
    def ignore_checks(self) -> list[Callable[[str], bool]]:
        """Predicates naming senders never to answer (bridge bots, other bots)."""

    @property
    def web_routes(self) -> list[web.RouteDef]:
        """aiohttp routes features serve (notice links); the service mounts them."""

    def on_queued(self, callback: Callable[[], None], *, outbox: bool = False) -> None:
        """Call ``callback`` whenever :meth:`queued` is (``outbox``: it is the outbox
        worker's wake, skipped after a command whose messages all went straight to it)."""

    # -- the conversation: rooms, people, pages, open questions ---------------------------

    @property
    def pager(self) -> Pager: ...

    @property
    def dm_reach(self) -> DmReach:
        """Whether a DM reaches each person through their bridge (bot.dm_reach)."""

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` once the command's transaction has committed (never on rollback)."""

    @property
    def started_at(self) -> datetime: ...

    @property
    def sync_status(self) -> Callable[[], datetime | None]:
        """When the last sync from the homeserver arrived (None before the first)."""

    @property
    def sync_took(self) -> Callable[[], float | None]:
        """Seconds the last sync's batch took to hand over and store (None before the first)."""

    async def room_context(self, room_id: str) -> RoomContext:
        """What kind of room this is. Call it outside a transaction: it may ask the server."""

    def cached_room(self, room_id: str) -> RoomContext | None:
        """The room's kind if already known in memory (for decisions that must not wait)."""

    async def room_creator(self, room_id: str) -> str | None:
        """Who made the room, from the state kept from sync."""

    @property
    def room_states(self) -> RoomStates:
        """Each room's state as kept from sync (read it without asking the server)."""

    def kept_creator(self, room_id: str) -> str | None:
        """Who made the room if the kept state says (None: not known without asking)."""

    def forget_room_context(self, room_id: str) -> None: ...

    async def power_levels(self, room_id: str) -> PowerLevels: ...

    def sender_of(self, event_id: str) -> str | None:
        """Who sent a recent message (so a command sent as a reply can name them)."""

    def is_ignored_sender(self, user_id: str) -> bool: ...

    async def cancel_prompt(self, session: AsyncSession, room_id: str, user_id: str) -> bool:
        """Drop the question the bot has open for this person here; True if there was one."""
