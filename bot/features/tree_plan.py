"""The room tree as plain data: which spaces and rooms an area should have, and what to change.

A space for every area that has areas inside it (the top area, the county, each
district), a coordination room for every locality (a leaf: parish, unparished
area, ward) and a room per theme per district. Aliases are derived from the
whole area file, never from the part being set up, so they never depend on the
order in which areas were rolled out. Everything here is pure: the runner in
:mod:`bot.features.tree_build` does the network I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.power import PowerLevels
from bot.transport.base import RoomSpec
from config.areas import Area, AreaIndex
from config.themes import Theme

SPACE, LOCALITY, THEME = "space", "locality", "theme"
MODERATOR_LEVEL = 50
_RANK = {SPACE: "1", THEME: "2", LOCALITY: "3"}


@dataclass(frozen=True)
class PlannedRoom:
    key: str
    kind: str
    area_code: str
    theme: str | None
    name: str
    # Spaces only: a topic is one more event per room, and the space's says what its rooms are.
    topic: str | None
    alias: str  # the localpart: "fenland-wisbech"
    parent_key: str | None
    # Sort key among the parent space's children (m.space.child "order").
    order: str


@dataclass(frozen=True)
class StateEvent:
    type: str
    state_key: str
    content: dict[str, Any]


def space_key(code: str) -> str:
    return f"space:{code}"


def locality_key(code: str) -> str:
    return f"locality:{code}"


def theme_room_key(district_code: str, theme: str) -> str:
    return f"theme:{district_code}:{theme}"


def full_plan(areas: AreaIndex, themes: Sequence[Theme]) -> list[PlannedRoom]:
    """Every room of the whole area file, parents before children."""
    rooms: list[PlannedRoom] = []
    taken: set[str] = set()

    def alias(wanted: str, code: str) -> str:
        unique = wanted if wanted not in taken else f"{wanted}-{code.lower()}"
        taken.add(unique)
        return unique

    for area in areas.descendants(areas.root.code):
        parent = space_key(area.parent_code) if area.parent_code else None
        if areas.children(area.code):
            rooms.append(PlannedRoom(
                key=space_key(area.code), kind=SPACE, area_code=area.code, theme=None,
                name=area.name, topic=_space_topic(area),
                alias=alias(area.slug, area.code), parent_key=parent,
                order=_order(SPACE, area.slug),
            ))
            if area.is_district:
                rooms.extend(_theme_rooms(area, themes, alias))
        else:
            label = areas.label(area.code)
            rooms.append(PlannedRoom(
                key=locality_key(area.code), kind=LOCALITY, area_code=area.code, theme=None,
                name=label,
                topic=None,
                alias=alias(_locality_alias(areas, area), area.code), parent_key=parent,
                order=_order(LOCALITY, area.slug),
            ))
    return rooms


def _theme_rooms(district: Area, themes: Sequence[Theme], alias: Any) -> list[PlannedRoom]:
    return [
        PlannedRoom(
            key=theme_room_key(district.code, theme.key), kind=THEME, area_code=district.code,
            theme=theme.key, name=f"{district.name} {theme.name.lower()}",
            topic=None,
            alias=alias(f"{district.slug}-{theme.key}", district.code),
            parent_key=space_key(district.code), order=_order(THEME, theme.key),
        )
        for theme in themes
    ]


def _space_topic(area: Area) -> str:
    if area.is_district:
        return (f"Community groups in {area.name}: a coordination room for each parish or "
                "ward (its council and the groups' representatives) and a room per theme.")
    return f"Community groups in {area.name}, place by place."


def _locality_alias(areas: AreaIndex, area: Area) -> str:
    """``<district>-<locality>``, without saying the district twice."""
    district = areas.district_of(area.code)
    outer = district or (areas.get(area.parent_code) if area.parent_code else None)
    if outer is None:
        return area.slug
    slug = area.slug.removeprefix(outer.slug + "-").removesuffix("-" + outer.slug) or area.slug
    return f"{outer.slug}-{slug}"


def _order(kind: str, slug: str) -> str:
    return (_RANK[kind] + slug)[:50]


def plan_for(areas: AreaIndex, themes: Sequence[Theme], area_code: str) -> list[PlannedRoom]:
    """The part of the tree one area needs: its ancestors' spaces and everything inside it."""
    target = areas.get(area_code).code
    above = {space_key(a.code) for a in areas.ancestors(target)}
    return [
        room for room in full_plan(areas, themes)
        if room.key in above or areas.contains(target, room.area_code)
    ]


