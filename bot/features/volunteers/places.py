"""Moving people on and off a request: offering it to the best matches, giving up a
place (the waitlist moves up and the host is told), and telling whoever moved up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.matching import candidates, haversine_km, rank
from bot.features.volunteers.common import (
    OFFER_TTL,
    at_text,
    need_of,
    queue_dm,
    quiet_until,
    skills_text,
    when_of,
)
from bot.host import Host
from storage import volunteers as store
from storage.groups import Group
from storage.models import add_row
from storage.volunteers import VolunteerOffer, VolunteerRequest


async def make_offers(app: Host, session: AsyncSession, req: VolunteerRequest,
                      group: Group, now: datetime, limit: int) -> int:
    """Offer the request to the best ``limit`` eligible people not asked before; how many."""
    if limit <= 0:
        return 0
    need = need_of(req, group)
    found = await candidates(session, need, now, limit=limit, exclude_request=req.id,
                             exclude_user=req.created_by)
    ranked = rank(found, need, now)
    send_at = quiet_until(now, app.settings.bot.tz)
    expires = min(send_at + OFFER_TTL, req.starts_at)
    tz = app.settings.bot.tz
    for c in ranked:
        o = VolunteerOffer(request_id=req.id, user_id=c.user_id, status=store.OFFERED,
                           via="offer", offered_at=now, expires_at=expires)
        await add_row(session, o)
        km = haversine_km(c.lat, c.lon, req.lat, req.lon)
        dbs = "; you meet its DBS requirement" if req.dbs_level else ""
        await queue_dm(app, session, now, c.user_id, (
            f"{o.ref}: {group.name} needs {req.count} x {req.role}, {when_of(app, req)}, "
            f"{app.areas.label(req.area_code)} (about {km:.0f} km from you).\n"
            f"Skills: {skills_text(req.skills)}{dbs}.\n"
            f"Reply {app.settings.bot.prefix}volunteer accept {o.ref} or "
            f"{app.settings.bot.prefix}volunteer decline {o.ref} by {at_text(expires, tz)}."
        ), dedupe_key=f"volunteer:offer:{o.id}")
    await store.mark_offered(session, [c.volunteer_id for c in ranked], now)
    return len(ranked)


async def leave(app: Host, session: AsyncSession, o: VolunteerOffer, status: str,
                 now: datetime) -> None:
    """Give up an offer or place; a freed place goes to the waitlist, and the host is told."""
    had_place = o.status == store.ACCEPTED
    promoted = await store.give_up_place(session, o, status, now)
    req = await store.request(session, o.request_id)
    assert req is not None
    if promoted is not None:
        await tell_promoted(app, session, now, promoted, req)
    if had_place:
        f = await store.fill(session, req.id)
        moved = f" {promoted.user_id} moved up from the waitlist." if promoted else ""
        await queue_dm(app, session, now, req.created_by,
                       f"{o.user_id} can no longer make {req.ref} ({req.role}).{moved} "
                       f"{f.accepted}/{req.count} places filled.")


async def tell_promoted(app: Host, session: AsyncSession, now: datetime,
                         o: VolunteerOffer, req: VolunteerRequest) -> bool:
    return await queue_dm(
        app, session, now, o.user_id,
        f"A place freed up: you're in for {req.ref} ({req.role}, {when_of(app, req)}). "
        f"Can't make it? {app.settings.bot.prefix}volunteer decline {o.ref}.",
        dedupe_key=f"volunteer:promoted:{o.id}",
    )
