"""RSS and Atom funding feeds: fetched politely, parsed forgivingly, new items held.

Lessons from hookshot and maubot/rss: poll each feed once however many rooms
use it, honour ETag and Last-Modified, time out, back off a failing feed up to
a day, and let a database unique constraint (source, item key) decide what is
new so a restart or a re-published feed never floods the approval queue.
A feed that breaks is reported in ``!funding sources``; it never stops the bot.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import feedparser
from sqlalchemy.exc import IntegrityError

from bot.commands import when
from storage import funding
from storage.engine import Database

log = logging.getLogger(__name__)

POLL_EVERY = timedelta(minutes=30)
MAX_BACKOFF = timedelta(hours=24)
TIMEOUT_SECONDS = 30
MAX_BYTES = 2_000_000
CONCURRENCY = 4
USER_AGENT = "Grapevine funding-notice bot (+https://github.com/grapevine)"
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_DEADLINE = re.compile(
    r"(?i)\b(?:deadline|closing date|closes|close date|apply by)\b\s*(?:is|on)?\s*[:\-]?\s*"
    r"(?P<date>\d{4}-\d{2}-\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+[a-z]{3,9}\s+\d{4})"
)
_POUNDS = re.compile(r"£\s?(\d[\d,]*(?:\.\d+)?)\s*([km])?\b", re.IGNORECASE)


@dataclass(frozen=True)
class FeedItem:
    key: str
    title: str
    link: str
    summary: str
    funder: str
    closes_at: datetime | None
    award_min: int | None
    award_max: int | None


@dataclass(frozen=True)
class Fetched:
    """One poll's outcome: items (None when unchanged, 304), or an error to show people."""

    items: list[FeedItem] | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None


def plain(markup: str, limit: int = 400) -> str:
    """Tags stripped, entities decoded, whitespace folded, cut to ``limit`` characters."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", markup))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def item_key(entry: Any) -> str:
    """guid, else link, else a hash of title and summary: stable across polls."""
    for candidate in (entry.get("id"), entry.get("link")):
        if candidate:
            text = str(candidate).strip()
            return text if len(text) <= 200 else hashlib.sha256(text.encode()).hexdigest()
    basis = f"{entry.get('title', '')}\n{entry.get('summary', '')}"
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()


def find_deadline(text: str, today: date, tz: ZoneInfo) -> datetime | None:
    match = _DEADLINE.search(text)
    if match is None:
        return None
    try:
        found = when.parse_deadline(match["date"], today=today, tz=tz)
    except when.WhenError:
        return None
    return found if isinstance(found, datetime) else None


def find_amounts(text: str) -> tuple[int | None, int | None]:
    amounts = []
    for number, scale in _POUNDS.findall(text):
        value = float(number.replace(",", "")) * {"": 1, "k": 1_000, "m": 1_000_000}[scale.lower()]
        amounts.append(round(value))
    if not amounts:
        return None, None
    if len(amounts) == 1:
        upto = re.search(r"(?i)\bup to\s+£", text) is not None
        return (None if upto else amounts[0]), amounts[0]
    return min(amounts), max(amounts)


def parse_feed(data: bytes, today: date, tz: ZoneInfo) -> list[FeedItem]:
    """The items of an RSS or Atom document; ValueError (one line) when it is neither."""
    parsed = feedparser.parse(data)
    if parsed.get("bozo") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        detail = plain(str(problem), 120) if problem else "unreadable"
        raise ValueError(f"not a readable RSS or Atom feed ({detail})")
    if not parsed.get("version") and not parsed.entries:
        raise ValueError("not an RSS or Atom feed")
    # "Fens Community Foundation - Open grants": the funder is the part before the dash.
    publisher = plain(str(parsed.feed.get("author") or ""), 200) or re.split(
        r"\s+[-|–]\s+", plain(str(parsed.feed.get("title") or ""), 200))[0]
    atom = str(parsed.get("version") or "").startswith("atom")
    items = []
    for entry in parsed.entries:
        link = str(entry.get("link") or "").strip()
        title = plain(str(entry.get("title") or ""), 300)
        if not link.startswith(("http://", "https://")) or not title:
            continue  # nothing a group could act on
        summary = plain(str(entry.get("summary") or entry.get("description") or ""))
        # An RSS item's author is whoever wrote the post; an Atom entry's is the programme's.
        author = plain(str(entry.get("author") or ""), 200) if atom else ""
        funder = author or publisher or "unknown funder"
        low, high = find_amounts(f"{title} {summary}")
        items.append(FeedItem(
            key=item_key(entry), title=title, link=link, summary=summary, funder=funder,
            closes_at=find_deadline(summary, today, tz), award_min=low, award_max=high,
        ))
    return items


async def read_whole(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, however it is sent (chunked, slowly); None if it is over ``limit``.

    ``response.content.read(n)`` returns only what has arrived so far, so a feed sent
    in chunks was cut short without a word, and its ETag then hid the rest for good.
    """
    if (response.content_length or 0) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def fetch(
    http: aiohttp.ClientSession, url: str, etag: str | None, last_modified: str | None,
    today: date, tz: ZoneInfo,
) -> Fetched:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/atom+xml, "
               "application/xml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with http.get(url, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as response:
            if response.status == 304:
                return Fetched(None, etag, last_modified)
            if response.status >= 400:
                return Fetched(error=f"HTTP {response.status} {response.reason or ''}".strip())
            data = await read_whole(response, MAX_BYTES)
            if data is None:
                # Its ETag is not kept: it would describe a version never read.
                return Fetched(error=f"feed is too large (over {MAX_BYTES / 1e6:g} MB), "
                               "so none of it was read")
            new_etag = response.headers.get("ETag")
            new_modified = response.headers.get("Last-Modified")
    except TimeoutError:
        return Fetched(error=f"no answer within {TIMEOUT_SECONDS} s")
    except aiohttp.ClientError as exc:
        return Fetched(error=f"could not fetch it ({type(exc).__name__})")
    try:
        items = parse_feed(data, today, tz)
    except ValueError as exc:
        return Fetched(error=str(exc))
    return Fetched(items, new_etag, new_modified)


