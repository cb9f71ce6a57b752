"""Durable sends: written in the same transaction as the change that caused them."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import OutboxMessage, add_row

# The two lanes. A person waiting for an answer goes before anything the bot says on
# its own: after a mass join a thousand greetings are queued, and a reply behind them
# was answered minutes late (issue 20). ANSWERS: command replies, DMs, everything
# addressed to one person or answering one. POSTS: what the bot says to a room unasked.
ANSWERS = "answers"
POSTS = "posts"
LANES = (ANSWERS, POSTS)
# Kinds that are the bot's own posts even when not counted against a room's daily cap.
POST_KINDS = frozenset({"greeting", "notice", "digest", "reminder"})


def in_posts_lane() -> ColumnElement[bool]:
    """True for rows in the POSTS lane (a DM is an answer, whatever its kind)."""
    return OutboxMessage.to_user.is_(None) & (
        OutboxMessage.own_post.is_(True) | OutboxMessage.kind.in_(POST_KINDS))


def lane_of(row: OutboxMessage) -> str:
    """The lane of one row, as :func:`in_posts_lane` decides it in SQL."""
    own = row.to_user is None and (bool(row.own_post) or row.kind in POST_KINDS)
    return POSTS if own else ANSWERS


def _lane_filter(lane: str | None) -> list[ColumnElement[bool]]:
    if lane is None:
        return []
    if lane not in LANES:
        raise ValueError(f"no lane {lane!r}")
    return [in_posts_lane() if lane == POSTS else ~in_posts_lane()]


@dataclass(frozen=True)
class Attachment:
    name: str
    mime: str
    data: bytes


def person_key(user_id: str) -> str:
    """How a dedupe key names a person: a digest, never the id itself. A key stays as
    an empty stub long after the message's text and recipient go (retention), so it
    must say nothing about who; ``!privacy forget`` finds it by the same digest."""
    return "p" + hashlib.sha256(user_id.encode()).hexdigest()[:20]


def check_key(dedupe_key: str) -> None:
    # Only user ids carry "@" (rooms are "!", aliases "#", events "$").
    if "@" in dedupe_key:
        raise ValueError(f"dedupe key {dedupe_key!r} names a person: use person_key()")


_QUEUED = "grapevine.outbox.queued"
# A command's transaction that hands its replies straight to the sender puts here what
# decides, before each row is inserted, whether to lease it (bot.runtime.handoff).
_LEASER = "grapevine.outbox.leaser"

Leaser = Callable[[OutboxMessage], Awaitable[None]]


def lease_as_queued(session: AsyncSession, leaser: Leaser) -> None:
    """Have :func:`enqueue` pass every row to ``leaser`` before inserting it, for the
    rest of this transaction: a row leased then goes in with its lease (no UPDATE)."""
    session.info[_LEASER] = leaser


async def enqueue(
    session: AsyncSession,
    *,
    now: datetime,
    body: str,
    room_id: str | None = None,
    to_user: str | None = None,
    kind: str = "reply",
    html: str | None = None,
    extra: dict[str, Any] | None = None,
    attachment: Attachment | None = None,
    dedupe_key: str | None = None,
    own_post: bool = False,
    not_before: datetime | None = None,
    wait_for_join: datetime | None = None,
) -> OutboxMessage | None:
    """Queue one message; with ``dedupe_key``, a second queueing of the same key is a no-op.

    ``wait_for_join``: hold it (and what follows it in the room) until someone other
    than the bot joins the room, or until that moment (see :func:`release_joined`).
    """
    if (room_id is None) == (to_user is None):
        raise ValueError("give exactly one of room_id and to_user")
    if dedupe_key is not None:
        check_key(dedupe_key)
        existing = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return None
    row = OutboxMessage(
        room_id=room_id,
        to_user=to_user,
        kind=kind,
        body=body,
        html=html,
        extra=extra,
        file_name=attachment.name if attachment else None,
        file_mime=attachment.mime if attachment else None,
        file_data=attachment.data if attachment else None,
        dedupe_key=dedupe_key,
        own_post=own_post,
        created_at=now,
        not_before=not_before or now,
        join_wait_until=wait_for_join,
        attempts=0,
    )
    leaser = session.info.get(_LEASER)
    if leaser is not None:
        await leaser(row)  # before the insert: a row leased now is inserted leased
    await add_row(session, row)
    # Held here for the rest of the transaction: the session's identity map keeps rows
    # only weakly, and the command that queued this may hand it straight to the sender.
    session.info.setdefault(_QUEUED, []).append(row)
    return row


async def unsent_by_id(session: AsyncSession, ids: list[int]) -> list[OutboxMessage]:
    """Those of these rows not sent yet, oldest first (rows a command holds back)."""
    if not ids:
        return []
    return list(await session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_(ids), OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id)))


def queued_in(session: AsyncSession) -> list[OutboxMessage]:
    """The rows :func:`enqueue` added in this session, in the order they were queued."""
    return list(session.info.get(_QUEUED, ()))


def _goes_before(earlier: Any, later: Any) -> ColumnElement[bool]:
    """The one ordering rule, for the worker's pass and for a command's hand-off alike:
    ``earlier`` is an unfinished row that must go before ``later``.

    Every message to one person goes in the order it was queued: the first one opens
    their DM room and may be held there for their join, so whichever path reaches a
    later one first must not send it, nor make it the one that opens the room. In a
    room, a row held for a first join (or whose wait is over but which has not gone
    yet) goes before everything queued after it there.
    """
    return (earlier.id < later.id) & _holds_up(earlier, later.to_user, later.room_id)


def _holds_up(earlier: Any, to_user: Any, room_id: Any) -> ColumnElement[bool]:
    """:func:`_goes_before` but for the order: ``earlier`` is unfinished and holds up a
    message to ``to_user`` or in ``room_id`` (columns, or values of a row not yet in the
    table, for which None never matches, as NULL never equals in SQL)."""
    person = earlier.to_user == to_user if to_user is not None else false()
    room = ((earlier.room_id == room_id) & earlier.join_wait_until.is_not(None)
            if room_id is not None else false())
    return earlier.sent_at.is_(None) & earlier.failed_at.is_(None) & (person | room)


def _behind(not_due: Any = None) -> Any:
    """An earlier row goes before this one by :func:`_goes_before` (and, with
    ``not_due(earlier)``, may not go now: then neither may this one)."""
    earlier = aliased(OutboxMessage)
    return exists().where(_goes_before(earlier, OutboxMessage),
                          *(() if not_due is None else (not_due(earlier),)))


async def due(session: AsyncSession, now: datetime, limit: int = 50, *,
              lane: str | None = None) -> list[OutboxMessage]:
    """What may go out now, answers before posts (or only ``lane``'s), each lane in the
    order it was queued. A row goes after the rows :func:`_goes_before` puts ahead of
    it: with them in the same pass if they may go now too, else not yet."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            OutboxMessage.not_before <= now,
            or_(OutboxMessage.join_wait_until.is_(None), OutboxMessage.join_wait_until <= now),
            ~_behind(lambda earlier: (earlier.not_before > now) | (earlier.join_wait_until > now)),
            *_lane_filter(lane),
        )
        .order_by(case((in_posts_lane(), 1), else_=0), OutboxMessage.id)
        .limit(limit)
    )
    return list(rows)


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the next row may go: its not_before, or the end of its wait for a join."""
    wait = OutboxMessage.join_wait_until
    at = case((wait.is_not(None) & (wait > OutboxMessage.not_before), wait),
              else_=OutboxMessage.not_before)
    return await session.scalar(
        select(func.min(at)).where(
            OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
            # A row behind another goes after it, never sooner: without this the worker
            # would wake at once for a row it may not send, again and again.
            ~_behind(),
        )
    )


async def hold_for_join(session: AsyncSession, row: OutboxMessage, room_id: str,
                        until: datetime, now: datetime) -> None:
    """A message to a person whose DM room was just made: held there until they join.

    Everything else still queued for them goes to the same room and waits behind it.
    Waiting is not trying: the row keeps the attempt count it had before this try
    (``row.attempts``), and is due again the moment the join releases it, not at the
    end of a lease the command that queued it took (it would wait out that minute):
    due from when it was queued, like the rows behind it (:func:`wait_behind`).
    """
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
               (OutboxMessage.id == row.id) | (
                   (OutboxMessage.to_user == row.to_user) & OutboxMessage.room_id.is_(None)))
        .values(room_id=room_id)
        .execution_options(synchronize_session=False)
    )
    not_before = OutboxMessage.not_before
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == row.id)
        .values(join_wait_until=until, attempts=row.attempts,
                not_before=case((not_before > now, OutboxMessage.created_at),
                                else_=not_before))
        .execution_options(synchronize_session=False)
    )


async def waits_behind(session: AsyncSession, row: OutboxMessage) -> bool:
    """An earlier unfinished row goes before ``row`` (:func:`_goes_before`), as the
    database has them now: what a sender checks, holding the person's turn, just
    before it sends."""
    earlier = aliased(OutboxMessage)
    found = await session.scalar(
        select(earlier.id).where(OutboxMessage.id == row.id, _goes_before(earlier, OutboxMessage))
        .limit(1))
    return found is not None


# Built once, for a message to a person, in a room, or both: building the expression
# took a command's transaction longer than running it (every reply asks).
_WOULD_WAIT = {
    (to_user, room_id): select(OutboxMessage.id).where(_holds_up(
        OutboxMessage, bindparam("to_user") if to_user else None,
        bindparam("room_id") if room_id else None)).limit(1)
    for to_user in (False, True) for room_id in (False, True) if to_user or room_id
}


async def would_wait(session: AsyncSession, *, to_user: str | None,
                     room_id: str | None) -> bool:
    """:func:`waits_behind` for a message about to be queued: every row already in the
    table is earlier than it, so any unfinished one that holds it up counts."""
    if to_user is None and room_id is None:
        return False
    found = await session.scalar(_WOULD_WAIT[to_user is not None, room_id is not None],
                                 {"to_user": to_user, "room_id": room_id})
    return found is not None


async def wait_behind(session: AsyncSession, row: OutboxMessage) -> None:
    """A row handed to the worker that must go after an earlier one: back in the queue,
    untried and due from when it was queued, so a pass sends it right after that one."""
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == row.id)
        .values(attempts=row.attempts, not_before=row.created_at, attempted_at=None)
        .execution_options(synchronize_session=False)
    )


async def release_joined(session: AsyncSession, room_id: str) -> int:
    """Someone joined ``room_id``: what was held there for a first join may go now."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.room_id == room_id, OutboxMessage.join_wait_until.is_not(None),
               OutboxMessage.sent_at.is_(None))
        .values(join_wait_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def reclaim_leases(session: AsyncSession) -> int:
    """Rows a command leased to a worker that died before sending them, due again from
    the moment they were leased. Run at start, when this process holds the bot's lock,
    so every lease found is a dead process's: without this a reply waited out the rest
    of its lease (a minute) after a crash. A lease is the only way a row gets a future
    ``not_before`` after an attempt with no error (a failure records its error)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
               OutboxMessage.attempted_at.is_not(None), OutboxMessage.last_error.is_(None),
               OutboxMessage.not_before > OutboxMessage.attempted_at)
        .values(not_before=OutboxMessage.attempted_at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def mark_attempt(session: AsyncSession, message_id: int, now: datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(attempts=OutboxMessage.attempts + 1, attempted_at=now)
    )


async def mark_attempts(session: AsyncSession, message_ids: list[int], now: datetime) -> None:
    if message_ids:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids))
            .values(attempts=OutboxMessage.attempts + 1, attempted_at=now)
            # Rows already loaded keep the count from before: callers rely on it.
            .execution_options(synchronize_session=False)
        )


# A row whose body is text sealed with the notes key (bot/features/sealing.py): it is
# opened only in memory, by the outbox worker, as it is sent (mediation notes read back).
SEALED_KIND = "sealed"
async def restore_attempts(session: AsyncSession, attempts: dict[int, int]) -> None:
    """Put back the attempt counts of rows picked but never tried (their room stalled)."""
    by_count: dict[int, list[int]] = {}
    for message_id, count in attempts.items():
        by_count.setdefault(count, []).append(message_id)
    for count, ids in by_count.items():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(attempts=count)
            .execution_options(synchronize_session=False)
        )


# Kinds whose text is personal: once delivered, the bot keeps no copy of it.
PRIVATE_KINDS = frozenset({"dm", "private", SEALED_KIND})


async def mark_sent(
    session: AsyncSession, message_id: int, event_id: str, now: datetime, room_id: str
) -> None:
    # A direct message may carry a profile, DBS dates or notes: blanked as it is marked
    # sent, in the same statement (one round trip after every send).
    private = OutboxMessage.to_user.is_not(None) | OutboxMessage.kind.in_(PRIVATE_KINDS)
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(sent_at=now, event_id=event_id, room_id=room_id, last_error=None,
                body=case((private, ""), else_=OutboxMessage.body),
                html=case((private, null()), else_=OutboxMessage.html),
                file_data=case((private, null()), else_=OutboxMessage.file_data))
        .execution_options(synchronize_session=False)
    )


async def retry_later(
    session: AsyncSession, message_id: int, error: str, at: datetime, *, give_up: bool = False
) -> None:
    values: dict[str, Any] = {"last_error": error[:500], "not_before": at}
    if give_up:
        values["failed_at"] = at
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )


async def pending_count(session: AsyncSession) -> int:
    return sum((await pending_by_lane(session)).values())


async def pending_by_lane(session: AsyncSession) -> dict[str, int]:
    """Rows waiting to be sent in each lane (for !status)."""
    posts = case((in_posts_lane(), POSTS), else_=ANSWERS)
    counts = dict.fromkeys(LANES, 0)
    for lane, count in await session.execute(
        select(posts, func.count())
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
        .group_by(posts)
    ):
        counts[str(lane)] = int(count)
    return counts


async def own_posts_since(session: AsyncSession, room_id: str, since: datetime) -> int:
    """Posts the bot made on its own in a room since ``since`` (sent or due to be sent)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.room_id == room_id,
                OutboxMessage.own_post.is_(True),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.not_before >= since,
            )
        )
        or 0
    )


