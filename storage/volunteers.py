"""The volunteer pool: profiles, requests (V<n>), offers (O<n>) and hours.

DBS data is metadata only (level as an ordered int, workforce, check and
re-check dates, Update Service consent); certificate contents are never stored.
Matching one request against 10^5 profiles is one indexed query: every profile
is listed in the grid cells its travel circle touches (``volunteer_reach``), so
a request looks up its own cell (``storage.volunteer_index``) and ``match`` runs
the rules over it in one statement. The rules are not stated here: they are
``bot.features.matching``'s, in Python and in the SQL that mirrors it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.groups import Group

# The tables and the index live beside this module; callers keep using them from here.
from storage.models import add_row
from storage.refs import by_number
from storage.volunteer_index import (  # noqa: F401
    all_candidates,
    candidate_for,
    cells_within,
    mark_offered,
    match,
)
from storage.volunteer_models import (  # noqa: F401
    ACCEPTED,
    CANCELLED,
    CLOSED,
    DECLINED,
    EXPIRED,
    FORGOTTEN,
    LIVE,
    OFFERED,
    OPEN,
    WAITLISTED,
    WITHDRAWN,
    Volunteer,
    VolunteerGroup,
    VolunteerHours,
    VolunteerOffer,
    VolunteerReach,
    VolunteerRequest,
)

# -- profiles ---------------------------------------------------------------------------


async def profile(session: AsyncSession, user_id: str) -> Volunteer | None:
    return await session.scalar(select(Volunteer).where(Volunteer.user_id == user_id))


async def save_profile(session: AsyncSession, volunteer: Volunteer) -> None:
    """Insert or update, and rewrite the volunteer's rows in the reach index."""
    await add_row(session, volunteer)
    await session.execute(delete(VolunteerReach).where(VolunteerReach.volunteer_id == volunteer.id))
    open_to_all = await _open_to_all(session, volunteer)
    v = volunteer
    session.add_all(
        VolunteerReach(cell=cell, volunteer_id=v.id, slots=v.slots, dbs_level=v.dbs_level,
                       dbs_recheck=v.dbs_recheck, lat=v.lat, lon=v.lon, radius_km=v.radius_km,
                       paused=v.paused, paused_until=v.paused_until, skill_mask=v.skill_mask,
                       last_offered_at=v.last_offered_at, open_to_all=open_to_all)
        for cell in cells_within(v.lat, v.lon, v.radius_km)
    )
    await session.flush()


async def _open_to_all(session: AsyncSession, volunteer: Volunteer) -> bool:
    if not volunteer.share:
        return False
    rows = (await session.execute(
        select(Group.share_volunteers)
        .join(VolunteerGroup, VolunteerGroup.group_id == Group.id)
        .where(VolunteerGroup.volunteer_id == volunteer.id, Group.unregistered_at.is_(None))
    )).scalars().all()
    return not rows or any(rows)


async def refresh_sharing(session: AsyncSession, group_id: int) -> None:
    """After a group's ``share_volunteers`` changed: recompute its volunteers' index rows."""
    members = await session.scalars(
        select(Volunteer).join(VolunteerGroup, VolunteerGroup.volunteer_id == Volunteer.id)
        .where(VolunteerGroup.group_id == group_id))
    for v in list(members):
        await session.execute(update(VolunteerReach)
                              .where(VolunteerReach.volunteer_id == v.id)
                              .values(open_to_all=await _open_to_all(session, v)))


async def group_ids(session: AsyncSession, volunteer_id: int) -> list[int]:
    return list(await session.scalars(
        select(VolunteerGroup.group_id).where(VolunteerGroup.volunteer_id == volunteer_id)
        .order_by(VolunteerGroup.group_id)
    ))


async def add_group(session: AsyncSession, volunteer: Volunteer, group_id: int) -> None:
    if group_id not in await group_ids(session, volunteer.id):
        session.add(VolunteerGroup(volunteer_id=volunteer.id, group_id=group_id))
        await session.flush()
        await save_profile(session, volunteer)


