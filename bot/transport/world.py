"""An in-process chat world: rooms, people and a bot, with no homeserver.

Used by ``grapevine shell`` (type commands as anyone, anywhere) and by fast
tests. It keeps Matrix's shapes (state events, power levels, v12 creators,
transaction-id dedupe) so that code tested here behaves the same on Synapse.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock, SystemClock
from bot.events import EventSink, Incoming, Reaction, StateChange
from bot.transport.base import RoomInfo, RoomSpec, TransportError

# Takes a room's state events as the sync loop hands them over (RoomStates.apply).
StateKeeper = Callable[[str, Iterable[Mapping[str, Any]]], object]


@dataclass
class WorldRoom:
    room_id: str
    creator: str
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    direct: bool = False

    def members(self, membership: str = "join") -> list[str]:
        return [
            key for (kind, key), event in self.state.items()
            if kind == "m.room.member" and event["content"].get("membership") == membership
        ]


class World:
    def __init__(self, server_name: str = "grapevine.local", *,
                 clock: Clock | None = None) -> None:
        self.server_name = server_name
        # The world's server stamps events with this clock; give it the bot's, so that
        # the times people post at and the bot's idea of now agree (as NTP makes them).
        self.clock: Clock = clock or SystemClock()
        self.rooms: dict[str, WorldRoom] = {}
        self.aliases: dict[str, str] = {}
        self.display_names: dict[str, str] = {}
        self.sinks: dict[str, EventSink] = {}
        # Per bot: where the state events of its rooms go, as its sync loop feeds them
        # to the room state it keeps (bot.roomstate).
        self.keepers: dict[str, StateKeeper] = {}
        self.uploads: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._txns: dict[tuple[str, str], str] = {}

    def now(self) -> datetime:
        return self.clock.now()

    def user(self, localpart: str, display_name: str | None = None) -> str:
        user_id = f"@{localpart}:{self.server_name}"
        self.display_names[user_id] = display_name or localpart
        return user_id

    def _event(self, room: WorldRoom, sender: str, kind: str, content: Mapping[str, Any],
               state_key: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": f"$ev{next(self._ids)}",
            "room_id": room.room_id,
            "sender": sender,
            "type": kind,
            "content": dict(content),
            "origin_server_ts": int(self.now().timestamp() * 1000),
        }
        if state_key is not None:
            event["state_key"] = state_key
            room.state[(kind, state_key)] = event
            for bot, keep in self.keepers.items():
                if bot in room.members():
                    keep(room.room_id, [event])
        room.timeline.append(event)
        return event

    def create_room(
        self,
        creator: str,
        *,
        name: str = "",
        members: Sequence[str] = (),
        power: Mapping[str, int] | None = None,
        direct: bool = False,
        version: str = "12",
    ) -> str:
        room = WorldRoom(f"!room{next(self._ids)}", creator, direct=direct)
        self.rooms[room.room_id] = room
        self._event(room, creator, "m.room.create", {"room_version": version}, "")
        self._event(room, creator, "m.room.member", self._membership("join", creator), creator)
        users: dict[str, int] = dict(power or {})
        levels: dict[str, Any] = {"users": users, "users_default": 0, "kick": 50, "ban": 50,
                  "redact": 50, "invite": 0, "state_default": 50, "events_default": 0}
        if version.isdigit() and int(version) < 12:
            users.setdefault(creator, 100)
        self._event(room, creator, "m.room.power_levels", levels, "")
        if name:
            self._event(room, creator, "m.room.name", {"name": name}, "")
        for member in members:
            self._event(room, member, "m.room.member", self._membership("join", member), member)
        return room.room_id

    def _membership(self, membership: str, user_id: str) -> dict[str, Any]:
        return {"membership": membership, "displayname": self.display_names.get(user_id)}

    def room(self, room_id: str) -> WorldRoom:
        try:
            return self.rooms[room_id]
        except KeyError:
            raise TransportError("M_NOT_FOUND", f"no room {room_id}", status=404) from None

    async def join(self, user_id: str, room_id: str) -> None:
        room = self.room(room_id)
        event = self._event(room, user_id, "m.room.member", self._membership("join", user_id),
                            user_id)
        sink = self.sinks.get(user_id)
        if sink is not None:
            await sink.on_joined(room_id, is_direct=room.direct)
        # The bots already there see the join come down their sync, as a state change.
        for bot, other in list(self.sinks.items()):
            if bot != user_id and bot in room.members():
                await other.on_state(StateChange(
                    event_id=event["event_id"], room_id=room_id, sender=user_id,
                    event_type="m.room.member", state_key=user_id,
                    content=event["content"], timestamp=self.now()))

    async def say(self, user_id: str, room_id: str, body: str, *, reply_to: str | None = None,
                  msgtype: str = "m.text") -> str:
        """``user_id`` posts ``body``; every bot in the room hears it, as it would over sync."""
        room = self.room(room_id)
        if user_id not in room.members():
            raise TransportError("M_FORBIDDEN", f"{user_id} is not in {room_id}", status=403)
        content: dict[str, Any] = {"msgtype": msgtype, "body": body}
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        event = self._event(room, user_id, "m.room.message", content)
        await self._deliver(room, event)
        return str(event["event_id"])

    async def react(self, user_id: str, room_id: str, event_id: str, key: str) -> str:
        room = self.room(room_id)
        event = self._event(room, user_id, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}})
        for bot, sink in self.sinks.items():
            if bot in room.members():
                await sink.on_reaction(Reaction(event["event_id"], room_id, user_id, event_id,
                                                key, self.now()))
        return str(event["event_id"])

    async def _deliver(self, room: WorldRoom, event: dict[str, Any]) -> None:
        content = event["content"]
        reply = (content.get("m.relates_to") or {}).get("m.in_reply_to") or {}
        for bot, sink in list(self.sinks.items()):
            if bot in room.members() and bot != event["sender"]:
                await sink.on_message(Incoming(
                    event_id=event["event_id"], room_id=room.room_id, sender=event["sender"],
                    body=content.get("body", ""), timestamp=self.now(),
                    msgtype=content.get("msgtype", "m.text"), reply_to=reply.get("event_id"),
                    content=content,
                ))

    def messages(self, room_id: str, sender: str | None = None) -> list[str]:
        """Bodies of the room's messages, oldest first (redacted ones are gone)."""
        return [
            e["content"].get("body", "") for e in self.room(room_id).timeline
            if e["type"] == "m.room.message" and (sender is None or e["sender"] == sender)
            and not e.get("redacted")
        ]


