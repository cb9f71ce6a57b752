"""Who gets a published notice, when reminders and digests are due: plain functions.

No Matrix, no database: the caller gathers subscriptions, groups and tree
rooms as plain values and passes an area-containment function
(``AreaIndex.contains``), so every rule here is tested on its own.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.areas import AreaIndex

Contains = Callable[[str, str], bool]

REMINDER_DAYS = (7, 1)
REMINDER_TIME = time(9, 0)  # local: a sensible hour to be told about a deadline
DIGEST_TIME = time(8, 0)
WEEKLY_DIGEST_DAY = 0  # Monday


@dataclass(frozen=True)
class NoticeFacts:
    """What targeting needs of a notice. ``areas`` empty means the whole county."""

    areas: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    award_min: int | None = None
    award_max: int | None = None
    applicant_types: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubscriptionFacts:
    room_id: str
    areas: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    min_award: int | None = None
    max_award: int | None = None
    sizes: tuple[str, ...] = ()
    digest: str = "instant"
    reminders: bool = True


@dataclass(frozen=True)
class GroupFacts:
    id: int
    room_id: str | None
    area_code: str
    themes: tuple[str, ...]
    type: str
    size: str
    contact: bool = True
    email: str | None = None
    # The area the group works across (its reach): its own area for a local group, its
    # district or county for wider ones. None: its own area.
    reach_area: str | None = None


@dataclass(frozen=True)
class TreeRoom:
    """A locality room (``area`` set) or a function room (``theme`` set, maybe with an area)."""

    room_id: str
    area: str | None = None
    theme: str | None = None


@dataclass(frozen=True)
class Target:
    room_id: str
    via: str  # subscription, group, locality, function
    cadence: str = "instant"  # instant, daily, weekly
    reminders: bool = True


@dataclass
class Plan:
    rooms: list[Target] = field(default_factory=list)
    # Groups not on chat that have an email: their email digest gets the notice.
    emails: list[GroupFacts] = field(default_factory=list)

    def room_ids(self) -> set[str]:
        return {t.room_id for t in self.rooms}


def _areas_overlap(ours: Sequence[str], theirs: Sequence[str], contains: Contains) -> bool:
    """Empty means everywhere; otherwise one area lies inside (or is) the other."""
    if not ours or not theirs:
        return True
    return any(contains(a, b) or contains(b, a) for a in ours for b in theirs)


def _lists_meet(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """Empty means anything; otherwise at least one in common."""
    return not ours or not theirs or bool(set(ours) & set(theirs))


def _inside(area: str, areas: Sequence[str], contains: Contains) -> bool:
    return not areas or any(contains(outer, area) for outer in areas)


def subscription_matches(notice: NoticeFacts, sub: SubscriptionFacts, contains: Contains) -> bool:
    if not _areas_overlap(notice.areas, sub.areas, contains):
        return False
    if not _lists_meet(notice.themes, sub.themes) or not _lists_meet(notice.sizes, sub.sizes):
        return False
    # The award range must reach into the amounts the room asked for.
    if (sub.min_award is not None and notice.award_max is not None
            and notice.award_max < sub.min_award):
        return False
    return not (
        sub.max_award is not None
        and notice.award_min is not None
        and notice.award_min > sub.max_award
    )


def group_fits(notice: NoticeFacts, group: GroupFacts, contains: Contains) -> bool:
    """A group may hear of it: contactable, where it works, a theme, type and size it allows."""
    if not group.contact or not works_in(group, notice.areas, contains):
        return False
    if notice.themes and not set(notice.themes) & set(group.themes):
        return False
    if notice.applicant_types and group.type not in notice.applicant_types:
        return False
    return not notice.sizes or group.size in notice.sizes


def works_in(group: GroupFacts, areas: Sequence[str], contains: Contains) -> bool:
    """The notice is for where the group works: its own area lies inside the notice's
    areas, or (for a district- or county-wide group) a notice's area lies inside its reach."""
    if _inside(group.area_code, areas, contains):
        return True
    wide = group.reach_area
    return wide is not None and any(contains(wide, area) for area in areas)


