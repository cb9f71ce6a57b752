"""!consult: a coordinator's short poll of groups, answered in the groups' own rooms.

The seed report's recommendation 5: consult networks of groups close in function
or place. A poll (``K<n>``) goes to the rooms of the groups that match its areas,
themes and types, chosen by the funding notices' own rule
(``funding_targeting.group_fits``) and queued as the bot's own post under the
rooms' daily cap and night hours (``funding_delivery``, ``bot.voice``). A group's
admin answers for the group; members add their own view only when the coordinator
allowed it. Results (``consult_results``) show counts, never who.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from apscheduler.triggers.interval import IntervalTrigger

from bot.commands.context import Context
from bot.commands.deferred import Outside
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import BadValue, Deadline, ParseContext, Ref, Text, Value, YesNo
from bot.commands.when import describe_date
from bot.features import consult_results as results
from bot.features import funding_targeting as targeting
from bot.features.funding import AREAS, THEMES, TYPES
from bot.features.funding_delivery import coordinators, group_facts, own_post, schedule_rooms
from bot.features.intake import flow_secret
from bot.scheduler import Job
from storage import consult, flow, funding, groups
from storage.consult import Poll
from storage.outbox import Attachment

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger(__name__)

POLL = Ref(Poll.LETTER)
MAX_OPTIONS = 8
LISTED = 10
CLOSE_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Options(Value):
    """``options="Yes|No|Not sure"``: two to eight distinct short answers."""

    shape: ClassVar[str] = '"a|b|c"'

    async def parse(self, raw: str, ctx: ParseContext) -> list[str]:
        items = [item.strip() for item in raw.split("|")]
        if len(items) < 2 or not all(items):
            raise BadValue('needs two or more answers split by |, e.g. options="Yes|No|Not sure"')
        if len(items) > MAX_OPTIONS:
            raise BadValue(f"has {len(items)} answers; at most {MAX_OPTIONS}")
        if len({i.lower() for i in items}) < len(items):
            raise BadValue("names the same answer twice")
        if any(len(i) > 80 for i in items):
            raise BadValue("has an answer over 80 characters; keep each short")
        return items


def closes_text(poll: Poll, app: Host) -> str:
    if poll.closes_at is None:
        return ""
    local = poll.closes_at.astimezone(app.settings.bot.tz)
    day = describe_date(local.date())
    return day if local.hour == 23 else f"{day} {local:%H:%M}"


def poll_message(poll: Poll, app: Host) -> str:
    """What a group's room reads: a few plain lines that survive any bridge."""
    prefix = app.settings.bot.prefix
    choices = " · ".join(results.label(poll.options, i) for i in range(len(poll.options)))
    lines = [f"Consultation {poll.ref} from the coordinators: {poll.question}", choices,
             f"A room admin answers for the group: {prefix}consult answer {poll.ref} "
             f"{results.letter(0)} (comment=\"...\" if you like)."]
    if poll.members_may:
        lines.append("Members may add their own view the same way.")
    if poll.closes_at is not None:
        lines.append(f"Closes {closes_text(poll, app)}.")
    return "\n".join(lines)


def status_text(poll: Poll, app: Host, now: datetime) -> str:
    if poll.closed_at is not None or poll.is_closed(now):
        at = poll.closed_at or poll.closes_at
        assert at is not None
        return f"closed {describe_date(at.astimezone(app.settings.bot.tz).date())}"
    return f"open until {closes_text(poll, app)}" if poll.closes_at else "open"


async def _poll(ctx: Context, ref: int) -> Poll:
    poll = await consult.poll(ctx.session, ref)
    if poll is None:
        where = (f"{ctx.prefix}consult list shows them" if ctx.sender.is_coordinator
                 else "check the number in the message that asked it")
        raise CommandError(f"There is no consultation {Poll.ref_of(ref)}; {where}.")
    return poll


# -- asking --------------------------------------------------------------------------------


