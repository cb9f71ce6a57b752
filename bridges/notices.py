"""Funding notices as paper and email show them: plain facts, no chat links counted."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from storage.funding import PUBLISHED, FundingNotice


@dataclass(frozen=True)
class Summary:
    ref: str
    title: str
    funder: str
    amount: str
    closes: str
    url: str
    description: str = ""


def amount_text(low: int | None, high: int | None) -> str:
    if not low:
        return f"up to £{high:,}" if high is not None else ""
    if high is None or low == high:
        return f"£{low:,}"
    return f"£{low:,} to £{high:,}"


def closes_text(closes_at: datetime | None, tz: ZoneInfo) -> str:
    if closes_at is None:
        return "no deadline given"
    local = closes_at.astimezone(tz)
    day = f"{local:%A} {local.day} {local:%B %Y}"
    return f"closes {day}" if local.hour == 23 else f"closes {day}, {local:%H:%M}"


def summarise(notice: FundingNotice, tz: ZoneInfo) -> Summary:
    return Summary(
        ref=notice.ref, title=notice.title, funder=notice.funder,
        amount=amount_text(notice.award_min, notice.award_max),
        closes=closes_text(notice.closes_at, tz), url=notice.url,
        description=(notice.description or "").strip(),
    )


def open_in_area(
    notices: Iterable[FundingNotice],
    area_code: str,
    now: datetime,
    contains: Callable[[str, str], bool],
) -> list[FundingNotice]:
    """Published notices still open that someone in ``area_code`` could apply for.

    A notice for the area, for anywhere inside it, or for an area around it
    (county-wide when it names none) counts; soonest deadline first.
    """
    found = [
        n for n in notices
        if n.status == PUBLISHED
        and (n.closes_at is None or n.closes_at > now)
        and (not n.areas or any(contains(a, area_code) or contains(area_code, a)
                                for a in n.areas))
    ]
    found.sort(key=lambda n: (n.closes_at is None, n.closes_at or now, n.id))
    return found
