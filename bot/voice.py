"""The bot's own voice in rooms: few posts a day, none at night, nothing lost.

Group rooms are people's own chats. A post the bot makes on its own (a notice,
a reminder, a cross-post; never a reply to a command) goes out at the first
allowed moment: not between 21:00 and 08:00 local time, and only while the
room has had fewer than its cap (``Group.max_posts``, 3 for rooms without a
group) on that local day. A post over the cap is *held*: its outbox row is
parked (``not_before`` = :data:`HELD`, so the worker never sends it) and the
digest sweep folds every held post of a room into one message at 08:00 the
next day. Direct-message rooms are not capped.

Every own post should be queued through :func:`enqueue_own_post` (``Context.post``
does); a feature that calls ``storage.outbox.enqueue(own_post=True)`` itself
bypasses the cap.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import local_datetime
from storage import groups, outbox, rooms
from storage.models import OutboxMessage

if TYPE_CHECKING:
    from bot.host import Host

QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)
DEFAULT_MAX_POSTS = 3
# The not_before of a post folded into the next digest: far enough that no worker sends it.
HELD = datetime(9000, 1, 1, tzinfo=UTC)
# Where a held post records when its digest is due (the row is never sent itself).
DIGEST_AT = "org.grapevine.digest_at"
DIGEST_KIND = "digest"
ITEM_CHARS = 300


def allowed_from(moment: datetime, tz: ZoneInfo) -> datetime:
    """``moment``, or 08:00 local after it when it falls in the night (DST-correct)."""
    local = moment.astimezone(tz)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return moment
    day = local.date() + timedelta(days=1) if local.time() >= QUIET_FROM else local.date()
    return local_datetime(day, QUIET_UNTIL, tz).astimezone(UTC)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A local calendar day as a UTC half-open range (23 or 25 hours on DST days)."""
    start = local_datetime(day, time(0), tz).astimezone(UTC)
    end = local_datetime(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


def digest_time(day: date, tz: ZoneInfo) -> datetime:
    """When posts held on ``day`` are posted: the next day's first allowed moment."""
    return local_datetime(day + timedelta(days=1), QUIET_UNTIL, tz).astimezone(UTC)


async def max_posts(session: AsyncSession, room_id: str) -> int:
    group = await groups.by_room(session, room_id)
    if group is None or group.max_posts is None:
        return DEFAULT_MAX_POSTS
    return group.max_posts


async def posts_on(session: AsyncSession, room_id: str, day: date, tz: ZoneInfo) -> int:
    """Own posts going out in the room on a local day (sent or still to be sent)."""
    start, end = day_bounds(day, tz)
    return (await outbox.own_posts_since(session, room_id, start)
            - await outbox.own_posts_since(session, room_id, end))


async def _is_direct(session: AsyncSession, room_id: str) -> bool:
    known = await rooms.get(session, room_id)
    return known is not None and known.is_direct


async def schedule_own_post(
    session: AsyncSession, room_id: str, now: datetime, tz: ZoneInfo,
    *, not_before: datetime | None = None,
) -> datetime | None:
    """When an own post to ``room_id`` may go out, or None: over the day's cap, so held."""
    wanted = max(now, not_before) if not_before is not None else now
    if await _is_direct(session, room_id):
        return wanted
    when = allowed_from(wanted, tz)
    cap = await max_posts(session, room_id)
    if await posts_on(session, room_id, when.astimezone(tz).date(), tz) < cap:
        return when
    return None


async def enqueue_own_post(
    session: AsyncSession,
    *,
    now: datetime,
    tz: ZoneInfo,
    room_id: str,
    body: str,
    kind: str = "notice",
    html: str | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> OutboxMessage | None:
    """Queue a post the bot makes on its own; None if ``dedupe_key`` was queued before.

    A post over the room's cap is queued held (not counted as a post of its own);
    the digest sweep delivers it.
    """
    when = await schedule_own_post(session, room_id, now, tz, not_before=not_before)
    if when is not None:
        return await outbox.enqueue(
            session, now=now, room_id=room_id, body=body, kind=kind, html=html,
            dedupe_key=dedupe_key, own_post=True, not_before=when,
        )
    wanted = max(now, not_before) if not_before is not None else now
    day = allowed_from(wanted, tz).astimezone(tz).date()
    return await outbox.enqueue(
        session, now=now, room_id=room_id, body=body, kind=kind, html=html,
        dedupe_key=dedupe_key, own_post=False, not_before=HELD,
        extra={DIGEST_AT: digest_time(day, tz).isoformat()},
    )


async def held(session: AsyncSession, room_id: str | None = None) -> list[OutboxMessage]:
    """Posts waiting for a digest, oldest first."""
    query = select(OutboxMessage).where(
        OutboxMessage.not_before >= HELD,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        OutboxMessage.room_id.is_not(None),
    )
    if room_id is not None:
        query = query.where(OutboxMessage.room_id == room_id)
    return list(await session.scalars(query.order_by(OutboxMessage.id)))


def _due_at(row: OutboxMessage) -> datetime:
    stamp = (row.extra or {}).get(DIGEST_AT)
    return datetime.fromisoformat(stamp) if isinstance(stamp, str) else row.created_at


def _one_line(body: str) -> str:
    text = " · ".join(line.strip() for line in body.splitlines() if line.strip())
    return text if len(text) <= ITEM_CHARS else text[: ITEM_CHARS - 1] + "…"


def render_digest(bodies: list[str]) -> str:
    """One message for the posts a room did not get one by one."""
    noun = "post" if len(bodies) == 1 else "posts"
    lines = [f"Digest: {len(bodies)} {noun} held back to keep this room quiet."]
    lines += [f"- {_one_line(body)}" for body in bodies]
    return "\n".join(lines)


async def send_digests(app: Host, now: datetime) -> int:
    """Fold each room's held posts whose digest time has come into one post; rooms done.

    Idempotent and catch-up-safe: held rows are marked sent in the same
    transaction as their digest is queued, and the digest's dedupe key is
    derived from the rows it covers.
    """
    tz = app.settings.bot.tz
    done = 0
    async with app.db.transaction() as session:
        by_room: dict[str, list[OutboxMessage]] = defaultdict(list)
        for row in await held(session):
            if _due_at(row) <= now and row.room_id is not None:
                by_room[row.room_id].append(row)
        for room_id, rows in by_room.items():
            await outbox.enqueue(
                session, now=now, room_id=room_id, kind=DIGEST_KIND, own_post=True,
                body=render_digest([r.body for r in rows]),
                dedupe_key=f"voice-digest:{room_id}:{rows[-1].id}",
                not_before=allowed_from(now, tz),
            )
            # Delivered by the digest: marked sent, with no event of their own.
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.id for r in rows]))
                .values(sent_at=now)
            )
            done += 1
    if done:
        app.queued()
    return done
