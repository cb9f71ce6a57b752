"""The counted notice link ``/n/F12/<room key>``: an open is counted for the room, never who.

The room key is a short HMAC of the room id (``funding_targeting.room_key``),
so the link names no room and no person; the redirect goes to the funder's page.

An open counts a person's visit, so the reach report can take it as a trace:
HEAD requests and link-preview fetchers (Synapse's URL previewer, Slack, WhatsApp,
Telegram, Facebook, Discord, Twitter and other bots) are redirected but not
counted, and the same visitor opening the same link again within
``REPEAT_WINDOW`` counts once. Visitors are told apart by a salted hash of their
address and user agent, held in memory for the window only and never stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import weakref
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import update

from storage import funding
from storage.funding import FundingDelivery

if TYPE_CHECKING:
    from bot.host import Host

APP_KEY: web.AppKey[Host] = web.AppKey("grapevine")
_REF = re.compile(r"(?i)^F(\d{1,9})$")
REPEAT_WINDOW = timedelta(minutes=5)
# User agents of link-preview fetchers and crawlers (matched anywhere, any case).
PREVIEW_AGENTS = re.compile(
    r"(?i)synapse \(bot|matrix-media-repo|slackbot|slack-imgproxy|whatsapp|telegrambot|"
    r"facebookexternalhit|facebookcatalog|meta-externalagent|discordbot|twitterbot|linkedinbot|"
    r"skypeuripreview|mattermost|mastodon|embedly|iframely|redditbot|pinterest|applebot|"
    r"googlebot|bingbot|duckduckbot|yandex|baiduspider|crawler|spider|preview|\bbot\b")


def is_preview(method: str, agent: str) -> bool:
    """A request no person made: a HEAD, no user agent, or a known preview fetcher's."""
    return method.upper() == "HEAD" or not agent.strip() or bool(PREVIEW_AGENTS.search(agent))


class RecentOpens:
    """Salted hashes of (visitor, link) seen in the last ``REPEAT_WINDOW``, in memory only."""

    def __init__(self, window: timedelta = REPEAT_WINDOW) -> None:
        self.window = window
        self._salt = secrets.token_bytes(16)
        self._seen: dict[bytes, datetime] = {}

    def first(self, visitor: str, link: str, now: datetime) -> bool:
        """True unless this visitor opened this link within the window (which then slides)."""
        self._seen = {k: t for k, t in self._seen.items() if now - t < self.window}
        key = hashlib.blake2b(f"{visitor}\0{link}".encode(), key=self._salt,
                              digest_size=16).digest()
        new = key not in self._seen
        self._seen[key] = now
        return new


_RECENT: weakref.WeakKeyDictionary[Any, RecentOpens] = weakref.WeakKeyDictionary()


def recent_opens(app: Host) -> RecentOpens:
    """The app's recent visitors (one store per running bot)."""
    if app not in _RECENT:
        _RECENT[app] = RecentOpens()
    return _RECENT[app]


async def follow(app: Host, ref: str, key: str, *, count: bool = True) -> str | None:
    """Count (if ``count``) an open of a notice's link in the room it was posted to; the url
    to go to, or None for no such notice."""
    match = _REF.match(ref)
    if match is None:
        return None
    notice_id = int(match.group(1))
    async with app.db.transaction() as session:
        notice = await funding.notice(session, notice_id)
        if notice is None or notice.status not in {funding.PUBLISHED, funding.EXPIRED}:
            return None
        if not count:
            return notice.url
        await session.execute(
            update(FundingDelivery)
            .where(FundingDelivery.notice_id == notice_id, FundingDelivery.room_key == key)
            .values(opens=FundingDelivery.opens + 1, last_opened_at=app.clock.now())
        )
        return notice.url


def counts(app: Host, request: web.Request) -> bool:
    """Whether this request is a person's first open of the link within the window."""
    agent = request.headers.get("User-Agent", "")
    if is_preview(request.method, agent):
        return False
    return recent_opens(app).first(f"{request.remote}\0{agent}", request.path, app.clock.now())


async def _answer(app: Host, request: web.Request) -> web.Response:
    url = await follow(app, request.match_info["ref"], request.match_info["key"],
                       count=counts(app, request))
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
