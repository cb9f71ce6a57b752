"""Who and where: what kind of room an event came from, who holds which role there,
and who sent recent messages, cached so a busy room costs no repeated server reads.

The router asks it before each command (network reads first, outside the
transaction); state events and joins and leaves invalidate what they change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Sender
from bot.events import Incoming, RoomContext
from bot.power import PowerLevels
from bot.roomstate import RoomStates
from bot.transport.base import Transport, TransportError
from config.areas import AreaIndex
from config.settings import ConfigError, Settings
from storage import roles, rooms
from storage.engine import Database
from storage.models import KnownRoom

RECENT_SENDERS = 5000


def config_moderators(settings: Settings, areas: AreaIndex) -> dict[str, frozenset[str]]:
    """User id -> the area codes the config file makes them moderate; every bad area
    named at once, so a deployer fixes the file in one go."""
    problems: list[str] = []
    result: dict[str, frozenset[str]] = {}
    for area, users in settings.roles.moderators.items():
        found = areas.resolve(area)
        if len(found) != 1:
            problems.append(
                f"roles.moderators.{area}: "
                + ("no such area" if not found else "ambiguous; use its GSS code")
            )
            continue
        for user in users:
            result[user] = result.get(user, frozenset()) | {found[0].code}
    if problems:
        raise ConfigError(problems)
    return result


class Directory:
    def __init__(self, settings: Settings, db: Database, transport: Transport,
                 areas: AreaIndex) -> None:
        self.settings = settings
        self.db = db
        self.transport = transport
        self.config_moderators = config_moderators(settings, areas)
        # Predicates naming other bots; bridge bots are added by the bridges feature.
        self.ignore_checks: list[Callable[[str], bool]] = []
        # Who sent recent messages, so a command sent as a reply can name that person.
        self._recent_senders: OrderedDict[str, str] = OrderedDict()
        # Creation, power levels and encryption of each room, fed by the sync loop
        # (bot.roomstate) and saved with its token: no room's state is downloaded.
        self.room_states = RoomStates()
        self._room_contexts: dict[str, RoomContext] = {}

    async def load_rooms(self) -> None:
        """Every joined room's kind and kept state, read once at start-up (no server calls)."""
        async with self.db.transaction() as session:
            await self.room_states.load(session)
            for known in await rooms.active(session):
                self._room_contexts[known.room_id] = _context_of(known)

    async def power_levels(self, room_id: str) -> PowerLevels:
        """From the state kept from sync; a room never seen there is read from the server once."""
        levels = self.room_states.power_levels(room_id)
        if levels is None:
            await self._read_state(room_id)
            levels = self.room_states.power_levels(room_id) or PowerLevels.from_state(None, None)
        return levels

    async def room_creator(self, room_id: str) -> str | None:
        """Who made the room (None if the server cannot say)."""
        if self.room_states.creator(room_id) is None:
            try:
                await self._read_state(room_id)
            except TransportError:
                return None
        return self.room_states.creator(room_id)

    async def _read_state(self, room_id: str) -> None:
        self.room_states.remember(room_id, await self.transport.room_state(room_id))

    def known_room_context(self, room_id: str) -> RoomContext | None:
        """The cached kind of room, without asking anyone (None if not cached)."""
        return self._room_contexts.get(room_id)

    async def room_context(self, room_id: str) -> RoomContext:
        """What kind of room this is. Call it outside a transaction: it may ask the server."""
        cached = self._room_contexts.get(room_id)
        if cached is not None:
            return cached
        async with self.db.transaction() as session:
            known = await rooms.get(session, room_id)
        if known is not None:
            context = _context_of(known)
        else:
            # Only explicit signals: a two-person group room is still a group room.
            info = await self.transport.room_info(room_id)
            context = RoomContext(room_id=room_id, is_direct=info.is_direct)
        self._room_contexts[room_id] = context
        return context

    def forget_room_context(self, room_id: str) -> None:
        self._room_contexts.pop(room_id, None)

    async def sender(
        self, session: AsyncSession, user_id: str, room: RoomContext, *, relayed: bool = False
    ) -> Sender:
        """The roles a person holds here: config, grants, and their power in this room."""
        if relayed:
            return Sender(user_id, relayed=True)
        config = self.settings.roles
        grants = await roles.grants_for(session, user_id)
        moderated = set(self.config_moderators.get(user_id, frozenset()))
        moderated |= {g.area_code for g in grants if g.role == "moderator"}
        group_admin = False
        if not room.is_direct:
            group_admin = (await self.power_levels(room.room_id)).level(user_id) >= 50
        return Sender(
            user_id=user_id,
            is_admin=user_id in config.admins,
            is_coordinator=user_id in config.coordinators
            or any(g.role == "coordinator" for g in grants),
            moderated=frozenset(moderated),
            is_group_admin=group_admin,
        )

    def sender_of(self, event_id: str) -> str | None:
        return self._recent_senders.get(event_id)

    def remember_sender(self, message: Incoming) -> None:
        self._recent_senders[message.event_id] = message.sender
        while len(self._recent_senders) > RECENT_SENDERS:
            self._recent_senders.popitem(last=False)

    def is_ignored_sender(self, user_id: str) -> bool:
        """The bot itself and other bots; bridge bots are added by the bridges feature."""
        return user_id == self.transport.user_id or any(
            check(user_id) for check in self.ignore_checks
        )


def _context_of(known: KnownRoom) -> RoomContext:
    return RoomContext(room_id=known.room_id, is_direct=known.is_direct, network=known.network)


class WhoAndWhere:
    """The router's answers about rooms and senders, all from its :class:`Directory`
    (members of :class:`bot.host.Host`, kept here so the router only routes)."""

    directory: Directory

    async def load_rooms(self) -> None:
        """Every joined room's kind and kept state, read once at start-up (no server calls)."""
        await self.directory.load_rooms()

    async def power_levels(self, room_id: str) -> PowerLevels:
        return await self.directory.power_levels(room_id)

    async def room_context(self, room_id: str) -> RoomContext:
        """What kind of room this is. Call it outside a transaction: it may ask the server."""
        return await self.directory.room_context(room_id)

    def cached_room(self, room_id: str) -> RoomContext | None:
        """The room's kind if already known in memory (for decisions that must not wait)."""
        return self.directory.known_room_context(room_id)

    async def room_creator(self, room_id: str) -> str | None:
        return await self.directory.room_creator(room_id)

    def kept_creator(self, room_id: str) -> str | None:
        return self.directory.room_states.creator(room_id)

    def forget_room_context(self, room_id: str) -> None:
        self.directory.forget_room_context(room_id)

    def sender_of(self, event_id: str) -> str | None:
        return self.directory.sender_of(event_id)

    def is_ignored_sender(self, user_id: str) -> bool:
        """The bot itself and other bots; bridge bots are added by the bridges feature."""
        return self.directory.is_ignored_sender(user_id)
