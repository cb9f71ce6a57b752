"""!funding: notices posted, approved, targeted and delivered once; feeds, digests, reminders.

Handlers are thin: permission rules and rendering live here, who gets what is
in ``funding_targeting`` (pure), feeds in ``funding_feeds``. A broadcast is
one transaction that queues every room's copy in the outbox under the key
``notice:F<n>:<room>`` and records it as a seed of the notice, so a crash
mid-broadcast resumes in the outbox worker and no room hears twice.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import voice
from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import (
    AreaValue,
    Choice,
    DateValue,
    Deadline,
    ListOf,
    Money,
    Ref,
    Text,
    ThemeValue,
    Url,
    YesNo,
)
from bot.commands.when import describe_date, local_datetime
from bot.features import funding_feeds
from bot.features import funding_targeting as targeting
from bot.scheduler import Job
from config.organisations import GROUP_TYPE_ALIASES, GROUP_TYPES, SIZES
from storage import funding, groups, outbox, roles
from storage.funding import FundingDelivery, FundingNotice
from storage.groups import Group
from storage.models import KnownRoom, OutboxMessage

if TYPE_CHECKING:
    from bot.app import Grapevine

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(minutes=5)
LIST_LIMIT = 10
DIGESTS = ("instant", "daily", "weekly")



@dataclass(frozen=True)
class _Kind(Choice):
    """A choice whose usage line shows a word, not every option (help stays short)."""

    word: str = "choice"

    @property
    def shape(self) -> str:  # type: ignore[override]
        return self.word


@dataclass(frozen=True)
class _Amount(Money):
    @property
    def shape(self) -> str:  # type: ignore[override]
        return "amount"


NOTICE = Ref("F")
SOURCE = Ref("S")
AREAS = ListOf(AreaValue(allow_all=True))
THEMES = ListOf(ThemeValue())
SIZE_LIST = ListOf(_Kind(SIZES, word="size"))
TYPES = ListOf(_Kind(GROUP_TYPES, aliases=GROUP_TYPE_ALIASES, word="group-type"))


# -- plain helpers -------------------------------------------------------------------------


def money(low: int | None, high: int | None) -> str:
    if not low:
        return f"up to £{high:,}" if high is not None else ""
    if high is None or low == high:
        return f"£{low:,}"
    return f"£{low:,}-£{high:,}"


def rooms_text(count: int) -> str:
    return f"{count} room" if count == 1 else f"{count} rooms"


def link_secret(app: Grapevine) -> bytes:
    secret = app.settings.privacy.pseudonym_secret
    if secret is not None:
        return b"notice-links:" + secret.get_secret_value().encode()
    return f"notice-links:{app.settings.matrix.user_id}".encode()


def link_for(app: Grapevine, notice: FundingNotice, room_id: str) -> str:
    """The counted short link when the bot serves web, else the funder's own page."""
    base = app.settings.web.base_url
    if not base:
        return notice.url
    return f"{base.rstrip('/')}/n/{notice.ref}/{targeting.room_key(link_secret(app), room_id)}"


def where_label(app: Grapevine, areas: Sequence[str]) -> str:
    if not areas or app.areas.root.code in areas:
        return f"all of {app.areas.root.name}"
    return ", ".join(app.areas.label(a) for a in areas[:4]) + (" ..." if len(areas) > 4 else "")


def closes_label(app: Grapevine, notice: FundingNotice) -> str:
    if notice.closes_at is None:
        return "no deadline given"
    local = notice.closes_at.astimezone(app.settings.bot.tz)
    day = describe_date(local.date())
    return f"closes {day}" if local.hour == 23 else f"closes {day} {local:%H:%M}"


def render(app: Grapevine, notice: FundingNotice, link: str) -> str:
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


