"""The email digest for groups not on chat, and the link that stops it.

The funding feature queues a digest entry per notice for each group with an
email that fits it (storage.funding ``cadence="email"``). Here they are
gathered into one email per group, sent over SMTP, and marked sent after
the server accepts it (a crash in between can send one digest twice, never
lose one). Every email carries an unsubscribe link (and RFC 8058 one-click
headers) served by the bot's web server; it sets the group's ``contact`` to no.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import aiosmtplib
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bridges.notices import Summary, summarise
from config.settings import EmailSettings, Settings
from storage import groups
from storage.engine import Database
from storage.funding import FundingDigestEntry, email_digest


class _Clock(Protocol):
    def now(self) -> datetime: ...


class Outlet(Protocol):
    """What digests need of the bot (bridges sit below bot, so they name no bot class)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> _Clock: ...


log = logging.getLogger(__name__)

WHOLE_LINES = policy.SMTP.clone(max_line_length=998)
_GROUP = re.compile(r"(?i)^G(\d{1,9})$")


# -- pure parts -------------------------------------------------------------------------


def unsubscribe_key(secret: bytes, group_id: int) -> str:
    return hmac.new(secret, f"unsubscribe:G{group_id}".encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_url(base_url: str, secret: bytes, group_id: int) -> str:
    return f"{base_url.rstrip('/')}/unsubscribe/G{group_id}/{unsubscribe_key(secret, group_id)}"


def digest_text(group_name: str, notices: Sequence[Summary], unsubscribe: str) -> str:
    lines = [
        f"Funding notices for {group_name}",
        "",
        f"{len(notices)} new funding "
        + ("notice matches" if len(notices) == 1 else "notices match")
        + " your group's area and themes:",
        "",
    ]
    for notice in notices:
        lines.append(f"{notice.ref}: {notice.title} ({notice.funder})")
        facts = ", ".join(x for x in (notice.amount, notice.closes) if x)
        if facts:
            lines.append(f"  {facts}")
        lines.append(f"  {notice.url}")
        lines.append("")
    lines += [
        "You get this because your group registered this address for funding notices.",
        f"To stop these emails: {unsubscribe}",
    ]
    return "\n".join(lines) + "\n"


def compose(*, to: str, sender: str, group_name: str, notices: Sequence[Summary],
            unsubscribe: str, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    count = len(notices)
    message["Subject"] = f"{count} funding notice{'s' if count != 1 else ''} for {group_name}"
    message["Date"] = formatdate(now.timestamp(), localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(digest_text(group_name, notices, unsubscribe))
    return message


# -- sending ----------------------------------------------------------------------------


def link_secret(app: Outlet) -> bytes:
    secret = app.settings.privacy.pseudonym_secret
    if secret is not None:
        return b"email-unsubscribe:" + secret.get_secret_value().encode()
    return f"email-unsubscribe:{app.settings.matrix.user_id}".encode()


def base_url(app: Outlet) -> str:
    return app.settings.web.base_url or f"http://{app.settings.web.listen}"


async def deliver(settings: EmailSettings, message: EmailMessage) -> None:
    assert settings.host is not None
    password = settings.password.get_secret_value() if settings.password else None
    # Flattened here with long lines kept whole: aiosmtplib would fold at 78 and
    # an encoded-word List-Unsubscribe header is a broken one.
    data = message.as_bytes(policy=WHOLE_LINES)
    await aiosmtplib.send(
        data, sender=settings.from_address, recipients=[str(message["To"])],
        hostname=settings.host, port=settings.port,
        username=settings.username, password=password,
        start_tls=settings.starttls, use_tls=False, timeout=30,
    )


async def send_pending(app: Outlet) -> int:
    """Send every group's waiting digest; returns how many emails went out."""
    settings = app.settings.email
    if settings.host is None:
        return 0
    now = app.clock.now()
    tz = app.settings.bot.tz
    secret = link_secret(app)
    outgoing: list[tuple[list[int], EmailMessage]] = []
    async with app.db.transaction() as session:
        waiting: dict[int, list[tuple[FundingDigestEntry, Summary]]] = defaultdict(list)
        for entry, notice in await email_digest(session):
            if entry.group_id is not None:
                waiting[entry.group_id].append((entry, summarise(notice, tz)))
        for group_id, items in waiting.items():
            group = await groups.by_id(session, group_id)
            ids = [entry.id for entry, _ in items]
            if group is None or not group.contact or not group.email:
                # No consent (any more) or no address: these will never be sent.
                await _mark_sent(session, ids, now)
                continue
            message = compose(
                to=group.email, sender=settings.from_address, group_name=group.name,
                notices=[s for _, s in items],
                unsubscribe=unsubscribe_url(base_url(app), secret, group_id), now=now,
            )
            outgoing.append((ids, message))
    sent = 0
    for ids, message in outgoing:
        try:
            await deliver(settings, message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("email digest to %s not sent (tried again later): %s",
                        message["To"], exc)
            continue
        async with app.db.transaction() as session:
            await _mark_sent(session, ids, app.clock.now())
        sent += 1
    return sent


async def _mark_sent(session: AsyncSession, ids: list[int], now: datetime) -> None:
    await session.execute(
        update(FundingDigestEntry).where(FundingDigestEntry.id.in_(ids)).values(sent_at=now)
    )


# -- unsubscribing ----------------------------------------------------------------------


async def unsubscribe(app: Outlet, ref: str, key: str) -> str | None:
    """Set the group's contact to no; its name, or None for a bad or forged link."""
    match = _GROUP.match(ref)
    if match is None:
        return None
    group_id = int(match.group(1))
    if not hmac.compare_digest(key, unsubscribe_key(link_secret(app), group_id)):
        return None
    async with app.db.transaction() as session:
        group = await groups.by_id(session, group_id)
        if group is None:
            return None
        group.contact = False
        return group.name


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unsubscribe</title></head><body style="font-family:sans-serif;max-width:36em">
{body}</body></html>"""


def routes(app: Outlet) -> list[web.RouteDef]:
    """GET shows a button (mail scanners open links); POST, also RFC 8058's, unsubscribes."""

    async def confirm(request: web.Request) -> web.Response:
        ref, key = request.match_info["group"], request.match_info["key"]
        if not _GROUP.match(ref) or not hmac.compare_digest(
            key, unsubscribe_key(link_secret(app), int(ref[1:]))
        ):
            return web.Response(status=404, text="This unsubscribe link is not valid.\n")
        body = (
            "<p>Stop the funding notice emails to this group?</p>"
            '<form method="post"><button type="submit">Unsubscribe</button></form>'
        )
        return web.Response(text=_PAGE.format(body=body), content_type="text/html")

    async def apply(request: web.Request) -> web.Response:
        name = await unsubscribe(app, request.match_info["group"], request.match_info["key"])
        if name is None:
            return web.Response(status=404, text="This unsubscribe link is not valid.\n")
        body = (
            f"<p>Done: {html.escape(name)} will get no more funding notice emails.</p>"
            "<p>To receive them again, ask your local council's community team.</p>"
        )
        return web.Response(text=_PAGE.format(body=body), content_type="text/html")

    path = "/unsubscribe/{group}/{key}"
    return [web.get(path, confirm), web.post(path, apply)]
