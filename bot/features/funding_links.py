"""The counted notice link ``/n/F12/<room key>``: an open is counted for the room, never who.

The room key is a short HMAC of the room id (``funding_targeting.room_key``),
so the link names no room and no person; the redirect goes to the funder's page.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import update

from storage import funding
from storage.funding import FundingDelivery

if TYPE_CHECKING:
    from bot.host import Host

APP_KEY: web.AppKey[Host] = web.AppKey("grapevine")
_REF = re.compile(r"(?i)^F(\d{1,9})$")


async def follow(app: Host, ref: str, key: str) -> str | None:
    """Count an open of a notice's link in the room it was posted to; the url to go to."""
    match = _REF.match(ref)
    if match is None:
        return None
    notice_id = int(match.group(1))
    async with app.db.transaction() as session:
        notice = await funding.notice(session, notice_id)
        if notice is None or notice.status not in {funding.PUBLISHED, funding.EXPIRED}:
            return None
        await session.execute(
            update(FundingDelivery)
            .where(FundingDelivery.notice_id == notice_id, FundingDelivery.room_key == key)
            .values(opens=FundingDelivery.opens + 1, last_opened_at=app.clock.now())
        )
        return notice.url


async def _answer(app: Host, request: web.Request) -> web.Response:
    url = await follow(app, request.match_info["ref"], request.match_info["key"])
    if url is None:
        return web.Response(status=404, text="No such funding notice.\n")
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})


async def open_link(request: web.Request) -> web.Response:
    """``/n/F12/<room key>``: counts the open for that room (never who), then redirects."""
    return await _answer(request.config_dict[APP_KEY], request)


def routes(app: Host) -> list[web.RouteDef]:
    async def handler(request: web.Request) -> web.Response:
        return await _answer(app, request)

    return [web.get("/n/{ref}/{key}", handler)]
