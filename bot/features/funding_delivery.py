"""Funding notices on their way out: rendered, targeted, queued once per room, approvers told.

A broadcast is one transaction that plans every room (``funding_targeting``,
pure), queues each room's copy in the outbox under ``notice:F<n>:<room>``
(obeying bot.voice's daily cap and night hours) and records it as a seed of
the notice for the reach model; the outbox worker does the sending, so a
crash mid-broadcast resumes there and no room hears twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import voice
from bot.commands.when import describe_date
from bot.features import funding_targeting as targeting
from config.areas import AreaIndex
from storage import funding, groups, outbox, roles
from storage.funding import FundingNotice
from storage.groups import Group
from storage.models import KnownRoom, OutboxMessage
from storage.outbox import person_key

if TYPE_CHECKING:
    from bot.host import Host


def money(low: int | None, high: int | None) -> str:
    if not low:
        return f"up to £{high:,}" if high is not None else ""
    if high is None or low == high:
        return f"£{low:,}"
    return f"£{low:,}-£{high:,}"


def rooms_text(count: int) -> str:
    return f"{count} room" if count == 1 else f"{count} rooms"


def link_secret(app: Host) -> bytes:
    secret = app.settings.privacy.pseudonym_secret
    if secret is not None:
        return b"notice-links:" + secret.get_secret_value().encode()
    return f"notice-links:{app.settings.matrix.user_id}".encode()


def link_for(app: Host, notice: FundingNotice, room_id: str) -> str:
    """The counted short link when the bot serves web, else the funder's own page."""
    base = app.settings.web.base_url
    if not base:
        return notice.url
    return f"{base.rstrip('/')}/n/{notice.ref}/{targeting.room_key(link_secret(app), room_id)}"


def where_label(app: Host, areas: Sequence[str]) -> str:
    if not areas or app.areas.root.code in areas:
        return f"all of {app.areas.root.name}"
    return ", ".join(app.areas.label(a) for a in areas[:4]) + (" ..." if len(areas) > 4 else "")


def closes_label(app: Host, notice: FundingNotice) -> str:
    if notice.closes_at is None:
        return "no deadline given"
    local = notice.closes_at.astimezone(app.settings.bot.tz)
    day = describe_date(local.date())
    return f"closes {day}" if local.hour == 23 else f"closes {day} {local:%H:%M}"


def render(app: Host, notice: FundingNotice, link: str) -> str:
    """A few plain lines that read well on WhatsApp, Signal or IRC: id, what, when, link."""
    amount = money(notice.award_min, notice.award_max)
    facts = " · ".join(x for x in (amount, closes_label(app, notice)) if x)
    scope = where_label(app, notice.areas)
    if notice.themes:
        scope += " · " + ", ".join(notice.themes)
    return (
        f"Funding {notice.ref}: {notice.title} ({notice.funder})\n"
        f"{facts}\nFor: {scope}\n{link}"
    )


def facts_of(notice: FundingNotice, root: str) -> targeting.NoticeFacts:
    areas = tuple(a for a in notice.areas if a != root)
    return targeting.NoticeFacts(
        areas=areas, themes=tuple(notice.themes), award_min=notice.award_min,
        award_max=notice.award_max, applicant_types=tuple(notice.applicant_types),
        sizes=tuple(notice.sizes),
    )


async def schedule_rooms(app: Host, session: AsyncSession, room_ids: list[str],
                         now: datetime) -> dict[str, datetime | None]:
    """``voice.schedule_own_post`` for many rooms in three queries: when each room's own post
    may go out (after the night, under the day's cap), or None when it must be folded."""
    tz = app.settings.bot.tz
    when = voice.allowed_from(now, tz)
    start, end = voice.day_bounds(when.astimezone(tz).date(), tz)
    direct: set[str] = set()
    caps: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i in range(0, len(room_ids), 500):
        chunk = room_ids[i:i + 500]
        direct |= set(await session.scalars(select(KnownRoom.room_id).where(
            KnownRoom.room_id.in_(chunk), KnownRoom.is_direct.is_(True))))
        caps.update((r, c) for r, c in (await session.execute(
            select(Group.room_id, Group.max_posts).where(
                Group.room_id.in_(chunk), Group.unregistered_at.is_(None)))).tuples()
            if r is not None and c is not None)
        counts.update((r, n) for r, n in (await session.execute(
            select(OutboxMessage.room_id, func.count()).where(
                OutboxMessage.room_id.in_(chunk), OutboxMessage.own_post.is_(True),
                OutboxMessage.failed_at.is_(None), OutboxMessage.not_before >= start,
                OutboxMessage.not_before < end,
            ).group_by(OutboxMessage.room_id))).tuples() if r is not None)
    return {
        room: now if room in direct
        else when if counts.get(room, 0) < caps.get(room, voice.DEFAULT_MAX_POSTS) else None
        for room in room_ids
    }


