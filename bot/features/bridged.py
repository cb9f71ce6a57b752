"""Bridged groups and groups offline: bridge detection, bots ignored, digests, sheets.

The bot works unchanged in WhatsApp, Telegram and Signal portals: ghosts are
people, bridge bots are ignored, and a room's network (from a believed
``m.bridge`` event) shapes what is sent there. Groups not on chat get an
email digest; anyone can print a locality's open funding as a PDF sheet.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, Param
from bot.commands.values import AreaValue
from bot.dm_reach import cannot_reach_text
from bot.events import StateChange
from bot.scheduler import Job
from bot.transport.base import TransportError
from bridges import email_digest, namespaces
from bridges.capabilities import ROOM_FEATURES
from bridges.detect import (
    BRIDGE_EVENT_TYPES,
    network_of_member,
    read_bridge_event,
    record_network,
)
from bridges.namespaces import Namespaces, RegistrationError
from bridges.sheet import area_sheet
from config.settings import ConfigError
from storage import bridges as bridge_rows
from storage import groups, outbox, rooms
from storage.outbox import Attachment, person_key

if TYPE_CHECKING:
    from bot.host import Host, StateFilter, StateHook

log = logging.getLogger(__name__)

REFUSALS_EVERY = timedelta(minutes=10)
REFUSALS_LOOKBACK = timedelta(days=1)
DIGEST_HOUR = 8
DM_CHECK_EVERY = timedelta(seconds=30)


def load_namespaces(app: Host) -> Namespaces:
    """The bridges whose registrations are in ``<data_dir>/bridges``; a bad file stops start-up."""
    files = namespaces.registration_files(app.settings.bot.data_dir)
    try:
        return namespaces.load(files, app.settings.matrix.server_name)
    except RegistrationError as exc:
        raise ConfigError([f"bridge registration {exc}"]) from None


def wants_state(app: Host, known: Namespaces) -> StateFilter:
    """Bridge events, bridge room features, and a ghost joining a room of unknown network."""

    def wants(change: StateChange) -> bool:
        if change.event_type in BRIDGE_EVENT_TYPES or change.event_type == ROOM_FEATURES:
            return True
        if change.event_type != "m.room.member" or change.content.get("membership") != "join":
            return False
        room = app.cached_room(change.room_id)
        unknown = room is None or room.network is None
        return unknown and network_of_member(change.state_key, known) is not None

    return wants


def state_hook(app: Host, known: Namespaces) -> StateHook:
    async def on_state(session: AsyncSession, change: StateChange) -> None:
        if change.event_type in BRIDGE_EVENT_TYPES:
            info = read_bridge_event(change.event_type, change.sender, change.content, known)
            if info is None:
                return
            if await record_network(session, change.room_id, info.network):
                app.forget_room_context(change.room_id)
                log.info("%s is bridged to %s", change.room_id, info.network)
            await bridge_rows.upsert(
                session, change.room_id, app.clock.now(), network=info.network,
                bridge_id=info.bridge_id, channel_name=info.channel_name,
            )
        elif change.event_type == "m.room.member":
            await _guess_from_member(session, change)
        elif change.event_type == ROOM_FEATURES and known.bridge_of(change.sender) is not None:
            await bridge_rows.upsert(session, change.room_id, app.clock.now(),
                                     features=dict(change.content))

    async def _guess_from_member(session: AsyncSession, change: StateChange) -> None:
        if change.content.get("membership") != "join":
            return
        network = network_of_member(change.state_key, known)
        if network is None or await bridge_rows.get(session, change.room_id) is not None:
            return  # not a bridge's user, or the room's bridge event already said
        room = await rooms.get(session, change.room_id)
        bridge = known.bridge_of(change.state_key)
        # Earlier versions named a room after the bridge's id ("heisenbridge"): a guess
        # this one can correct, unlike a network a believed bridge event named.
        stale = {None, bridge.id.lower()} if bridge is not None else {None}
        if room is not None and room.network in stale and room.network != network:
            room.network = network
            app.forget_room_context(change.room_id)

    return on_state


# -- announcement-only groups -----------------------------------------------------------


def cannot_post_text(group_ref: str, group_name: str) -> str:
    return (
        f"I can't post in the chat of {group_ref} {group_name}: it lets only admins send "
        "messages (a WhatsApp announcement-only group does this).\n"
        "Make me an admin there, or let everyone send messages, and notices reach it again."
    )


async def report_refusals(app: Host) -> int:
    """DM each registrant whose group's room refused the bot's messages; once a day a room."""
    now = app.clock.now()
    told = 0
    async with app.db.transaction() as session:
        refused = await bridge_rows.refused_rooms(session, now - REFUSALS_LOOKBACK)
        for room_id, at in refused.items():
            group = await groups.by_room(session, room_id)
            if group is None:
                continue
            day = _local_day(app, at)
            row = await outbox.enqueue(
                session, now=now, to_user=group.registered_by, kind="dm",
                body=cannot_post_text(group.ref, group.name),
                dedupe_key=f"cannot-post:{room_id}:{day}",
            )
            told += row is not None
    if told:
        app.queued()
    return told


def _local_day(app: Host, at: datetime) -> str:
    return at.astimezone(app.settings.bot.tz).date().isoformat()


# -- the notice sheet -------------------------------------------------------------------


@commands.command(
    "funding sheet",
    summary="a printable PDF of the funding open in an area, for noticeboards",
    params=[Param("area", AreaValue(), ask="Which area is the sheet for? (a place name)")],
)
async def sheet(ctx: Context, args: Args) -> None:
    made = await area_sheet(ctx.session, ctx.app.areas, args.area, ctx.now, ctx.tz)
    count = made.count
    await ctx.reply(
        f"Funding sheet for {made.area_name}: {count} open notice{'s' if count != 1 else ''}, "
        "ready to print.",
        attachment=Attachment(made.file_name, "application/pdf", made.data),
    )


# -- wiring -----------------------------------------------------------------------------


# -- direct messages that a bridge did not carry ------------------------------------------


async def check_dms(app: Host) -> int:
    """Settle DM invites to bridged people that have had their time; returns rooms told.

    An invite still not accepted means the bridge did not carry it: the person hears
    so in the room they asked in (once a day there), with what works instead.
    """
    now = app.clock.now()
    told = 0
    for user_id, room_id in app.dm_reach.due(now):
        async with app.db.transaction() as session:
            dm = await outbox.last_dm_room(session, user_id)
        if dm is None:
            continue  # not sent yet: looking must not make (and invite to) a new DM room
        try:
            member = await app.transport.get_state(dm, "m.room.member", user_id)
        except TransportError as exc:
            log.info("cannot see whether %s took the DM: %s", user_id, exc.errcode)
            continue
        accepted = member is not None and member.get("membership") == "join"
        # The watch ends with the room's notice, in one transaction: a crash before it
        # commits leaves the watch to be checked again after the restart.
        async with app.db.transaction() as session:
            kept = await app.dm_reach.settle(session, user_id, accepted, now)
            if accepted or not kept:
                continue
            row = await outbox.enqueue(
                session, now=now, room_id=room_id, kind="reply",
                body=cannot_reach_text(app.transport.user_id),
                dedupe_key=f"dm-not-taken:{room_id}:{person_key(user_id)}:{_local_day(app, now)}",
            )
        told += row is not None
    await app.dm_reach.expire(app.db, now)
    if told:
        app.queued()
    return told


def jobs(app: Host) -> list[Job]:
    async def digests() -> None:
        await email_digest.send_pending(app)

    async def refusals() -> None:
        await report_refusals(app)

    async def dms() -> None:
        await check_dms(app)

    tz = app.settings.bot.tz
    return [
        Job("email-digest", CronTrigger(hour=DIGEST_HOUR, minute=5, timezone=tz), digests),
        Job("bridges-refusals",
            IntervalTrigger(seconds=REFUSALS_EVERY.total_seconds()), refusals),
        Job("bridges-dm-reach", IntervalTrigger(seconds=DM_CHECK_EVERY.total_seconds()), dms),
    ]


def install(app: Host) -> None:
    known = load_namespaces(app)
    app.hooks.add_state(wants_state(app, known), state_hook(app, known))
    # Bridge bots relay nothing a person typed (remote people are ghosts); answering
    # them or counting their receipts would only make bots talk to bots.
    app.ignore_checks.append(known.is_bridge_bot)
    app.dm_reach.bridged = known.is_ghost
    app.dm_reach.never = known.never_takes_dms
    app.web_routes.extend(email_digest.routes(app))
    for job in jobs(app):
        app.add_job(job)
