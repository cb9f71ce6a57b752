"""!mediation: a private case room for two or more groups, a written agreement, sealed notes.

Who sees a case: its mediator, the parties' representatives (joined members
with power 50+ in a party group's own room, checked live, so a new admin is
in and a former one is out) and coordinators. To anyone else a case does not
exist: the reply is word for word the one for a case number never used.

Session attendance is membership, not speech: everyone joined to the case room
when the session starts or ends (the bot records nothing about who says what in
a case room). Notes are taken only in a direct message with the bot, sealed
with the configured key, and never posted anywhere but back to that DM
(``mediation_notes``). The sweeps are in ``mediation_sweeps``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import Choice, DateValue, ListOf, Person, Ref, Text
from bot.features import agreement
from bot.features.case_rooms import case_rooms
from bot.features.mediation_sweeps import jobs
from bot.features.mediation_sweeps import purge_notes as purge_notes
from bot.features.mediation_sweeps import remind as remind
from bot.features.representatives import Reps
from storage import groups
from storage import mediation as cases
from storage.outbox import Attachment

if TYPE_CHECKING:
    from bot.host import Host

CASE = Param("case", Ref("M"), positional=True)


def not_found(ctx: Context, number: int) -> str:
    """The one reply for "no such case" and "not yours to see": they must not differ."""
    return f"M{number} not found. {ctx.prefix}mediation lists the cases you can see."


# -- who may see a case ------------------------------------------------------------------


async def may_see(ctx: Context, case: cases.Case, reps: Reps | None = None) -> bool:
    user = ctx.sender.user_id
    if ctx.sender.is_coordinator or user == case.mediator:
        return True
    reps = reps or Reps(ctx.app, ctx.session)
    return bool(await reps.groups_of(case.id, user))


async def visible_case(ctx: Context, number: int) -> cases.Case:
    case = await cases.get(ctx.session, number)
    if case is None or not await may_see(ctx, case):
        raise CommandError(not_found(ctx, number))
    return case


async def case_here(ctx: Context, *, open_only: bool = True) -> cases.Case:
    """The case whose room this is, if the sender may see it."""
    case = await cases.by_room(ctx.session, ctx.room.room_id)
    if case is None:
        raise CommandError(
            f"This isn't a mediation case room. Run it in the case's own room "
            f"({ctx.prefix}mediation lists your cases)."
        )
    if not await may_see(ctx, case):
        raise CommandError(not_found(ctx, case.id))
    if open_only and not case.is_open:
        raise CommandError(
            f"{case.ref} is closed ({case.outcome}), so its record can't change now. "
            f"{ctx.prefix}mediation summary shows the agreement."
        )
    return case


async def in_private_dm(ctx: Context) -> bool:
    """A direct message with the bot: not a case room or group room that merely looks like one."""
    if not ctx.room.is_direct:
        return False
    if await cases.is_case_room(ctx.session, ctx.room.room_id):
        return False
    return await groups.by_room(ctx.session, ctx.room.room_id) is None


async def answer_privately(ctx: Context, body: str, attachment: Attachment | None = None) -> None:
    """Case details outside the case room go only to the asker's DM, whatever the room."""
    if await in_private_dm(ctx):
        await ctx.reply(body, attachment=attachment, private=False)
        return
    await ctx.answer_by_dm(body, kind="reply", attachment=attachment, shared_room=True)


def _runs_case(ctx: Context, case: cases.Case, what: str) -> None:
    if ctx.sender.user_id != case.mediator and not ctx.sender.is_coordinator:
        raise CommandError(f"Only {case.ref}'s mediator ({case.mediator}) or a coordinator "
                           f"can {what}.")


# -- opening a case ----------------------------------------------------------------------


