"""The bot keeping its voice down in group rooms: ``quiet=yes``, other bots, the digest.

Every message another Grapevine sends carries its outbox marker, so the bot never
answers one (two bots in a room must not talk each other into a loop). In a group
whose admins ran ``!group set quiet=yes``, the bot answers only the room's admins
there (members can still use it by direct message). The app asks :func:`may_answer`
before handling a command. Posts over a room's daily cap wait for the digest sweep
(see :mod:`bot.voice`), installed here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from bot import voice
from bot.commands.context import RoomContext, Sender
from bot.events import Incoming
from bot.runtime.outbox_worker import MARKER as OUTBOX_MARKER
from bot.scheduler import Job
from storage import groups

if TYPE_CHECKING:
    from bot.host import Host

DIGEST_SWEEP_EVERY = timedelta(minutes=5)


def may_answer(message: Incoming, room: RoomContext, sender: Sender,
               group: groups.Group | None) -> bool:
    """False where the bot should stay silent: another Grapevine's own words (its help
    lines start with the prefix, and two bots answering each other is a loop), or a
    non-admin's command in a quiet group's room. ``group`` is the room's registered
    group, which the router has read anyway (one query per command, not two)."""
    if OUTBOX_MARKER in message.content:
        return False
    if room.is_direct or sender.is_group_admin:
        return True
    return group is None or not group.quiet


def install(app: Host) -> None:
    async def sweep() -> None:
        await voice.send_digests(app, app.clock.now())

    app.add_job(Job("voice-digests",
                    IntervalTrigger(seconds=DIGEST_SWEEP_EVERY.total_seconds()), sweep))
