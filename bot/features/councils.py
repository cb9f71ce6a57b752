"""Parish councils as nodes: a locality room's topic names the council registered for it.

A parish council registers as a group of type parish-council for its locality
(``!group register type=parish-council area=...``). The locality's coordination
room then says whose room it is in its topic, and says so no longer once the
council leaves. The database is the truth: a sweep brings every locality room's
topic in line with the registered councils, so a topic missed in a crash, or a
room made after the council registered, is put right within a minute; group
commands also ask for a refresh as soon as they commit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import Job
from bot.transport.base import TransportError
from storage import groups, tree

if TYPE_CHECKING:
    from bot.commands.context import Context
    from bot.host import Host

log = logging.getLogger(__name__)

COUNCIL = "parish-council"
SWEEP_EVERY = timedelta(minutes=1)


def locality_topic(label: str, councils: Sequence[tuple[str, str]], prefix: str = "!") -> str:
    """The topic for a locality room given its councils as (ref, name), in id order."""
    if not councils:
        return (f"{label}: coordination room for the groups' representatives. No parish "
                f"council has registered yet ({prefix}group register type=parish-council).")
    named = " and ".join(f"{name} ({ref})" for ref, name in councils)
    return f"{label}: coordination room of {named}, with the groups' representatives."


def wanted_topic(label: str, councils: Sequence[tuple[str, str]], last_set: str | None,
                 prefix: str = "!") -> str | None:
    """The topic the room should get now, or None to leave it alone.

    A room that never had a council keeps whatever topic it has (the bot set none);
    one whose council left is told so rather than naming a council that is gone.
    """
    if not councils and last_set is None:
        return None
    topic = locality_topic(label, councils, prefix)
    return None if topic == last_set else topic


def councils_by_area(rows: Iterable[groups.Group]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for g in sorted(rows, key=lambda g: g.id):
        if g.type == COUNCIL:
            found[g.area_code].append((g.ref, g.name))
    return found


async def sync_topics(app: Host) -> int:
    """Set every locality room's topic that differs from what its councils say; rooms changed."""
    async with app.db.transaction() as session:
        councils = councils_by_area(await groups.active(session))
        due = []
        for row in (await tree.all_rooms(session)).values():
            if row.kind != "locality" or row.area_code not in app.areas:
                continue
            label = app.areas.label(row.area_code)
            topic = wanted_topic(label, councils.get(row.area_code, []), row.topic,
                                 app.settings.bot.prefix)
            if topic is not None:
                due.append((row.key, row.room_id, topic))
    changed = 0
    for key, room_id, topic in due:
        try:
            await app.transport.put_state(room_id, "m.room.topic", {"topic": topic})
        except TransportError as exc:
            log.info("cannot set the topic of %s yet: %s", room_id, exc.errcode)
            continue
        async with app.db.transaction() as session:
            await tree.set_topic(session, key, topic)
        log.info("locality room %s now names its council: %s", room_id, topic)
        changed += 1
    return changed


def refresh_after(ctx: Context) -> None:
    """Bring locality topics in line once this command's changes are committed."""
    app = ctx.app

    async def refresh() -> None:
        await sync_topics(app)

    app.after_commit(refresh)


def jobs(app: Host) -> list[Job]:
    async def sweep() -> None:
        await sync_topics(app)

    return [Job("council-topics", IntervalTrigger(seconds=SWEEP_EVERY.total_seconds()), sweep)]


def install(app: Host) -> None:
    for job in jobs(app):
        app.add_job(job)
