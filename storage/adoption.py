"""What the adoption report counts, read as plain rows: ids, areas, times; never text or people.

One read per table, all inside the caller's transaction, so the report is one
consistent picture of the database. The counting itself is the feature's
(``bot.features.adoption``), over these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import activity
from storage.collab import CollabRecord
from storage.flow import FlowEvent
from storage.funding import FundingDelivery
from storage.groups import Group
from storage.introductions import Introduction
from storage.models import KnownRoom
from storage.volunteer_models import VolunteerRequest


@dataclass(frozen=True)
class GroupRow:
    id: int
    area_code: str
    room_id: str | None
    network: str | None  # the room's bridged network; None on plain Matrix or with no room
    registered_at: datetime
    verified_at: datetime | None
    unregistered_at: datetime | None


@dataclass(frozen=True)
class Rows:
    groups: list[GroupRow]
    command_days: list[tuple[str, date, datetime]]  # room, local day, last command that day
    engagements: list[tuple[str, int, datetime]]  # room, notice, when (reply/reaction/forward)
    deliveries: list[tuple[str, int, datetime]]  # room, notice, sent
    introductions: list[tuple[int, datetime]]  # group asked, when
    filled: list[tuple[int, datetime]]  # group, shift start, of requests with every place taken
    collabs: list[tuple[tuple[int, ...], datetime]]  # groups, recorded


async def load(session: AsyncSession) -> Rows:
    networks = dict((await session.execute(
        select(KnownRoom.room_id, KnownRoom.network))).tuples().all())
    groups = [
        GroupRow(g.id, g.area_code, g.room_id, networks.get(g.room_id) if g.room_id else None,
                 g.registered_at, g.verified_at, g.unregistered_at)
        for g in await session.scalars(select(Group).order_by(Group.id))]
    engaged = await session.execute(
        select(FlowEvent.room_id, FlowEvent.notice_id, FlowEvent.at)
        .where(FlowEvent.notice_id.is_not(None)))
    sent = await session.execute(
        select(FundingDelivery.room_id, FundingDelivery.notice_id, FundingDelivery.sent_at)
        .where(FundingDelivery.sent_at.is_not(None)))
    intros = await session.execute(select(Introduction.to_group_id, Introduction.asked_at))
    filled = await session.execute(
        select(VolunteerRequest.group_id, VolunteerRequest.starts_at)
        .where(VolunteerRequest.cancelled_at.is_(None),
               VolunteerRequest.accepted >= VolunteerRequest.count))
    collabs = await session.scalars(
        select(CollabRecord).where(CollabRecord.removed_at.is_(None)))
    return Rows(
        groups=groups,
        command_days=await activity.days(session),
        engagements=[(r, int(n), at) for r, n, at in engaged.tuples() if n is not None],
        deliveries=[(r, n, at) for r, n, at in sent.tuples() if at is not None],
        introductions=list(intros.tuples()),
        filled=list(filled.tuples()),
        collabs=[(tuple(c.group_ids), c.recorded_at) for c in collabs],
    )