async def schedule_rooms(app: Grapevine, session: AsyncSession, room_ids: list[str],
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


def own_post(app: Grapevine, now: datetime, when: datetime | None, room_id: str, body: str,
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


async def moderators(app: Grapevine, session: AsyncSession) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {u: set(c) for u, c in app.config_moderators.items()}
    for grant in await roles.all_grants(session):
        if grant.role == "moderator":
            found.setdefault(grant.user_id, set()).add(grant.area_code)
    return found


async def coordinators(app: Grapevine, session: AsyncSession) -> set[str]:
    found = set(app.settings.roles.coordinators)
    found |= {g.user_id for g in await roles.all_grants(session) if g.role == "coordinator"}
    return found


def covers(app: Grapevine, moderated: Iterable[str], areas: Sequence[str]) -> bool:
    """Moderates every named area (a county-wide notice needs a coordinator)."""
    codes = [c for c in moderated if c in app.areas]
    root = app.areas.root.code
    named = [a for a in areas if a != root]
    return bool(named) and all(any(app.areas.contains(c, a) for c in codes) for a in named)


def may_decide(ctx: Context, areas: Sequence[str]) -> bool:
    return ctx.sender.is_coordinator or covers(ctx.app, ctx.sender.moderated, areas)


async def approvers(app: Grapevine, session: AsyncSession, areas: Sequence[str]) -> list[str]:
    people = await coordinators(app, session)
    for user, codes in (await moderators(app, session)).items():
        if covers(app, codes, areas):
            people.add(user)
    return sorted(people)


async def notify_held(app: Grapevine, session: AsyncSession, notice: FundingNotice,
                      now: datetime) -> int:
    """Tell everyone who may approve it, once each; returns how many were told."""
    prefix = app.settings.bot.prefix
    origin = notice.posted_by or f"feed {notice.source}"
    body = (
        f"Funding {notice.ref} waits for approval: {notice.title} ({notice.funder}), "
        f"from {origin}, for {where_label(app, notice.areas)}.\n"
        f"{prefix}funding show {notice.ref}, then {prefix}funding approve {notice.ref} "
        f"or {prefix}funding reject {notice.ref} reason=\"...\""
    )
    told = 0
    for user in await approvers(app, session, notice.areas):
        if user == notice.posted_by:
            continue
        row = await outbox.enqueue(session, now=now, to_user=user, body=body, kind="dm",
                                   dedupe_key=f"held:{notice.ref}:{user}")
        told += row is not None
    app.queued()
    return told


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


async def plan_for(app: Grapevine, session: AsyncSession,
                   notice: FundingNotice) -> targeting.Plan:
    subs = [
        targeting.SubscriptionFacts(
            room_id=s.room_id, areas=tuple(s.areas), themes=tuple(s.themes),
            min_award=s.min_award, max_award=s.max_award, sizes=tuple(s.sizes),
            digest=s.digest, reminders=s.reminders,
        )
        for s in await funding.subscriptions(session)
    ]
    profiles = [
        targeting.GroupFacts(
            id=g.id, room_id=g.room_id, area_code=g.area_code, themes=tuple(g.themes or ()),
            type=g.type, size=g.size, contact=g.contact, email=g.email,
        )
        for g in await groups.active(session) if g.area_code in app.areas
    ]
    root = app.areas.root.code
    return targeting.plan(facts_of(notice, root), subs, profiles, await tree_rooms(session),
                          app.areas.contains)


async def publish(app: Grapevine, session: AsyncSession, notice: FundingNotice, now: datetime,
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


# -- commands: posting and approval --------------------------------------------------------


@commands.command(
    "funding post",
    summary="post a funding notice (held for approval unless you moderate its areas)",
    params=[
        Param("url", Url(), positional=True, ask="What is the link to the funder's page?"),
        Param("title", Text(max_length=200), ask="What is the fund called?"),
        Param("funder", Text(max_length=200), ask="Who is the funder?"),
        Param("deadline", Deadline(), ask="When does it close? (a date, e.g. 5 Dec)"),
        Param("amount", Money(), required=False),
        Param("opens", DateValue(), required=False),
        Param("areas", AREAS, required=False),
        Param("themes", THEMES, required=False),
        Param("eligibility", TYPES, required=False),
        Param("size", SIZE_LIST, required=False),
    ],
)
async def post(ctx: Context, args: Args) -> None:
    app = ctx.app
    if args.deadline <= ctx.now:
        raise CommandError("deadline: that has already passed; give a date still to come.")
    low, high = args.amount or (None, None)
    root = app.areas.root.code
    areas = [a for a in (args.areas or []) if a != root]
    opens = local_datetime(args.opens, datetime.min.time(), ctx.tz) if args.opens else None
    if opens is not None and opens >= args.deadline:
        raise CommandError("opens: that is after the deadline; check both dates.")
    publish_now = may_decide(ctx, areas)
    notice = await funding.add_notice(
        ctx.session, title=args.title, funder=args.funder, award_min=low, award_max=high,
        opens_at=opens, closes_at=args.deadline, areas=areas, themes=list(args.themes or []),
        applicant_types=list(args.eligibility or []), sizes=list(args.size or []),
        url=args.url, source="chat", status=funding.HELD, posted_by=ctx.sender.user_id,
        posted_in=ctx.room.room_id, created_at=ctx.now,
    )
    if publish_now:
        rooms, digests = await publish(app, ctx.session, notice, ctx.now, ctx.sender.user_id)
        await ctx.reply(f"{notice.ref} published: going to {rooms_text(rooms)} now"
                        + (f", {digests} digests" if digests else "") + ".")
        return
    await notify_held(app, ctx.session, notice, ctx.now)
    who = ("a coordinator" if not areas
           else f"a coordinator or a moderator of {where_label(app, areas)}")
    await ctx.reply(f"{notice.ref} is held for approval by {who}; I'll tell you when it's decided.")


async def _held(ctx: Context, ref: int, verb: str) -> FundingNotice:
    notice = await funding.notice(ctx.session, ref)
    if notice is None:
        raise CommandError(f"There is no notice F{ref}; {ctx.prefix}funding list shows them.")
    if not may_decide(ctx, notice.areas):
        needed = ("a coordinator" if not notice.areas else
                  f"a coordinator or a moderator of every area it names "
                  f"({where_label(ctx.app, notice.areas)})")
        raise CommandError(f"Only {needed} may {verb} {notice.ref}.")
    if notice.status != funding.HELD:
        raise CommandError(f"{notice.ref} is already {notice.status}; nothing changed.")
    if verb == "approve" and notice.closes_at is not None and notice.closes_at <= ctx.now:
        raise CommandError(f"{notice.ref} closed on {closes_label(ctx.app, notice)[7:]}; "
                           f"reject it instead ({ctx.prefix}funding reject {notice.ref}).")
    return notice


@commands.command("funding approve", summary="publish a held notice",
                  roles=[Role.COORDINATOR, Role.MODERATOR],
                  params=[Param("notice", NOTICE, positional=True)])
async def approve(ctx: Context, args: Args) -> None:
    notice = await _held(ctx, args.notice, "approve")
    rooms, digests = await publish(ctx.app, ctx.session, notice, ctx.now, ctx.sender.user_id)
    if notice.posted_by and notice.posted_by != ctx.sender.user_id:
        await ctx.dm(notice.posted_by,
                     f"Your funding notice {notice.ref} ({notice.title}) was approved "
                     f"and is going to {rooms_text(rooms)}.",
                     dedupe_key=f"decided:{notice.ref}")
    await ctx.reply(f"{notice.ref} approved: going to {rooms_text(rooms)} now"
                    + (f", {digests} digests" if digests else "") + ".")


@commands.command("funding reject", summary="turn down a held notice",
                  roles=[Role.COORDINATOR, Role.MODERATOR],
                  params=[Param("notice", NOTICE, positional=True),
                          Param("reason", Text(max_length=300), required=False)])
async def reject(ctx: Context, args: Args) -> None:
    notice = await _held(ctx, args.notice, "reject")
    notice.status = funding.REJECTED
    notice.decided_by, notice.decided_at, notice.reason = ctx.sender.user_id, ctx.now, args.reason
    because = f": {args.reason}" if args.reason else ""
    if notice.posted_by and notice.posted_by != ctx.sender.user_id:
        await ctx.dm(notice.posted_by,
                     f"Your funding notice {notice.ref} ({notice.title}) was not published"
                     f"{because}.", dedupe_key=f"decided:{notice.ref}")
    await ctx.reply(f"{notice.ref} rejected{because}.")


# -- commands: reading ---------------------------------------------------------------------


def _visible(ctx: Context, notice: FundingNotice) -> bool:
    if notice.status in {funding.PUBLISHED, funding.EXPIRED}:
        return True
    return notice.posted_by == ctx.sender.user_id or may_decide(ctx, notice.areas)


def _is_open(notice: FundingNotice, now: datetime) -> bool:
    return notice.opens_at is None or notice.opens_at <= now


def _in_area(ctx: Context, notice: FundingNotice, area: str) -> bool:
    if not notice.areas:
        return True
    contains = ctx.app.areas.contains
    return any(contains(a, area) or contains(area, a) for a in notice.areas)


@commands.command(
    "funding list", aliases=["funding"], summary="funding notices still open to apply for",
    params=[Param("open", Choice(("open",)), required=False, positional=True),
            Param("area", AreaValue(allow_all=True), required=False),
            Param("theme", ThemeValue(), required=False)],
)
async def list_notices(ctx: Context, args: Args) -> None:
    await funding.expire(ctx.session, ctx.now)
    shown = [
        n for n in await funding.notices(ctx.session, funding.PUBLISHED)
        if (n.closes_at is None or n.closes_at > ctx.now)
        and (not args.open or _is_open(n, ctx.now))
        and (args.area is None or _in_area(ctx, n, args.area))
        and (args.theme is None or not n.themes or args.theme in n.themes)
    ]
    shown.sort(key=lambda n: (n.closes_at is None, n.closes_at or ctx.now, n.id))
    lines = [
        f"{n.ref} {n.title} ({n.funder}), {closes_label(ctx.app, n)}" for n in shown[:LIST_LIMIT]
    ]
    if len(shown) > LIST_LIMIT:
        lines.append(f"... and {len(shown) - LIST_LIMIT} more: narrow with area= or theme=.")
    if not lines:
        lines = ["No open funding notices match."]
    held = [n.ref for n in await funding.notices(ctx.session, funding.HELD)
            if may_decide(ctx, n.areas)]
    if held:
        lines.append(f"Waiting for your approval: {', '.join(held[:8])}")
    await ctx.reply("\n".join(lines))


@commands.command("funding show", summary="one funding notice in full",
                  params=[Param("notice", NOTICE, positional=True)])
async def show(ctx: Context, args: Args) -> None:
    notice = await funding.notice(ctx.session, args.notice)
    if notice is None or not _visible(ctx, notice):
        raise CommandError(f"There is no notice F{args.notice}; {ctx.prefix}funding list "
                           "shows them.")
    app = ctx.app
    lines = [f"{notice.ref} ({notice.status}): {notice.title}", f"Funder: {notice.funder}"]
    amount = money(notice.award_min, notice.award_max)
    if amount:
        lines.append(f"Awards: {amount}")
    if notice.opens_at is not None:
        lines.append(f"Opens: {describe_date(notice.opens_at.astimezone(ctx.tz).date())}")
    closes = closes_label(app, notice)
    lines.append(closes[:1].upper() + closes[1:])
    lines.append(f"Where: {where_label(app, notice.areas)}")
    if notice.themes:
        lines.append("Themes: " + ", ".join(notice.themes))
    who = ", ".join(notice.applicant_types) or "any"
    lines.append(f"Who: {who}; sizes: {', '.join(notice.sizes) or 'any'}")
    if notice.description:
        lines.append(notice.description[:200])
    if notice.reason:
        lines.append(f"Reason: {notice.reason}")
    room = ctx.room.room_id if not ctx.room.is_direct else None
    lines.append(link_for(app, notice, room) if room and notice.status == funding.PUBLISHED
                 else notice.url)
    await ctx.reply("\n".join(lines[:12]))


# -- commands: subscriptions ---------------------------------------------------------------


@commands.command(
    "funding subscribe", summary="this room receives matching funding notices",
    roles=[Role.GROUP_ADMIN], where=Where.ROOM,
    params=[Param("areas", AREAS, required=False), Param("themes", THEMES, required=False),
            Param("min", _Amount(), required=False), Param("max", _Amount(), required=False),
            Param("size", SIZE_LIST, required=False),
            Param("digest", Choice(DIGESTS), required=False),
            Param("reminders", YesNo(), required=False)],
)
async def subscribe(ctx: Context, args: Args) -> None:
    low = args.min[0] if args.min else None
    high = args.max[1] if args.max else None
    if low is not None and high is not None and low > high:
        raise CommandError("min is more than max; swap them or leave one out.")
    root = ctx.app.areas.root.code
    row = await funding.subscribe(
        ctx.session, ctx.room.room_id, areas=[a for a in (args.areas or []) if a != root],
        themes=list(args.themes or []), min_award=low, max_award=high,
        sizes=list(args.size or []), digest=args.digest or "instant",
        reminders=True if args.reminders is None else args.reminders,
        created_by=ctx.sender.user_id, created_at=ctx.now,
    )
    await ctx.reply("Subscribed: " + describe_subscription(ctx.app, row))


def describe_subscription(app: Grapevine, row: funding.FundingSubscription) -> str:
    parts = [where_label(app, row.areas)]
    parts.append("themes " + ", ".join(row.themes) if row.themes else "any theme")
    amount = money(row.min_award, row.max_award)
    if row.min_award is not None and row.max_award is None:
        amount = f"from £{row.min_award:,}"
    if amount:
        parts.append(amount)
    if row.sizes:
        parts.append("sizes " + ", ".join(row.sizes))
    parts.append(f"{row.digest}" + ("" if row.digest == "instant" else " digest"))
    parts.append("reminders on" if row.reminders else "reminders off")
    return "; ".join(parts) + "."


@commands.command("funding unsubscribe", summary="stop funding notices from subscriptions here",
                  roles=[Role.GROUP_ADMIN], where=Where.ROOM)
async def unsubscribe(ctx: Context, args: Args) -> None:
    if not await funding.unsubscribe(ctx.session, ctx.room.room_id):
        raise CommandError("This room has no funding subscription; nothing changed.")
    await ctx.reply("Unsubscribed: this room gets no more notices from its subscription.")


@commands.command("funding subscriptions", summary="what this room subscribed to")
async def subscriptions(ctx: Context, args: Args) -> None:
    if ctx.room.is_direct and ctx.sender.is_coordinator:
        rows = await funding.subscriptions(ctx.session)
        lines = [f"{len(rows)} rooms subscribe to funding notices."]
        by_digest: dict[str, int] = defaultdict(int)
        for row in rows:
            by_digest[row.digest] += 1
        lines += [f"{digest}: {count}" for digest, count in sorted(by_digest.items())]
        await ctx.reply("\n".join(lines))
        return
    mine = await funding.subscription(ctx.session, ctx.room.room_id)
    if mine is None:
        await ctx.reply(f"This room has no funding subscription; a room admin can start one "
                        f"with {ctx.prefix}funding subscribe.")
        return
    await ctx.reply("This room: " + describe_subscription(ctx.app, mine))


# -- commands: feed sources ----------------------------------------------------------------


@commands.command("funding sources", summary="the funding feeds polled, and how each is doing",
                  roles=[Role.COORDINATOR])
async def sources(ctx: Context, args: Args) -> None:
    rows = await funding.sources(ctx.session)
    if not rows:
        await ctx.reply(f"No feeds yet; add one with {ctx.prefix}funding source add <feed-url>.")
        return
    lines = []
    for src in rows[:12]:
        if src.last_error:
            state = f"failing ({src.failures}x): {src.last_error}"
        elif src.last_ok_at is not None:
            state = f"ok, {src.items_seen} items held so far"
        else:
            state = "not polled yet"
        lines.append(f"{src.ref} {src.url}: {state}")
    await ctx.reply("\n".join(lines))


@commands.command(
    "funding source add", summary="poll an RSS or Atom feed for new notices",
    roles=[Role.COORDINATOR],
    params=[Param("url", Url(), positional=True, ask="What is the feed's address?"),
            Param("areas", AREAS, required=False), Param("themes", THEMES, required=False)],
)
async def source_add(ctx: Context, args: Args) -> None:
    existing = await funding.source_by_url(ctx.session, args.url)
    if existing is not None:
        raise CommandError(f"That feed is already {existing.ref}; nothing changed.")
    root = ctx.app.areas.root.code
    src = await funding.add_source(
        ctx.session, url=args.url, areas=[a for a in (args.areas or []) if a != root],
        themes=list(args.themes or []), added_by=ctx.sender.user_id, added_at=ctx.now,
        next_poll_at=ctx.now, failures=0, items_seen=0,
    )
    await ctx.reply(f"{src.ref} added: I'll poll it shortly; new items wait for approval. "
                    f"{ctx.prefix}funding sources says how it is doing.")


@commands.command("funding source remove", summary="stop polling a feed",
                  roles=[Role.COORDINATOR], params=[Param("source", SOURCE, positional=True)])
async def source_remove(ctx: Context, args: Args) -> None:
    src = await funding.source(ctx.session, args.source)
    if src is None:
        raise CommandError(f"There is no feed S{args.source}; {ctx.prefix}funding sources "
                           "lists them.")
    src.removed_at = ctx.now
    await ctx.reply(f"{src.ref} removed; notices it brought stay as they are.")


# -- commands: history ---------------------------------------------------------------------


@commands.command(
    "funding history", summary="who has funded groups like this one here (360Giving)",
    params=[Param("area", AreaValue(allow_all=True), required=False),
            Param("theme", ThemeValue(), required=False)],
)
async def history(ctx: Context, args: Args) -> None:
    app = ctx.app
    area = args.area
    if area is None and not ctx.room.is_direct:
        group = await groups.by_room(ctx.session, ctx.room.room_id)
        area = group.area_code if group is not None and group.area_code in app.areas else None
    area = area or app.areas.root.code
    found = [
        g for g in await funding.grants_with_area(ctx.session)
        if g.area_code in app.areas and app.areas.contains(area, g.area_code or "")
        and (args.theme is None or args.theme in g.themes)
    ]
    place = app.areas.label(area) + (f", {args.theme}" if args.theme else "")
    if not found:
        await ctx.reply(f"No past grants recorded for {place}. An admin can load 360Giving "
                        "files with: grapevine import-grants FILE")
        return
    total = sum(g.amount for g in found)
    by_funder: dict[str, list[float]] = defaultdict(list)
    for g in found:
        by_funder[g.funder_name].append(g.amount)
    top = sorted(by_funder.items(), key=lambda kv: (-len(kv[1]), -sum(kv[1])))[:5]
    lines = [f"Past grants in {place}: {len(found)}, £{total:,.0f} in all (360Giving)."]
    lines += [f"{name}: {len(a)} grant{'s' if len(a) > 1 else ''}, £{sum(a):,.0f}"
              for name, a in top]
    recent = sorted(found, key=lambda g: g.awarded_on, reverse=True)[:5]
    lines.append("Recent:")
    lines += [f"{g.recipient_name}: £{g.amount:,.0f} from {g.funder_name} ({g.awarded_on})"
              for g in recent]
    await ctx.reply("\n".join(lines[:12]))


# -- scheduled sweeps (catch-up-safe: each looks at rows, not at missed fire times) --------


async def send_reminders(app: Grapevine, now: datetime) -> int:
    tz = app.settings.bot.tz
    queued = 0
    async with app.db.transaction() as session:
        await funding.expire(session, now)
        for notice, delivery in await funding.reminder_candidates(session, now):
            assert notice.closes_at is not None
            done = await funding.reminders_sent(session, notice.id, delivery.room_id)
            due = targeting.reminders_due(notice.closes_at, now, tz, done,
                                          since=delivery.queued_at)
            for days in due:
                left = "tomorrow" if days == 1 else f"in {days} days"
                body = (f"Reminder: funding {notice.ref} {notice.title} closes {left} "
                        f"({closes_label(app, notice).removeprefix('closes ')}).\n"
                        f"{link_for(app, notice, delivery.room_id)}")
                await voice.enqueue_own_post(
                    session, now=now, tz=tz, room_id=delivery.room_id, body=body,
                    kind="reminder", dedupe_key=f"reminder:{notice.ref}:{days}d:{delivery.room_id}",
                )
                await funding.record_reminder(session, notice.id, delivery.room_id, days, now)
                queued += 1
    if queued:
        app.queued()
    return queued


async def send_digests(app: Grapevine, now: datetime) -> int:
    """One message per room and digest slot that has come, listing the notices still open."""
    tz = app.settings.bot.tz
    secret = link_secret(app)
    sent = 0
    async with app.db.transaction() as session:
        batches: dict[tuple[str, datetime], list[tuple[funding.FundingDigestEntry,
                                                       FundingNotice]]] = defaultdict(list)
        for entry, notice in await funding.pending_digest(session, ("daily", "weekly")):
            slot = targeting.digest_slot(entry.cadence, entry.queued_at, tz)
            if slot <= now and entry.room_id:
                batches[(entry.room_id, slot)].append((entry, notice))
        for (room_id, slot), rows in batches.items():
            live = [n for _, n in rows if n.status == funding.PUBLISHED
                    and (n.closes_at is None or n.closes_at > now)]
            key = f"digest:{room_id}:{slot:%Y%m%d}"
            if live:
                lines = [f"Funding digest: {len(live)} new notices"]
                lines += [f"{n.ref} {n.title} ({n.funder}), {closes_label(app, n)}: "
                          f"{link_for(app, n, room_id)}" for n in live[:10]]
                if len(live) > 10:
                    lines.append(f"... and {len(live) - 10} more: {app.settings.bot.prefix}"
                                 "funding list")
                await voice.enqueue_own_post(session, now=now, tz=tz, room_id=room_id,
                                             kind="digest", body="\n".join(lines),
                                             dedupe_key=key)
                sent += 1
            done = await _rooms_done(session, [n.id for n in live], room_id)
            for n in live:
                if n.id not in done:
                    await funding.record_delivery(
                        session, notice_id=n.id, room_id=room_id, via="digest", dedupe_key=key,
                        room_key=targeting.room_key(secret, room_id), reminders=True,
                        queued_at=now, opens=0,
                    )
            for entry, _ in rows:
                entry.sent_at = now
    if sent:
        app.queued()
    return sent


async def _rooms_done(session: AsyncSession, notice_ids: list[int], room_id: str) -> set[int]:
    if not notice_ids:
        return set()
    return set(await session.scalars(
        select(FundingDelivery.notice_id).where(
            FundingDelivery.room_id == room_id, FundingDelivery.notice_id.in_(notice_ids))
    ))


async def poll_feeds(app: Grapevine, now: datetime) -> int:
    """Poll due feeds; tell approvers about each new held item. Returns how many were held."""
    found = await funding_feeds.poll_due(app.db, now, app.settings.bot.tz)
    new_ids = [i for ids in found.values() for i in ids]
    if new_ids:
        async with app.db.transaction() as session:
            for notice_id in new_ids:
                notice = await funding.notice(session, notice_id)
                if notice is not None:
                    await notify_held(app, session, notice, now)
    return len(new_ids)


async def sweep(app: Grapevine) -> None:
    now = app.clock.now()
    await send_reminders(app, now)
    await send_digests(app, now)
    async with app.db.transaction() as session:
        await funding.fill_sent(session)


def jobs(app: Grapevine) -> list[Job]:
    async def run_sweep() -> None:
        await sweep(app)

    async def run_feeds() -> None:
        await poll_feeds(app, app.clock.now())

    every = IntervalTrigger(seconds=SWEEP_EVERY.total_seconds())
    return [Job("funding-sweep", every, run_sweep), Job("funding-feeds", every, run_feeds)]


# -- the counted link ----------------------------------------------------------------------

APP_KEY: web.AppKey[Grapevine] = web.AppKey("grapevine")
_REF = re.compile(r"(?i)^F(\d{1,9})$")


async def follow(app: Grapevine, ref: str, key: str) -> str | None:
    """Count an open of a notice's link in the room it was posted to; the url to go to."""
    match = _REF.match(ref)
    if match is None:
        return None
    notice_id = int(match.group(1))
    async with app.db.transaction() as session:
        notice = await funding.notice(session, notice_id)
        if notice is None or notice.status not in {funding.PUBLISHED, funding.EXPIRED}:
            return None
        await session.execute(
            update(FundingDelivery)
            .where(FundingDelivery.notice_id == notice_id, FundingDelivery.room_key == key)
            .values(opens=FundingDelivery.opens + 1, last_opened_at=app.clock.now())
        )
        return notice.url


async def _answer(app: Grapevine, request: web.Request) -> web.Response:
    url = await follow(app, request.match_info["ref"], request.match_info["key"])
    if url is None:
        return web.Response(status=404, text="No such funding notice.\n")
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})


async def open_link(request: web.Request) -> web.Response:
    """``/n/F12/<room key>``: counts the open for that room (never who), then redirects."""
    return await _answer(request.config_dict[APP_KEY], request)


def routes(app: Grapevine) -> list[web.RouteDef]:
    async def handler(request: web.Request) -> web.Response:
        return await _answer(app, request)

    return [web.get("/n/{ref}/{key}", handler)]


def install(app: Grapevine) -> None:
    # Tolerant of an app without a scheduler or web server (the shell, older wiring).
    add_job = getattr(app, "add_job", None)
    if add_job is not None:
        for job in jobs(app):
            add_job(job)
    web_routes = getattr(app, "web_routes", None)
    if web_routes is not None:
        web_routes.extend(routes(app))