def own_post(app: Host, now: datetime, when: datetime | None, room_id: str, body: str,
             key: str) -> dict[str, Any]:
    """The outbox row ``voice.enqueue_own_post`` would write: sent at ``when``, or, over the
    room's cap, held for bot.voice to fold into tomorrow morning's digest."""
    row: dict[str, Any] = {"room_id": room_id, "body": body, "dedupe_key": key}
    if when is not None:
        return {**row, "own_post": True, "not_before": when}
    tz = app.settings.bot.tz
    day = voice.allowed_from(now, tz).astimezone(tz).date()
    return {**row, "own_post": False, "not_before": voice.HELD,
            "extra": {voice.DIGEST_AT: voice.digest_time(day, tz).isoformat()}}


# -- who may approve -----------------------------------------------------------------------


async def moderators(app: Host, session: AsyncSession) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {u: set(c) for u, c in app.config_moderators.items()}
    for grant in await roles.all_grants(session):
        if grant.role == "moderator":
            found.setdefault(grant.user_id, set()).add(grant.area_code)
    return found


async def coordinators(app: Host, session: AsyncSession) -> set[str]:
    found = set(app.settings.roles.coordinators)
    found |= {g.user_id for g in await roles.all_grants(session) if g.role == "coordinator"}
    return found


def covers(app: Host, moderated: Iterable[str], areas: Sequence[str]) -> bool:
    """Moderates every named area (a county-wide notice needs a coordinator)."""
    codes = [c for c in moderated if c in app.areas]
    root = app.areas.root.code
    named = [a for a in areas if a != root]
    return bool(named) and all(any(app.areas.contains(c, a) for c in codes) for a in named)


async def approvers(app: Host, session: AsyncSession, areas: Sequence[str]) -> list[str]:
    people = await coordinators(app, session)
    for user, codes in (await moderators(app, session)).items():
        if covers(app, codes, areas):
            people.add(user)
    return sorted(people)


HELD_LISTED = 10  # notices named in one approver's message; the rest are counted


async def notify_held(app: Host, session: AsyncSession,
                      notices: Sequence[FundingNotice], now: datetime) -> int:
    """One direct message to each person who may approve any of ``notices``, naming the
    ones they may approve; returns how many people were told.

    A feed poll can hold forty items at once: one message each would be forty messages
    to every approver, so a batch is one message, however long.
    """
    prefix = app.settings.bot.prefix
    waiting: dict[str, list[FundingNotice]] = {}
    for notice in notices:
        for user in await approvers(app, session, notice.areas):
            if user != notice.posted_by:
                waiting.setdefault(user, []).append(notice)
    told = 0
    for user, theirs in waiting.items():
        refs = ",".join(n.ref for n in theirs)
        batch = theirs[0].ref if len(theirs) == 1 else \
            hashlib.sha256(refs.encode()).hexdigest()[:16]
        row = await outbox.enqueue(session, now=now, to_user=user, kind="dm",
                                   body=_held_message(app, theirs, prefix),
                                   dedupe_key=f"held:{batch}:{person_key(user)}")
        told += row is not None
    app.queued()
    return told