def reach_area(areas: AreaIndex, code: str, reach: str) -> str:
    """The area a group with this reach works across: itself, its district, or its county
    (the county it lies in; the whole area file where there is no county level)."""
    if reach == "district":
        district = areas.district_of(code)
        return district.code if district is not None else code
    if reach == "county":
        counties = [a for a in areas.ancestors(code) if a.kind == "county"]
        return counties[0].code if counties else areas.root.code
    return code


def tree_room_fits(notice: NoticeFacts, room: TreeRoom, contains: Contains) -> bool:
    if room.theme is not None:
        return room.theme in notice.themes and _areas_overlap(
            notice.areas, (room.area,) if room.area else (), contains
        )
    return room.area is not None and _inside(room.area, notice.areas, contains)


def plan(
    notice: NoticeFacts,
    subscriptions: Iterable[SubscriptionFacts],
    groups: Iterable[GroupFacts],
    tree_rooms: Iterable[TreeRoom],
    contains: Contains,
) -> Plan:
    """Every room that qualifies in any way, once; a room with a subscription hears its way.

    Each way in is additive (a matching subscription, a fitting group profile, a
    locality or function room), but a room that subscribed chose how it hears:
    its digest cadence and reminder choice apply whatever brought the notice.
    """
    result = Plan()
    seen: set[str] = set()
    subs = list(subscriptions)
    chosen = {s.room_id: s for s in subs}

    def add(room_id: str, via: str) -> None:
        if room_id in seen:
            return
        seen.add(room_id)
        sub = chosen.get(room_id)
        result.rooms.append(
            Target(room_id, via, sub.digest, sub.reminders) if sub else Target(room_id, via)
        )

    for sub in subs:
        if subscription_matches(notice, sub, contains):
            add(sub.room_id, "subscription")
    for group in groups:
        if not group_fits(notice, group, contains):
            continue
        if group.room_id is not None:
            add(group.room_id, "group")
        elif group.email:
            result.emails.append(group)
    for room in tree_rooms:
        if tree_room_fits(notice, room, contains):
            add(room.room_id, "function" if room.theme else "locality")
    return result


# -- time --------------------------------------------------------------------------------


def at_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time on a day in ``tz``, DST-correct (fold 0 for the repeated hour)."""
    return datetime.combine(day, at, tzinfo=tz)


def reminder_times(deadline: datetime, tz: ZoneInfo) -> dict[int, datetime]:
    """When each reminder is due: 09:00 local, 7 and 1 days before the deadline's local date."""
    day = deadline.astimezone(tz).date()
    return {days: at_local(day - timedelta(days=days), REMINDER_TIME, tz) for days in REMINDER_DAYS}


def reminders_due(
    deadline: datetime, now: datetime, tz: ZoneInfo, already: Iterable[int] = (),
    since: datetime | None = None,
) -> list[int]:
    """Reminders to send now: after downtime only the latest one due, never a burst.

    A reminder whose time came before the room got the notice (``since``) is skipped:
    a notice posted three days before its deadline needs no "7 days left".
    """
    if now >= deadline:
        return []
    due = [
        days for days, at in reminder_times(deadline, tz).items()
        if at <= now and (since is None or at >= since)
    ]
    if not due:
        return []
    latest = min(due)  # fewest days left
    return [] if latest in set(already) else [latest]


def digest_slot(cadence: str, queued_at: datetime, tz: ZoneInfo) -> datetime:
    """The digest an entry belongs to: the next 08:00 local (a Monday for weekly) after queueing."""
    local = queued_at.astimezone(tz)
    day = local.date()
    if local.time() >= DIGEST_TIME:
        day += timedelta(days=1)
    if cadence == "weekly":
        day += timedelta(days=(WEEKLY_DIGEST_DAY - day.weekday()) % 7)
    return at_local(day, DIGEST_TIME, tz)


def room_key(secret: bytes, room_id: str) -> str:
    """An opaque short key for a room in notice links: counts opens per room, names nobody."""
    digest = hmac.new(secret, room_id.encode(), hashlib.sha256).digest()
    return digest[:8].hex()