class WorldTransport:
    """The bot's hands in a World; implements bot.transport.base.Transport."""

    def __init__(self, world: World, user_id: str, sink: EventSink | None = None) -> None:
        self.world = world
        self._user_id = user_id
        world.display_names.setdefault(user_id, user_id[1:].split(":")[0])
        if sink is not None:
            world.sinks[user_id] = sink

    def attach(self, sink: EventSink) -> None:
        self.world.sinks[self._user_id] = sink

    def keep_state(self, keep: StateKeeper) -> None:
        """Hand every state event of the bot's rooms to ``keep``, as sync would."""
        self.world.keepers[self._user_id] = keep

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def server_name(self) -> str:
        return self.world.server_name

    def _joined(self, room_id: str) -> WorldRoom:
        room = self.world.room(room_id)
        if self._user_id not in room.members():
            raise TransportError("M_FORBIDDEN", "the bot is not in that room", status=403)
        return room

    async def send(self, room_id: str, content: Mapping[str, Any], *, txn_id: str | None = None,
                   event_type: str = "m.room.message") -> str:
        if txn_id is not None and (self._user_id, txn_id) in self.world._txns:
            return self.world._txns[(self._user_id, txn_id)]
        room = self._joined(room_id)
        event = self.world._event(room, self._user_id, event_type, content)
        if txn_id is not None:
            self.world._txns[(self._user_id, txn_id)] = event["event_id"]
        await self.world._deliver(room, event)
        return str(event["event_id"])

    async def upload(self, data: bytes, mime: str, filename: str, *, room_id: str | None = None
                     ) -> dict[str, Any]:
        uri = f"mxc://{self.world.server_name}/{next(self.world._ids)}"
        self.world.uploads[uri] = data
        return {"url": uri}

    async def create_room(self, spec: RoomSpec) -> str:
        if spec.alias_localpart:
            alias = f"#{spec.alias_localpart}:{self.world.server_name}"
            if alias in self.world.aliases:
                raise TransportError("M_ROOM_IN_USE", f"{alias} is taken", status=400)
        room_id = self.world.create_room(self._user_id, name=spec.name,
                                         power=dict(spec.power_users), direct=spec.direct)
        room = self.world.room(room_id)
        if spec.alias_localpart:
            alias = f"#{spec.alias_localpart}:{self.world.server_name}"
            self.world.aliases[alias] = room_id
            self.world._event(room, self._user_id, "m.room.canonical_alias", {"alias": alias}, "")
        if spec.topic:
            self.world._event(room, self._user_id, "m.room.topic", {"topic": spec.topic}, "")
        if spec.restricted_to:
            self.world._event(room, self._user_id, "m.room.join_rules", {
                "join_rule": "restricted",
                "allow": [{"type": "m.room_membership", "room_id": r} for r in spec.restricted_to],
            }, "")
        for event in spec.initial_state:
            self.world._event(room, self._user_id, event["type"], event.get("content", {}),
                              event.get("state_key", ""))
        for user in spec.invite:
            self.world._event(room, self._user_id, "m.room.member",
                              self.world._membership("invite", user), user)
        return room_id

    async def put_state(self, room_id: str, event_type: str, content: Mapping[str, Any],
                        state_key: str = "") -> str:
        room = self._joined(room_id)
        levels = room.state.get(("m.room.power_levels", ""), {}).get("content", {})
        if self._user_id != room.creator and levels.get("users", {}).get(self._user_id, 0) < 50:
            raise TransportError("M_FORBIDDEN", "not enough power to set state", status=403)
        event = self.world._event(room, self._user_id, event_type, content, state_key)
        return str(event["event_id"])

    async def get_state(self, room_id: str, event_type: str, state_key: str = ""
                        ) -> dict[str, Any] | None:
        event = self.world.room(room_id).state.get((event_type, state_key))
        return dict(event["content"]) if event else None

    async def room_state(self, room_id: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self.world.room(room_id).state.values()]

    async def room_info(self, room_id: str) -> RoomInfo:
        room = self.world.room(room_id)
        name = (room.state.get(("m.room.name", "")) or {}).get("content", {}).get("name")
        return RoomInfo(room_id, name, len(room.members()),
                        ("m.room.encryption", "") in room.state, room.direct)

    async def members(self, room_id: str) -> dict[str, str | None]:
        return {u: self.world.display_names.get(u) for u in self.world.room(room_id).members()}

    async def invite(self, room_id: str, user_id: str) -> None:
        room = self._joined(room_id)
        self.world._event(room, self._user_id, "m.room.member",
                          self.world._membership("invite", user_id), user_id)

    async def kick(self, room_id: str, user_id: str, reason: str = "") -> None:
        room = self._joined(room_id)
        self.world._event(room, self._user_id, "m.room.member", {"membership": "leave"}, user_id)

    async def redact(self, room_id: str, event_id: str, reason: str = "") -> None:
        room = self._joined(room_id)
        for event in room.timeline:
            if event["event_id"] == event_id:
                event["redacted"] = True
                event["content"] = {}

    async def join(self, room: str, via: Sequence[str] = ()) -> str:
        room_id = self.world.aliases.get(room, room)
        await self.world.join(self._user_id, room_id)
        return room_id

    async def leave(self, room_id: str) -> None:
        room = self._joined(room_id)
        self.world._event(room, self._user_id, "m.room.member", {"membership": "leave"},
                          self._user_id)

    async def resolve_alias(self, alias: str) -> str | None:
        return self.world.aliases.get(alias)

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return [dict(e) for e in reversed(self.world.room(room_id).timeline[-limit:])]

    async def direct_room(self, user_id: str) -> str:
        for room in self.world.rooms.values():
            if room.direct and set(room.members()) | set(room.members("invite")) == {
                self._user_id, user_id
            }:
                return room.room_id
        room_id = self.world.create_room(self._user_id, direct=True, members=[user_id])
        return room_id