def _held_message(app: Host, notices: Sequence[FundingNotice], prefix: str) -> str:
    def line(notice: FundingNotice) -> str:
        origin = notice.posted_by or f"feed {notice.source}"
        return (f"{notice.title} ({notice.funder}), from {origin}, "
                f"for {where_label(app, notice.areas)}")

    first = notices[0].ref
    how = (f"{prefix}funding show {first}, then {prefix}funding approve {first} "
           f"or {prefix}funding reject {first} reason=\"...\"")
    if len(notices) == 1:
        return f"Funding {first} waits for approval: {line(notices[0])}.\n{how}"
    listed = [f"{n.ref} {line(n)}" for n in notices[:HELD_LISTED]]
    more = len(notices) - len(listed)
    if more:
        listed.append(f"and {more} more: {prefix}funding list shows them all")
    return (f"{len(notices)} funding notices wait for approval:\n" + "\n".join(listed)
            + f"\nFor each: {how}")


# -- targeting and delivery ----------------------------------------------------------------


async def tree_rooms(session: AsyncSession) -> list[targeting.TreeRoom]:
    """The locality and function rooms of the room tree (storage/tree.py)."""
    from storage import tree

    found = []
    for row in (await tree.all_rooms(session)).values():
        if row.theme:
            found.append(targeting.TreeRoom(row.room_id, area=row.area_code, theme=row.theme))
        elif row.kind == "locality":
            found.append(targeting.TreeRoom(row.room_id, area=row.area_code))
    return found


async def plan_for(app: Host, session: AsyncSession,
                   notice: FundingNotice) -> targeting.Plan:
    subs = [
        targeting.SubscriptionFacts(
            room_id=s.room_id, areas=tuple(s.areas), themes=tuple(s.themes),
            min_award=s.min_award, max_award=s.max_award, sizes=tuple(s.sizes),
            digest=s.digest, reminders=s.reminders,
        )
        for s in await funding.subscriptions(session)
    ]
    profiles = [group_facts(app.areas, g)
                for g in await groups.active(session) if g.area_code in app.areas]
    root = app.areas.root.code
    return targeting.plan(facts_of(notice, root), subs, profiles, await tree_rooms(session),
                          app.areas.contains)


def group_facts(areas: AreaIndex, g: Group) -> targeting.GroupFacts:
    """What the targeting rule reads of a group, its reach included: everything that picks
    groups for a notice (delivery, consultations, partner suggestions) reads it alike."""
    return targeting.GroupFacts(
        id=g.id, room_id=g.room_id, area_code=g.area_code, themes=tuple(g.themes or ()),
        type=g.type, size=g.size, contact=g.contact, email=g.email,
        reach_area=(targeting.reach_area(areas, g.area_code, g.reach)
                    if g.area_code in areas else None),
    )


async def publish(app: Host, session: AsyncSession, notice: FundingNotice, now: datetime,
                  by: str | None) -> tuple[int, int]:
    """Publish and queue every room's copy once; (rooms now, digests) queued."""
    notice.status = funding.PUBLISHED
    notice.decided_by, notice.decided_at = by, now
    plan = await plan_for(app, session, notice)
    done = await funding.delivered_rooms(session, notice.id)
    secret = link_secret(app)
    digests = 0
    posts: list[dict[str, Any]] = []
    instant: list[targeting.Target] = []
    for target in plan.rooms:
        if target.room_id in done:
            continue
        if target.cadence != "instant":
            digests += await funding.add_digest_entry(
                session, notice_id=notice.id, target=f"room:{target.room_id}",
                room_id=target.room_id, cadence=target.cadence, queued_at=now,
            )
            continue
        instant.append(target)
    schedule = await schedule_rooms(app, session, [t.room_id for t in instant], now)
    for target in instant:
        body = render(app, notice, link_for(app, notice, target.room_id))
        posts.append(own_post(app, now, schedule[target.room_id], target.room_id, body,
                              f"notice:{notice.ref}:{target.room_id}"))
    queued = await funding.queue_posts(session, now, posts)
    await funding.record_deliveries(session, [
        {"notice_id": notice.id, "room_id": t.room_id, "via": t.via,
         "dedupe_key": f"notice:{notice.ref}:{t.room_id}",
         "room_key": targeting.room_key(secret, t.room_id), "reminders": t.reminders,
         "queued_at": now}
        for t in instant if f"notice:{notice.ref}:{t.room_id}" in queued
    ])
    for group in plan.emails:
        digests += await funding.add_digest_entry(
            session, notice_id=notice.id, target=f"group:G{group.id}", group_id=group.id,
            email=group.email, cadence="email", queued_at=now,
        )
    app.queued()
    return len(queued), digests