@commands.command(
    "mediation open",
    summary="open a mediation case between groups, with a private room",
    params=[Param("title", Text(max_length=120)),
            Param("groups", ListOf(Ref("G"), max_items=6),
                  ask="Which groups? (G3,G7: the groups' ids)"),
            Param("mediator", Person(), ask="Who mediates? (their Matrix id)")],
    roles=[Role.COORDINATOR], where=Where.DM, personal=True,
)
async def open_case(ctx: Context, args: Args) -> None:
    group_ids: list[int] = list(args.groups)
    if len(group_ids) < 2:
        raise CommandError("A case needs at least two groups: groups=G3,G7.")
    bot = ctx.app.transport.user_id
    if args.mediator == bot:
        raise CommandError("I can't mediate; name a person as mediator=.")
    reps = Reps(ctx.app, ctx.session)
    parties: list[tuple[int, str]] = []
    invite: set[str] = {args.mediator}
    for number in group_ids:
        group = await groups.by_id(ctx.session, number)
        if group is None:
            raise CommandError(f"There is no group G{number}; nothing was opened.")
        if group.room_id is None:
            raise CommandError(f"G{number} ({group.name}) has no chat room, so I can't find "
                               "its admins to invite; nothing was opened.")
        admins = await reps.of(number)
        if not admins:
            raise CommandError(f"G{number} ({group.name}) has no admin (power 50+) in its room "
                               "that I can invite; nothing was opened.")
        parties.append((number, group.name))
        invite |= admins
    key = hashlib.sha256(f"case:{ctx.message.event_id}".encode()).hexdigest()[:24]
    case = await cases.open_case(ctx.session, title=args.title, mediator=args.mediator,
                                 opened_by=ctx.sender.user_id, at=ctx.now, parties=parties,
                                 room_key=key)
    case.to_invite = sorted(invite)
    # The room is made once this transaction has committed (network I/O never holds it).
    case_rooms(ctx.app).expect(case.id)
    names = [f"{name} (G{number})" for number, name in parties]
    await answer_privately(
        ctx,
        f"{case.ref} opened: {args.title}. Parties: {', '.join(names)}.\n"
        f"I'm making its private room now and will invite {', '.join(case.to_invite)}; "
        "I'll tell you here when it's ready."
    )


def install(app: Host) -> None:
    worker = case_rooms(app)
    app.on_queued(worker.wake)
    app.closers.append(worker.close)  # no room-making pass outlives the app
    for job in jobs(app):
        app.add_job(job)  # ignored where nothing is scheduled (shell, fast tests)


# -- listing -----------------------------------------------------------------------------


@commands.command("mediation", summary="the mediation cases you can see", where=Where.DM)
async def list_cases(ctx: Context, args: Args) -> None:
    reps = Reps(ctx.app, ctx.session)
    lines = []
    for case in await cases.all_cases(ctx.session):
        if not await may_see(ctx, case, reps):
            continue
        state = "open" if case.is_open else f"closed, {case.outcome}"
        if case.room_id is None:
            state += ", room not made yet"
        elif case.is_open and case.pending and case.invite_retry_at is not None:
            at = case.invite_retry_at.astimezone(ctx.tz)
            state += f", not invited yet: {', '.join(case.pending)} (next try {at:%H:%M})"
        lines.append(f"{case.ref} {case.title} ({state})")
    if not lines:
        await answer_privately(ctx, "There are no mediation cases you can see.")
        return
    if len(lines) > 12:  # the newest; older ones by number with summary M<n>
        lines = [f"{len(lines) - 11} older cases not shown.", *lines[-11:]]
    await answer_privately(ctx, "\n".join(lines))


# -- in the case room --------------------------------------------------------------------


async def _present(ctx: Context) -> set[str]:
    members = await ctx.room_members()
    return {u for u in members if u != ctx.app.transport.user_id}


def hm(ctx: Context, moment: datetime) -> str:
    return f"{moment.astimezone(ctx.tz):%H:%M}"


@commands.command("mediation session", summary="start or end a mediation session",
                  params=[Param("what", Choice(("start", "end")), positional=True)])
