"""The runtime's memory: named values (sync token, device) and handled event ids."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import upsert
from storage.models import BotState, HandledEvent

# bot_state key of a person's direct-message room with the bot: "dm:@user:server".
DIRECT_ROOM_KEY = "dm:"
# The sync position (/sync's next_batch) and when it was last moved forward.
SYNC_TOKEN_KEY = "next_batch"
SYNC_SAVED_AT_KEY = "next_batch_saved_at"
# bot_state key of the sentence !status shows about the device's cross-signing.
CROSS_SIGNING_KEY = "cross_signing"

# Every command's transaction claims its event, every sync batch saves the position.
_CLAIM = upsert(HandledEvent, ["event_id"])
_SAVE = upsert(BotState, ["key"], {"value": "excluded.value"})


async def remember_direct_room(session: AsyncSession, user_id: str, room_id: str) -> None:
    await set_value(session, DIRECT_ROOM_KEY + user_id, room_id)


async def get_value(session: AsyncSession, key: str) -> str | None:
    row = await session.get(BotState, key)
    return row.value if row else None


async def set_value(session: AsyncSession, key: str, value: str) -> None:
    row = await session.get(BotState, key)
    if row is None:
        session.add(BotState(key=key, value=value))
    else:
        row.value = value


async def delete_value(session: AsyncSession, key: str) -> None:
    await session.execute(delete(BotState).where(BotState.key == key))


async def claim(session: AsyncSession, event_id: str, room_id: str, at: datetime) -> bool:
    """Record the event as handled, in one statement; False if it already was (the
    check and the record a command's transaction needs, in a single round trip)."""
    result = await session.execute(
        _CLAIM, {"event_id": event_id, "room_id": room_id, "handled_at": at})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def unclaim(session: AsyncSession, event_id: str) -> None:
    """Take back a :func:`claim` (a command whose answer comes later records it then)."""
    await session.execute(delete(HandledEvent).where(HandledEvent.event_id == event_id))


async def is_handled(session: AsyncSession, event_id: str) -> bool:
    return await session.get(HandledEvent, event_id) is not None


async def mark_handled(session: AsyncSession, event_id: str, room_id: str, at: datetime) -> None:
    session.add(HandledEvent(event_id=event_id, room_id=room_id, handled_at=at))


async def handled_among(session: AsyncSession, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    rows = await session.scalars(
        select(HandledEvent.event_id).where(HandledEvent.event_id.in_(event_ids))
    )
    return set(rows)


async def save_sync_position(session: AsyncSession, token: str, now: datetime) -> None:
    """Move the sync position on, noting when: the handled-event sweep's horizon.
    One statement for both values (it runs after every sync batch)."""
    await session.execute(_SAVE, [{"key": SYNC_TOKEN_KEY, "value": token},
                                  {"key": SYNC_SAVED_AT_KEY, "value": now.isoformat()}])


async def sync_saved_at(session: AsyncSession) -> datetime | None:
    value = await get_value(session, SYNC_SAVED_AT_KEY)
    return datetime.fromisoformat(value) if value else None


async def forget_handled_before(session: AsyncSession, cutoff: datetime) -> int:
    """Old ids can go: the sync token already keeps those events from coming back."""
    result = await session.execute(delete(HandledEvent).where(HandledEvent.handled_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_handled(session: AsyncSession, margin: timedelta) -> int:
    """Forget handled-event ids the sync position makes unreachable; returns the rows gone.

    Every event handled before the stored position was saved came in a batch at or
    before that position, and neither /sync nor the gap fill (/messages back to the
    position) returns it again. ``margin`` keeps a safety strip behind it (a batch
    whose handling straddled the save, clocks that disagree a little). With no
    position saved yet, nothing is pruned.
    """
    saved = await sync_saved_at(session)
    if saved is None:
        return 0
    return await forget_handled_before(session, saved - margin)
