"""The bot keeping its voice down in group rooms: ``quiet=yes`` and the daily digest.

In a group whose admins ran ``!group set quiet=yes``, the bot answers only the
room's admins there (members can still use it by direct message); the app asks
:func:`may_answer` before handling a command. Posts over a room's daily cap
wait for the digest sweep (see :mod:`bot.voice`), installed here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot import voice
from bot.commands.context import RoomContext, Sender
from bot.scheduler import Job
from storage import groups

if TYPE_CHECKING:
    from bot.app import Grapevine

DIGEST_SWEEP_EVERY = timedelta(minutes=5)


async def may_answer(
    app: Grapevine, session: AsyncSession, room: RoomContext, sender: Sender
) -> bool:
    """False for a non-admin's command in a quiet group's room: the bot stays silent."""
    if room.is_direct or sender.is_group_admin:
        return True
    group = await groups.by_room(session, room.room_id)
    return group is None or not group.quiet


def install(app: Grapevine) -> None:
    async def sweep() -> None:
        await voice.send_digests(app, app.clock.now())

    app.add_job(Job("voice-digests",
                    IntervalTrigger(seconds=DIGEST_SWEEP_EVERY.total_seconds()), sweep))