def moderators_by_area(
    config: Mapping[str, Iterable[str]], grants: Iterable[tuple[str, str]]
) -> dict[str, set[str]]:
    """area code -> moderators, from config (user -> codes) and grants (user, code)."""
    by_area: dict[str, set[str]] = {}
    for user, codes in config.items():
        for code in codes:
            by_area.setdefault(code, set()).add(user)
    for user, code in grants:
        by_area.setdefault(code, set()).add(user)
    return by_area


def moderators_of(areas: AreaIndex, area_code: str, by_area: Mapping[str, set[str]]) -> set[str]:
    """Who moderates a room of this area: moderators of the area or of any area containing it."""
    return {
        user
        for code, users in by_area.items()
        if code in areas and areas.contains(code, area_code)
        for user in users
    }


def join_rule(parent_room_id: str | None) -> dict[str, Any]:
    """The top space is open; everything else admits members of its parent space."""
    if parent_room_id is None:
        return {"join_rule": "public"}
    return {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": parent_room_id}],
    }


def parent_link(server: str) -> dict[str, Any]:
    return {"via": [server], "canonical": True}


def child_link(server: str, order: str) -> dict[str, Any]:
    return {"via": [server], "order": order}


def room_spec(
    room: PlannedRoom, parent_room_id: str | None, server: str, moderators: Iterable[str]
) -> RoomSpec:
    """Everything a new room needs in one createRoom: links, join rule and moderators."""
    initial: list[dict[str, Any]] = []
    if parent_room_id is not None:
        initial.append({"type": "m.space.parent", "state_key": parent_room_id,
                        "content": parent_link(server)})
    else:
        # Said outright rather than left to the server's preset.
        initial.append({"type": "m.room.join_rules", "state_key": "",
                        "content": join_rule(None)})
    return RoomSpec(
        # The public_chat preset, but joining is restricted (initial state): it brings no
        # guest access and lets only moderators invite.
        public=True,
        name=room.name,
        alias_localpart=room.alias,
        topic=room.topic,
        space=room.kind == SPACE,
        restricted_to=(parent_room_id,) if parent_room_id else (),
        power_users={user: MODERATOR_LEVEL for user in sorted(moderators)},
        # Spaces are for finding rooms, not for talking in.
        power_overrides={"events_default": 100} if room.kind == SPACE else {},
        initial_state=initial,
    )


def state_changes(
    state: Sequence[Mapping[str, Any]],
    *,
    parent_room_id: str | None,
    children: Mapping[str, str],
    server: str,
    moderators: Iterable[str],
    previous_moderators: Iterable[str] = (),
) -> list[StateEvent]:
    """The state events that bring an existing room in line with the plan; [] when it is.

    ``state`` is the room's current state (type, state_key, sender, content);
    ``children`` maps child room id -> order (spaces only). Never removes what
    people added: extra children, extra allow rules, other users' power.
    """
    current = {(e.get("type"), e.get("state_key", "")): e for e in state}

    def content(kind: str, key: str = "") -> Mapping[str, Any]:
        event = current.get((kind, key))
        return (event or {}).get("content") or {}

    changes: list[StateEvent] = []
    wanted_rule = join_rule(parent_room_id)
    rule = content("m.room.join_rules")
    if rule.get("join_rule") != wanted_rule["join_rule"] or not all(
        entry in (rule.get("allow") or []) for entry in wanted_rule.get("allow", [])
    ):
        changes.append(StateEvent("m.room.join_rules", "", wanted_rule))
    if parent_room_id is not None and not content("m.space.parent", parent_room_id).get("via"):
        changes.append(StateEvent("m.space.parent", parent_room_id, parent_link(server)))
    for child, order in children.items():
        if not content("m.space.child", child).get("via"):
            changes.append(StateEvent("m.space.child", child, child_link(server, order)))
    power = power_change(
        current.get(("m.room.create", "")), content("m.room.power_levels"),
        moderators, previous_moderators,
    )
    if power is not None:
        changes.append(StateEvent("m.room.power_levels", "", power))
    return changes


def power_change(
    create_event: Mapping[str, Any] | None,
    power_content: Mapping[str, Any],
    moderators: Iterable[str],
    previous_moderators: Iterable[str] = (),
) -> dict[str, Any] | None:
    """The whole new power-levels content, or None when nothing changes.

    Moderators get 50 (someone already higher keeps their level); people the
    bot made moderators before and who no longer are lose exactly that 50.
    """
    levels = PowerLevels.from_state(create_event, power_content)
    wanted = set(moderators)
    updates: dict[str, int | None] = {}
    for user in wanted:
        if levels.level(user) < MODERATOR_LEVEL:
            updates[user] = MODERATOR_LEVEL
    users = power_content.get("users") or {}
    for user in set(previous_moderators) - wanted:
        if users.get(user) == MODERATOR_LEVEL:
            updates[user] = None
    if not updates:
        return None
    return levels.with_users(updates)
