"""Commands waiting for their sender's next message (a missing option, a choice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PendingPrompt


async def get(
    session: AsyncSession, room_id: str, user_id: str, now: datetime
) -> PendingPrompt | None:
    prompt = await session.get(PendingPrompt, (room_id, user_id))
    if prompt is not None and prompt.expires_at <= now:
        await session.delete(prompt)
        return None
    return prompt


async def waiting(session: AsyncSession) -> set[tuple[str, str]]:
    """Every (room, person) with a question open, expired or not (expiry is checked on use)."""
    rows = await session.execute(select(PendingPrompt.room_id, PendingPrompt.user_id))
    return {(room, user) for room, user in rows}


async def put(
    session: AsyncSession,
    room_id: str,
    user_id: str,
    command_line: str,
    waiting_for: dict[str, Any],
    expires_at: datetime,
) -> None:
    await clear(session, room_id, user_id)
    session.add(
        PendingPrompt(
            room_id=room_id,
            user_id=user_id,
            command_line=command_line,
            waiting_for=waiting_for,
            expires_at=expires_at,
        )
    )


async def clear(session: AsyncSession, room_id: str, user_id: str) -> bool:
    result = await session.execute(
        delete(PendingPrompt).where(
            PendingPrompt.room_id == room_id, PendingPrompt.user_id == user_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