async def delete_profile(session: AsyncSession, volunteer: Volunteer) -> None:
    await session.execute(delete(VolunteerReach).where(VolunteerReach.volunteer_id == volunteer.id))
    await session.execute(delete(VolunteerGroup).where(VolunteerGroup.volunteer_id == volunteer.id))
    await session.delete(volunteer)
    await session.flush()


# -- requests and offers ----------------------------------------------------------------


async def request(session: AsyncSession, request_id: int, *, lock: bool = False
                  ) -> VolunteerRequest | None:
    """With ``lock``, the row is held (SELECT ... FOR UPDATE) until the transaction ends.

    SQLite ignores FOR UPDATE, but every transaction there starts with BEGIN
    IMMEDIATE, so writers are already one at a time.
    """
    query = select(VolunteerRequest).where(VolunteerRequest.id == request_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def requests_of(session: AsyncSession, group_id: int, since: datetime
                      ) -> list[VolunteerRequest]:
    return list(await session.scalars(
        select(VolunteerRequest)
        .where(VolunteerRequest.group_id == group_id, VolunteerRequest.ends_at >= since)
        .order_by(VolunteerRequest.starts_at, VolunteerRequest.id)
    ))


async def open_requests(session: AsyncSession, now: datetime) -> list[VolunteerRequest]:
    return list(await session.scalars(
        select(VolunteerRequest)
        .where(VolunteerRequest.status == OPEN, VolunteerRequest.starts_at > now)
        .order_by(VolunteerRequest.starts_at, VolunteerRequest.id)
    ))


async def requests_made_since(session: AsyncSession, user_id: str,
                              since: datetime) -> list[datetime]:
    """When ``user_id`` made each of their requests since ``since`` (for the daily limit)."""
    return list(await session.scalars(
        select(VolunteerRequest.created_at)
        .where(VolunteerRequest.created_by == user_id, VolunteerRequest.created_at >= since)
    ))


async def offer(session: AsyncSession, offer_id: int) -> VolunteerOffer | None:
    return await by_number(session, VolunteerOffer, offer_id)


async def offer_for(session: AsyncSession, request_id: int, user_id: str
                    ) -> VolunteerOffer | None:
    return await session.scalar(select(VolunteerOffer).where(
        VolunteerOffer.request_id == request_id, VolunteerOffer.user_id == user_id))


async def offers_of(session: AsyncSession, request_id: int,
                    statuses: tuple[str, ...] = LIVE) -> list[VolunteerOffer]:
    return list(await session.scalars(
        select(VolunteerOffer)
        .where(VolunteerOffer.request_id == request_id, VolunteerOffer.status.in_(statuses))
        .order_by(VolunteerOffer.answered_at, VolunteerOffer.id)
    ))


async def offers_for_user(session: AsyncSession, user_id: str) -> list[VolunteerOffer]:
    """The person's live offers and places."""
    return list(await session.scalars(
        select(VolunteerOffer)
        .where(VolunteerOffer.user_id == user_id, VolunteerOffer.status.in_(LIVE))
        .order_by(VolunteerOffer.id)
    ))


async def offered_users(session: AsyncSession, request_id: int) -> set[str]:
    return set(await session.scalars(
        select(VolunteerOffer.user_id).where(VolunteerOffer.request_id == request_id)))


@dataclass(frozen=True)
class Fill:
    accepted: int
    waitlisted: int
    waiting: int


async def fill(session: AsyncSession, request_id: int) -> Fill:
    counts = dict((await session.execute(
        select(VolunteerOffer.status, func.count())
        .where(VolunteerOffer.request_id == request_id)
        .group_by(VolunteerOffer.status)
    )).tuples().all())
    return Fill(counts.get(ACCEPTED, 0), counts.get(WAITLISTED, 0), counts.get(OFFERED, 0))


async def take_place(session: AsyncSession, offer: VolunteerOffer, now: datetime) -> str:
    """Accept: a place if one is free, else the waitlist. Safe under concurrent accepts.

    The place is taken by a conditional UPDATE (``accepted < count``) on the
    request row: on PostgreSQL the row lock makes a concurrent one wait and
    re-check; on SQLite writers are serialised. So exactly ``count`` succeed.
    """
    taken = await session.execute(
        update(VolunteerRequest)
        .where(VolunteerRequest.id == offer.request_id,
               VolunteerRequest.accepted < VolunteerRequest.count)
        .values(accepted=VolunteerRequest.accepted + 1)
        .execution_options(synchronize_session=False)
    )
    offer.status = ACCEPTED if taken.rowcount == 1 else WAITLISTED  # type: ignore[attr-defined]
    offer.answered_at = now
    await session.flush()
    return offer.status


async def give_up_place(session: AsyncSession, offer: VolunteerOffer, status: str,
                        now: datetime) -> VolunteerOffer | None:
    """Leave a request; a freed place goes to the first on the waitlist (returned)."""
    held = offer.status == ACCEPTED
    await request(session, offer.request_id, lock=True)
    offer.status = status
    offer.answered_at = now
    await session.flush()
    if not held:
        return None
    nxt = await session.scalar(
        select(VolunteerOffer)
        .where(VolunteerOffer.request_id == offer.request_id,
               VolunteerOffer.status == WAITLISTED)
        .order_by(VolunteerOffer.answered_at, VolunteerOffer.id)
        .limit(1)
        .with_for_update()
    )
    if nxt is None:
        await session.execute(
            update(VolunteerRequest).where(VolunteerRequest.id == offer.request_id)
            .values(accepted=VolunteerRequest.accepted - 1)
            .execution_options(synchronize_session=False)
        )
        return None
    nxt.status = ACCEPTED
    nxt.promoted_at = now
    await session.flush()
    return nxt


async def expire_offers(session: AsyncSession, now: datetime) -> list[VolunteerOffer]:
    due = list(await session.scalars(
        select(VolunteerOffer)
        .where(VolunteerOffer.status == OFFERED, VolunteerOffer.expires_at <= now)
        .order_by(VolunteerOffer.id)
    ))
    for row in due:
        row.status = EXPIRED
    await session.flush()
    return due


# -- hours ------------------------------------------------------------------------------


async def record_hours(session: AsyncSession, req: VolunteerRequest, user_id: str,
                       hours: float, by: str, now: datetime, worked_on: date) -> None:
    row = await session.scalar(select(VolunteerHours).where(
        VolunteerHours.request_id == req.id, VolunteerHours.user_id == user_id))
    if row is None:
        row = VolunteerHours(request_id=req.id, user_id=user_id, group_id=req.group_id,
                             worked_on=worked_on, hours=hours, confirmed_by=by,
                             confirmed_at=now)
        session.add(row)
    else:
        row.hours, row.confirmed_by, row.confirmed_at = hours, by, now
    await session.flush()


async def hours_in_year(session: AsyncSession, user_id: str, year: int
                        ) -> list[tuple[str, float, int]]:
    """(group name, hours, shifts) for the year, most hours first."""
    rows = await session.execute(
        select(Group.name, func.sum(VolunteerHours.hours), func.count())
        .join(Group, Group.id == VolunteerHours.group_id)
        .where(VolunteerHours.user_id == user_id,
               VolunteerHours.worked_on >= date(year, 1, 1),
               VolunteerHours.worked_on <= date(year, 12, 31))
        .group_by(Group.name)
        .order_by(func.sum(VolunteerHours.hours).desc(), Group.name)
    )
    return [(name, float(total), int(n)) for name, total, n in rows]


# -- reminders --------------------------------------------------------------------------


async def accepted_starting(session: AsyncSession, after: datetime, before: datetime
                            ) -> list[tuple[VolunteerOffer, VolunteerRequest]]:
    rows = await session.execute(
        select(VolunteerOffer, VolunteerRequest)
        .join(VolunteerRequest, VolunteerRequest.id == VolunteerOffer.request_id)
        .where(VolunteerOffer.status == ACCEPTED, VolunteerRequest.status == OPEN,
               VolunteerRequest.starts_at > after, VolunteerRequest.starts_at <= before)
    )
    return [(o, r) for o, r in rows.tuples()]


async def rechecks_between(session: AsyncSession, first: date, last: date) -> list[Volunteer]:
    return list(await session.scalars(
        select(Volunteer).where(Volunteer.dbs_level > 0, Volunteer.dbs_recheck >= first,
                                Volunteer.dbs_recheck <= last)
    ))


async def unconfirmed_since(session: AsyncSession, before: datetime) -> list[Volunteer]:
    return list(await session.scalars(
        select(Volunteer).where(Volunteer.availability_confirmed_at <= before)
    ))


async def promoted_untold(session: AsyncSession, since: datetime
                          ) -> list[tuple[VolunteerOffer, VolunteerRequest]]:
    rows = await session.execute(
        select(VolunteerOffer, VolunteerRequest)
        .join(VolunteerRequest, VolunteerRequest.id == VolunteerOffer.request_id)
        .where(VolunteerOffer.status == ACCEPTED, VolunteerOffer.promoted_at >= since,
               VolunteerRequest.status == OPEN)
    )
    return [(o, r) for o, r in rows.tuples()]


# -- privacy ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    """Everything the pool holds about one person, as JSON-ready data."""
    out: dict[str, Any] = {"volunteer_profile": None, "volunteer_offers": [],
                           "volunteer_hours": [], "volunteer_requests_made": [],
                           "volunteer_hours_you_confirmed": []}
    v = await profile(session, user_id)
    if v is not None:
        fields = ("skills", "area_code", "radius_km", "slots", "dbs_level", "dbs_workforce",
                  "dbs_checked", "dbs_recheck", "update_service", "share", "paused",
                  "paused_until", "adult_confirmed_at", "availability_confirmed_at",
                  "registered_at", "updated_at", "last_offered_at")
        out["volunteer_profile"] = {f: _plain(getattr(v, f)) for f in fields}
        out["volunteer_profile"]["groups"] = [f"G{g}" for g in await group_ids(session, v.id)]
    for o in await session.scalars(
            select(VolunteerOffer).where(VolunteerOffer.user_id == user_id)
            .order_by(VolunteerOffer.id)):
        out["volunteer_offers"].append({
            "offer": o.ref, "request": f"V{o.request_id}", "status": o.status, "via": o.via,
            "offered_at": _plain(o.offered_at), "answered_at": _plain(o.answered_at)})
    for h in await session.scalars(
            select(VolunteerHours).where(VolunteerHours.user_id == user_id)
            .order_by(VolunteerHours.id)):
        out["volunteer_hours"].append({
            "request": f"V{h.request_id}", "group": f"G{h.group_id}", "hours": h.hours,
            "worked_on": _plain(h.worked_on), "confirmed_by": h.confirmed_by})
    for h in await session.scalars(
            select(VolunteerHours).where(VolunteerHours.confirmed_by == user_id)
            .order_by(VolunteerHours.id)):
        out["volunteer_hours_you_confirmed"].append({
            "request": f"V{h.request_id}", "group": f"G{h.group_id}", "hours": h.hours,
            "confirmed_at": _plain(h.confirmed_at)})
    for r in await session.scalars(
            select(VolunteerRequest).where(VolunteerRequest.created_by == user_id)
            .order_by(VolunteerRequest.id)):
        out["volunteer_requests_made"].append({
            "request": r.ref, "group": f"G{r.group_id}", "role": r.role,
            "starts_at": _plain(r.starts_at), "status": r.status})
    return out


async def forget_person(session: AsyncSession, user_id: str, *, now: datetime) -> int:
    """Erase the person's profile, offers and hours; returns the rows removed.

    A place they held goes to the next on the waitlist (told by the next sweep).
    Requests they made for a group stay: they belong to the group.
    """
    removed = 0
    held = await session.scalars(select(VolunteerOffer).where(
        VolunteerOffer.user_id == user_id, VolunteerOffer.status == ACCEPTED))
    for o in list(held):
        await give_up_place(session, o, WITHDRAWN, now)
    for table in (VolunteerOffer, VolunteerHours):
        result = await session.execute(delete(table).where(table.user_id == user_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    # As a host: the requests and confirmations stay with the group, without the name.
    for column in (VolunteerRequest.created_by, VolunteerHours.confirmed_by):
        result = await session.execute(
            update(column.class_).where(column == user_id).values({column.key: FORGOTTEN}))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    v = await profile(session, user_id)
    if v is not None:
        await delete_profile(session, v)
        removed += 1
    return removed