@commands.command(
    "consult ask", summary="put a short poll to the groups that match (coordinator)",
    roles=[Role.COORDINATOR],
    params=[Param("question", Text(max_length=300), ask="What is the question? (in quotes)"),
            Param("options", Options(), ask='What answers may groups give? (e.g. "Yes|No")'),
            Param("areas", AREAS, required=False), Param("themes", THEMES, required=False),
            Param("types", TYPES, required=False), Param("closes", Deadline(), required=False),
            Param("members", YesNo(), required=False,
                  help="yes: members may add their own view besides the group's answer")],
)
async def ask(ctx: Context, args: Args) -> None:
    app = ctx.app
    if args.closes is not None and args.closes <= ctx.now:
        raise CommandError("closes: that has already passed; give a date still to come.")
    root = app.areas.root.code
    facts = targeting.NoticeFacts(areas=tuple(a for a in (args.areas or []) if a != root),
                                  themes=tuple(args.themes or ()),
                                  applicant_types=tuple(args.types or ()))
    chosen = [
        g for g in await groups.active(ctx.session)
        if g.room_id is not None and g.area_code in app.areas and targeting.group_fits(
            facts, group_facts(app.areas, g), app.areas.contains)
    ]
    if not chosen:
        raise CommandError("No group on chat matches those areas, themes and types (or they "
                           "opted out of contact); widen them. Nothing was sent.")
    poll = await consult.add_poll(
        ctx.session, question=args.question, options=list(args.options),
        areas=list(facts.areas), themes=list(facts.themes), types=list(facts.applicant_types),
        group_ids=[g.id for g in chosen], members_may=bool(args.members),
        asked_by=ctx.sender.user_id, asked_at=ctx.now, closes_at=args.closes, closed_at=None,
    )
    room_ids = [g.room_id for g in chosen if g.room_id is not None]
    when = await schedule_rooms(app, ctx.session, room_ids, ctx.now)
    body = poll_message(poll, app)
    queued = await funding.queue_posts(ctx.session, ctx.now, [
        own_post(app, ctx.now, when[room], room, body, f"consult:{poll.ref}:{room}")
        for room in room_ids])
    app.queued()
    later = sum(1 for room in room_ids if when[room] is None or when[room] != ctx.now)
    waiting = f" ({later} after the night or in tomorrow's digest)" if later else ""
    log.info("consultation %s put to %d groups", poll.ref, len(queued))
    await ctx.reply(f"{poll.ref} put to {len(chosen)} group{'s' if len(chosen) > 1 else ''}"
                    f"{waiting}. {ctx.prefix}consult results {poll.ref} shows the answers; "
                    f"{ctx.prefix}consult close {poll.ref} ends it.")


# -- answering -----------------------------------------------------------------------------


def _option(poll: Poll, raw: str, prefix: str) -> int:
    """A letter (``b``), a number (``2``) or the answer's words, as phones type them."""
    word = raw.strip().strip(".)").lower()
    letters = [results.letter(i) for i in range(len(poll.options))]
    if word in letters:
        return letters.index(word)
    if word.isdigit() and 1 <= int(word) <= len(poll.options):
        return int(word) - 1
    named = [i for i, text in enumerate(poll.options) if text.lower() == word]
    if named:
        return named[0]
    raise CommandError(f"{raw!r} is not an answer to {poll.ref}: give "
                       f"{', '.join(letters[:-1])} or {letters[-1]} "
                       f"({prefix}consult answer {poll.ref} {letters[0]}).")


@commands.command(
    "consult answer", where=Where.ROOM,
    summary="answer a consultation for your group (room admins; members when it allows)",
    params=[Param("poll", POLL, positional=True, ask="Which consultation? (e.g. K3)"),
            Param("option", Text(max_length=80), positional=True,
                  ask="Which answer? (its letter, e.g. b)"),
            Param("comment", Text(max_length=300), required=False)],
)
async def answer(ctx: Context, args: Args) -> None:
    poll = await _poll(ctx, args.poll)
    if poll.is_closed(ctx.now):
        raise CommandError(f"{poll.ref} is {status_text(poll, ctx.app, ctx.now)}; it takes no "
                           "more answers.")
    group = await groups.by_room(ctx.session, ctx.room.room_id)
    if group is None or group.id not in poll.group_ids:
        raise CommandError(f"{poll.ref} was not put to a group in this room; answer it in the "
                           "room of a group that got it.")
    option = _option(poll, args.option, ctx.prefix)
    admin = ctx.sender.is_group_admin
    if not admin and not poll.members_may:
        raise CommandError(f"Only a room admin (power 50 here) answers {poll.ref} for "
                           f"{group.ref}; this consultation asks for groups' answers only.")
    if not admin and ctx.sender.relayed:
        # Everyone a relay bot carries looks like the relay: one view would stand for many.
        raise CommandError(f"I can't tell who sent a relayed message, so I can't keep your own "
                           f"view; message my number directly to give it ({ctx.prefix}consult "
                           f"answer {poll.ref} ...).")
    key = consult.GROUP if admin else flow.pseudonym(flow_secret(ctx.app.settings),
                                                     ctx.sender.user_id)
    row = (await consult.answer_of(ctx.session, poll.id, group.id) if admin
           else await consult.view_of(ctx.session, poll.id, key))
    chosen = results.label(poll.options, option)
    until = f" until it closes ({closes_text(poll, ctx.app)})" if poll.closes_at else \
        " until it closes"
    if row is None:
        district = ctx.app.areas.district_of(group.area_code) \
            if group.area_code in ctx.app.areas else None
        await consult.add_answer(
            ctx.session, poll_id=poll.id, group_id=group.id, voter_key=key, option=option,
            comment=args.comment, district=district.code if district else None,
            network=ctx.room.network or "matrix", answered_at=ctx.now, changed_at=None)
        said = "noted"
    else:
        before = results.label(poll.options, row.option)
        said = f"changed from {before}" if row.option != option else "unchanged"
        row.option, row.changed_at = option, ctx.now
        if args.comment:
            row.comment = args.comment
            said = "comment updated" if said == "unchanged" else said
    if admin:
        await ctx.reply(f"{group.ref}'s answer to {poll.ref}: {chosen} ({said}). Any admin here "
                        f"may change it{until}.")
    else:
        await ctx.reply(f"Your own view on {poll.ref}: {chosen} ({said}), kept without your "
                        f"name. You may change it{until}.")