async def last_dm_room(session: AsyncSession, user_id: str) -> str | None:
    """The room the last direct message to ``user_id`` went to; None until one was sent."""
    return await session.scalar(
        select(OutboxMessage.room_id)
        .where(OutboxMessage.to_user == user_id, OutboxMessage.sent_at.is_not(None))
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
        .limit(1)
    )


def backoff(attempts: int, base: float = 2.0, cap: float = 600.0) -> timedelta:
    return timedelta(seconds=min(cap, base ** max(attempts, 1)))


async def expire(session: AsyncSession, *, blank_before: datetime, delete_before: datetime
                 ) -> tuple[int, int]:
    """Retention for finished rows (sent, or given up); returns (blanked, deleted).

    A row finished before ``blank_before`` loses its text, file, extra content
    (mentions name people) and recipient; one finished before ``delete_before``
    goes, unless a dedupe key stops a second send of the same thing: that one
    stays as an empty stub with its key, so "once, ever" still holds.
    """
    finished = func.coalesce(OutboxMessage.sent_at, OutboxMessage.failed_at)
    # Keys written before keys named people by digest (person_key) lose their meaning
    # with their text: the stub stays, so nothing is sent twice, without anyone's id.
    named = await session.scalars(select(OutboxMessage.id).where(
        finished < blank_before, OutboxMessage.dedupe_key.contains("@")))
    for message_id in named:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                              .values(dedupe_key=f"expired:{message_id}")
                              .execution_options(synchronize_session=False))
    blanked = await session.execute(
        update(OutboxMessage)
        .where(finished < blank_before, or_(
            OutboxMessage.body != "", OutboxMessage.html.is_not(None),
            OutboxMessage.extra.is_not(None), OutboxMessage.file_data.is_not(None),
            OutboxMessage.file_name.is_not(None), OutboxMessage.to_user.is_not(None)))
        # null(): a plain None would store JSON's null, which "IS NOT NULL" still sees.
        .values(body="", html=None, extra=null(), file_name=None, file_mime=None,
                file_data=None, to_user=None)
        .execution_options(synchronize_session=False))
    deleted = await session.execute(
        delete(OutboxMessage)
        .where(finished < delete_before, OutboxMessage.dedupe_key.is_(None))
        .execution_options(synchronize_session=False))
    return (int(blanked.rowcount or 0),  # type: ignore[attr-defined]
            int(deleted.rowcount or 0))  # type: ignore[attr-defined]
