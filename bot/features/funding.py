"""!funding commands: post, approve, list, subscribe, feed sources, history.

Handlers are thin: they check who may do what, persist through storage.funding
and answer. Who gets a notice is ``funding_targeting`` (pure), getting it there
once is ``funding_delivery``, the scheduled sweeps are ``funding_jobs``, feeds
``funding_feeds``, the counted link ``funding_links``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import (
    AreaValue,
    BadValue,
    Choice,
    DateValue,
    Deadline,
    ListOf,
    Money,
    ParseContext,
    Ref,
    Text,
    ThemeValue,
    Url,
    Value,
    YesNo,
)
from bot.commands.when import describe_date, local_datetime
from bot.features.funding_delivery import (
    closes_label,
    covers,
    link_for,
    money,
    notify_held,
    publish,
    rooms_text,
    where_label,
)
from bot.features.funding_jobs import jobs
from bot.features.funding_jobs import poll_feeds as poll_feeds  # the demo's entry point
from bot.features.funding_links import routes
from bot.ratelimit import DAY, daily_refusal
from config.organisations import GROUP_TYPE_ALIASES, GROUP_TYPES, SIZES
from storage import funding, groups
from storage.funding import FundingNotice

if TYPE_CHECKING:
    from bot.host import Host

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
class _OpenWord(Value):
    """``!funding open``; any other word after ``!funding`` is a mistyped subcommand."""

    shape: ClassVar[str] = "open"

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        if raw.strip().lower().rstrip(".") == "open":
            return "open"
        raise BadValue(f"{raw!r} is not a funding command; {ctx.prefix}help funding lists them")


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

def may_decide(ctx: Context, areas: Sequence[str]) -> bool:
    return ctx.sender.is_coordinator or covers(ctx.app, ctx.sender.moderated, areas)


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
    if not ctx.sender.is_coordinator:
        made = await funding.posted_since(ctx.session, ctx.sender.user_id, ctx.now - DAY)
        refused = daily_refusal(made, ctx.now, app.settings.bot.notices_per_day, ctx.tz,
                                "funding notices")
        if refused:
            raise CommandError(refused)
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
    await notify_held(app, ctx.session, [notice], ctx.now)
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
    params=[Param("open", _OpenWord(), required=False, positional=True),
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


def describe_subscription(app: Host, row: funding.FundingSubscription) -> str:
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
        g for g in await funding.grants_in(
            ctx.session, [a.code for a in app.areas.descendants(area)])
        if args.theme is None or args.theme in g.themes
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


def install(app: Host) -> None:
    # Tolerant of an app without a scheduler or web server (the shell, older wiring).
    add_job = getattr(app, "add_job", None)
    if add_job is not None:
        for job in jobs(app):
            add_job(job)
    web_routes = getattr(app, "web_routes", None)
    if web_routes is not None:
        web_routes.extend(routes(app))