@commands.command("consult list", summary="the latest consultations and whether they are open "
                  "(coordinator)", roles=[Role.COORDINATOR])
async def list_polls(ctx: Context, args: Args) -> None:
    polls = await consult.latest_polls(ctx.session, LISTED)
    if not polls:
        await ctx.reply(f"No consultations yet; {ctx.prefix}consult ask starts one.")
        return
    await ctx.reply("\n".join(f"{p.ref} {p.question} ({status_text(p, ctx.app, ctx.now)})"
                              for p in polls))


# -- closing -------------------------------------------------------------------------------


@commands.command("consult close", summary="end a consultation now (coordinator)",
                  roles=[Role.COORDINATOR],
                  params=[Param("poll", POLL, positional=True, ask="Which consultation?")])
async def close(ctx: Context, args: Args) -> None:
    poll = await _poll(ctx, args.poll)
    if poll.is_closed(ctx.now):
        raise CommandError(f"{poll.ref} is already {status_text(poll, ctx.app, ctx.now)}; "
                           "nothing changed.")
    poll.closed_at = ctx.now
    log.info("consultation %s closed by a coordinator", poll.ref)
    await ctx.reply(f"{poll.ref} closed. {ctx.prefix}consult results {poll.ref} shows the "
                    "counts, a chart and a CSV file.")


async def close_due(app: Host, now: datetime) -> int:
    """Close every poll whose ``closes=`` has come and tell whoever asked it; polls closed.

    Looks at rows, not at missed fire times: after downtime one run closes them all,
    and the DM's dedupe key makes a second run say nothing twice.
    """
    from storage import outbox

    prefix = app.settings.bot.prefix
    async with app.db.transaction() as session:
        due = await consult.due_to_close(session, now)
        for poll in due:
            assert poll.closes_at is not None
            poll.closed_at = poll.closes_at
            log.info("consultation %s closed at its closing time", poll.ref)
            if poll.asked_by != consult.FORGOTTEN:
                await outbox.enqueue(session, now=now, to_user=poll.asked_by, kind="dm",
                                     body=f"Your consultation {poll.ref} has closed at its "
                                          f"closing time. {prefix}consult results {poll.ref} "
                                          "shows the answers.",
                                     dedupe_key=f"consult-closed:{poll.ref}")
    if due:
        app.queued()
    return len(due)


# -- results -------------------------------------------------------------------------------


@commands.command("consult results",
                  summary="counts per option by district and network, a chart and a CSV "
                  "(coordinator)", roles=[Role.COORDINATOR],
                  params=[Param("poll", POLL, positional=True, ask="Which consultation?")])
async def show_results(ctx: Context, args: Args) -> None:
    poll = await _poll(ctx, args.poll)
    areas = ctx.app.areas
    votes = [results.Vote(option=a.option,
                          district=(areas.label(a.district)
                                    if a.district is not None and a.district in areas
                                    else "other"),
                          network=a.network, member=a.voter_key != consult.GROUP,
                          comment=a.comment)
             for a in await consult.answers(ctx.session, poll.id)]
    t = results.tally(poll.options, len(poll.group_ids), poll.members_may, votes)
    heading = f"{poll.ref} \"{poll.question}\" ({status_text(poll, ctx.app, ctx.now)})"
    ref = poll.ref
    entitled = await coordinators(ctx.app, ctx.session)

    async def finish(out: Outside) -> None:
        # Comments are people's words: shown in a DM or a room of coordinators only.
        if not out.room.is_direct and any(
                user != out.app.transport.user_id and user not in entitled
                for user in await out.room_members()):
            out.private = True
        # In a thread: the first results in a bot's life import the "<5" rule's module and
        # matplotlib (seconds on a busy machine), which must not stall other rooms.
        text, png, table = await out.thread(lambda: (results.render(t, heading),
                                                     results.chart_png(t, ref),
                                                     results.csv_bytes(t, ref)))
        out.reply(text)
        out.reply(f"{ref}: answers by district and network (under 5 shown as <5)",
                  attachment=Attachment(f"consult-{ref}.png", "image/png", png))
        out.reply(f"{ref}: the counts as a CSV file",
                  attachment=Attachment(f"consult-{ref}.csv", "text/csv", table))

    ctx.defer(finish)


def install(app: Host) -> None:
    async def run() -> None:
        await close_due(app, app.clock.now())

    app.add_job(Job("consult-close", IntervalTrigger(seconds=CLOSE_EVERY.total_seconds()), run))