def next_poll(now: datetime, failures: int) -> datetime:
    if failures <= 0:
        return now + POLL_EVERY
    return now + min(MAX_BACKOFF, POLL_EVERY * 2 ** min(failures, 10))


async def store(
    db: Database, source_id: int, fetched: Fetched, now: datetime
) -> list[int]:
    """Record a poll's outcome; new items become held notices. Returns their ids."""
    new: list[int] = []
    async with db.transaction() as session:
        src = await funding.source(session, source_id)
        if src is None:  # removed while we fetched
            return []
        src.last_polled_at = now
        if fetched.error is not None:
            src.failures += 1
            src.last_error = fetched.error[:500]
            src.next_poll_at = next_poll(now, src.failures)
            return []
        src.failures = 0
        src.last_error = None
        src.last_ok_at = now
        src.next_poll_at = next_poll(now, 0)
        src.etag, src.last_modified = fetched.etag, fetched.last_modified
        for item in fetched.items or []:
            if item.closes_at is not None and item.closes_at <= now:
                continue
            if await funding.item_known(session, source_id, item.key):
                continue
            try:
                async with session.begin_nested():
                    notice = await funding.add_notice(
                        session, title=item.title, funder=item.funder, description=item.summary,
                        award_min=item.award_min, award_max=item.award_max,
                        closes_at=item.closes_at, areas=list(src.areas),
                        themes=list(src.themes), applicant_types=[], sizes=[], url=item.link,
                        source=src.ref, source_id=src.id, item_key=item.key,
                        status=funding.HELD, created_at=now,
                    )
            except IntegrityError:
                continue  # the constraint says we have it already
            new.append(notice.id)
        src.items_seen += len(new)
    return new


async def poll_due(db: Database, now: datetime, tz: ZoneInfo) -> dict[int, list[int]]:
    """Poll every feed that is due; {source id: new held notice ids}. Never raises for a feed."""
    async with db.transaction() as session:
        due = [(s.id, s.url, s.etag, s.last_modified)
               for s in await funding.due_sources(session, now)]
    if not due:
        return {}
    today = now.astimezone(tz).date()
    gate = asyncio.Semaphore(CONCURRENCY)
    results: dict[int, list[int]] = {}

    async def one(http: aiohttp.ClientSession, source: tuple[int, str, str | None, str | None]
                  ) -> None:
        source_id, url, etag, modified = source
        async with gate:
            try:
                fetched = await fetch(http, url, etag, modified, today, tz)
            except Exception as exc:  # a feed must never take the bot down
                log.exception("feed S%d failed", source_id)
                fetched = Fetched(error=f"unexpected error ({type(exc).__name__})")
        results[source_id] = await store(db, source_id, fetched, now)

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http, s) for s in due))
    return results