async def session_command(ctx: Context, args: Args) -> None:
    case = await case_here(ctx)
    _runs_case(ctx, case, f"{args.what} a session")
    running = await cases.running_session(ctx.session, case.id)
    present = await _present(ctx)
    if args.what == "start":
        if running is not None:
            raise CommandError(f"Session {running.number} has been running since "
                               f"{hm(ctx, running.started_at)}; end it first with "
                               f"{ctx.prefix}mediation session end.")
        row = await cases.start_session(ctx.session, case.id, ctx.sender.user_id, ctx.now,
                                        sorted(present))
        await ctx.reply(f"Session {row.number} started at {hm(ctx, ctx.now)}. "
                        f"Present: {', '.join(row.attendees)}.")
        return
    if running is None:
        raise CommandError(f"No session is running; start one with "
                           f"{ctx.prefix}mediation session start.")
    running.ended_at = ctx.now
    running.attendees = sorted(set(running.attendees) | present)
    minutes = int((ctx.now - running.started_at).total_seconds() // 60)
    await ctx.reply(f"Session {running.number} ended after {minutes // 60}h {minutes % 60:02d}m. "
                    f"Attended: {', '.join(running.attendees)}.")


def _text(args: Args) -> str:
    """The quoted text, plus any unquoted words a phone user typed after it."""
    text = " ".join(part for part in (args.text, args.rest) if part)
    if len(text) > 500:
        raise CommandError(f"That's {len(text)} characters; keep it under 500.")
    return str(text)


@commands.command("mediation agree", summary="propose a shared norm or value (N<k>)",
                  params=[Param("text", Text(max_length=500), positional=True,
                                ask="What norm or value do you propose? (in quotes)")],
                  rest="more words")
async def agree(ctx: Context, args: Args) -> None:
    case = await case_here(ctx)
    norm = await cases.add_norm(ctx.session, case.id, _text(args), ctx.sender.user_id, ctx.now)
    await ctx.reply(f"{norm.ref} proposed: {norm.text}\nEach group's admin confirms it with "
                    f"{ctx.prefix}mediation confirm {norm.ref}.")


@commands.command("mediation confirm", summary="confirm a norm for your group",
                  params=[Param("norm", Ref("N"), positional=True)])
async def confirm(ctx: Context, args: Args) -> None:
    case = await case_here(ctx)
    norm = await cases.norm(ctx.session, case.id, args.norm)
    if norm is None:
        raise CommandError(f"{case.ref} has no N{args.norm}; {ctx.prefix}mediation summary "
                           "lists its norms.")
    reps = Reps(ctx.app, ctx.session)
    mine = await reps.groups_of(case.id, ctx.sender.user_id)
    parties = await cases.parties(ctx.session, case.id)
    if not mine:
        names = " or ".join(f"G{p.group_id}" for p in parties)
        raise CommandError(f"Only an admin of {names}'s own room can confirm for that group.")
    confirmed = [p for p in mine
                 if await cases.confirm(ctx.session, norm.id, p.group_id, ctx.sender.user_id,
                                        ctx.now)]
    if not confirmed:
        raise CommandError(f"{norm.ref} was already confirmed for "
                           f"{', '.join(p.group_name for p in mine)}; nothing changed.")
    done = {c.group_id for c in await cases.confirmations(ctx.session, case.id)
            if c.norm_id == norm.id}
    waiting = [f"{p.group_name} (G{p.group_id})" for p in parties if p.group_id not in done]
    groups_text = ", ".join(f"{p.group_name} (G{p.group_id})" for p in confirmed)
    tail = (f"Still waiting for: {', '.join(waiting)}." if waiting
            else f"{norm.ref} is now agreed by all parties.")
    await ctx.reply(f"{norm.ref} confirmed for {groups_text} by {ctx.sender.user_id} "
                    f"at {hm(ctx, ctx.now)}. {tail}")


@commands.command("mediation action", summary="record an action with an owner and a due date",
                  params=[Param("person", Person(), positional=True),
                          Param("text", Text(max_length=500), positional=True,
                                ask="What will they do? (in quotes)"),
                          Param("due", DateValue(), ask="By when? (a date: 5 Dec, fri, +7d)")],
                  rest="more words")
async def action(ctx: Context, args: Args) -> None:
    case = await case_here(ctx)
    if args.due < ctx.today:
        raise CommandError(f"due={args.due.isoformat()} is in the past; give a date from today on.")
    row = await cases.add_action(ctx.session, case.id, args.person, _text(args), args.due,
                                 ctx.sender.user_id, ctx.now)
    await ctx.reply(f"{row.ref}: {row.owner} will {row.text} (due {agreement.day(row.due, ctx.tz)}"
                    f"). I'll remind them the day before. Mark it with "
                    f"{ctx.prefix}mediation done {row.ref}.")


@commands.command("mediation done", summary="mark an action done",
                  params=[Param("action", Ref("A"), positional=True)])
async def done(ctx: Context, args: Args) -> None:
    case = await case_here(ctx, open_only=False)
    row = await cases.action(ctx.session, case.id, args.action)
    if row is None:
        raise CommandError(f"{case.ref} has no A{args.action}; {ctx.prefix}mediation summary "
                           "lists its actions.")
    user = ctx.sender.user_id
    if user not in {row.owner, case.mediator} and not ctx.sender.is_coordinator:
        raise CommandError(f"Only {row.owner} (its owner), the mediator or a coordinator can "
                           f"mark {row.ref} done.")
    if row.done_at is not None:
        raise CommandError(f"{row.ref} was already marked done on "
                           f"{agreement.day(row.done_at, ctx.tz)}; nothing changed.")
    row.done_at = ctx.now
    row.done_by = user
    await ctx.reply(f"{row.ref} done: {row.text}.")


async def view_of(session: AsyncSession, case: cases.Case) -> agreement.AgreementView:
    parties = await cases.parties(session, case.id)
    names = {p.group_id: f"{p.group_name} (G{p.group_id})" for p in parties}
    by_norm: dict[int, list[cases.Confirmation]] = {}
    for c in await cases.confirmations(session, case.id):
        by_norm.setdefault(c.norm_id, []).append(c)
    norms = tuple(
        agreement.NormView(
            ref=n.ref, text=n.text,
            confirmed=tuple(agreement.Confirmed(names.get(c.group_id, f"G{c.group_id}"),
                                                c.user_id, c.confirmed_at)
                            for c in by_norm.get(n.id, [])),
            waiting_for=tuple(names[p.group_id] for p in parties
                              if p.group_id not in {c.group_id for c in by_norm.get(n.id, [])}),
        )
        for n in await cases.norms(session, case.id)
    )
    return agreement.AgreementView(
        ref=case.ref, title=case.title, parties=tuple(names.values()), mediator=case.mediator,
        opened_at=case.opened_at, closed_at=case.closed_at, outcome=case.outcome,
        sessions=tuple(agreement.SessionView(s.number, s.started_at, s.ended_at,
                                             tuple(s.attendees))
                       for s in await cases.sessions(session, case.id)),
        norms=norms,
        actions=tuple(agreement.ActionView(a.ref, a.owner, a.text, a.due, a.done_at)
                      for a in await cases.actions(session, case.id)),
    )


@commands.command("mediation summary", summary="the written agreement so far, with files",
                  params=[Param("case", Ref("M"), positional=True, required=False)])
async def summary(ctx: Context, args: Args) -> None:
    if args.case is not None:
        case = await visible_case(ctx, args.case)
    else:
        case = await case_here(ctx, open_only=False)
    view = await view_of(ctx.session, case)
    stem = f"mediation-{case.ref}-agreement"
    files = [
        Attachment(f"{stem}.md", "text/markdown",
                   agreement.markdown(view, ctx.tz).encode("utf-8")),
        Attachment(f"{stem}.pdf", "application/pdf", agreement.pdf(view, ctx.tz)),
    ]
    text = agreement.summary_text(view, ctx.tz)
    if case.room_id == ctx.room.room_id:
        await ctx.reply(text)
        for file in files:
            await ctx.reply(file.name, attachment=file)
        return
    # Outside its own room the agreement goes only to the asker.
    await answer_privately(ctx, text)
    for file in files:
        await answer_privately(ctx, file.name, file)


@commands.command("mediation close", summary="close the case with its outcome",
                  params=[Param("outcome", Choice(cases.OUTCOMES),
                                ask="What was the outcome? (agreement|no-agreement|referred)")])
async def close(ctx: Context, args: Args) -> None:
    case = await case_here(ctx)
    _runs_case(ctx, case, "close the case")
    running = await cases.running_session(ctx.session, case.id)
    if running is not None:
        running.ended_at = ctx.now
        running.attendees = sorted(set(running.attendees) | await _present(ctx))
    case.outcome = args.outcome
    case.closed_at = ctx.now
    case.closed_by = ctx.sender.user_id
    days = ctx.app.settings.privacy.notes_retention_days
    purge_day = agreement.day(ctx.now + timedelta(days=days), ctx.tz)
    await ctx.reply(
        f"{case.ref} closed: {args.outcome}. The agreement, sessions and actions are kept "
        f"({ctx.prefix}mediation summary); the mediator's notes will be deleted on {purge_day}."
    )
