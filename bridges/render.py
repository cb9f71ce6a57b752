"""Shorten and flatten a reply for the network a room is bridged to.

Bridges pass ``body`` through and convert ``formatted_body`` only in part, so
for bridged rooms the plain body is the message: markdown-only structure is
flattened, the text is cut to the network's length, and HTML is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bridges.capabilities import Limits, limits_for
from storage import bridges as bridge_rows
from storage import rooms

ELLIPSIS = "…"
# Markdown bold; never inside a word, so links like /a__b__c survive.
_BOLD = re.compile(r"(?<!\w)(?:\*\*(\S|\S.*?\S)\*\*|__(\S|\S.*?\S)__)(?!\w)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def flatten(body: str) -> str:
    """Plain lines any chat app shows as meant: no markdown markup, no tables, no blank runs."""
    lines: list[str] = []
    for raw in body.splitlines():
        if _TABLE_RULE.match(raw):
            continue
        line = _HEADING.sub("", raw.rstrip())
        line = _BOLD.sub(lambda m: m.group(1) or m.group(2), line)
        if line.count("|") >= 2 and line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            line = " · ".join(c for c in cells if c)
        if not line.strip() and (not lines or not lines[-1].strip()):
            continue
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def shorten(body: str, max_length: int) -> str:
    """At most ``max_length`` characters, cut at a word and marked with an ellipsis."""
    if len(body) <= max_length:
        return body
    cut = body[: max(1, max_length - len(ELLIPSIS))]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def fit(body: str, html: str | None, limits: Limits) -> tuple[str, str | None]:
    """The body and HTML to send where ``limits`` apply; HTML is None for plain-only rooms."""
    if not limits.plain_only:
        return shorten(body, limits.max_length), html
    return shorten(flatten(body), limits.max_length), None


def for_room(
    body: str,
    html: str | None,
    network: str | None,
    features: Mapping[str, Any] | None = None,
) -> tuple[str, str | None]:
    """What ``Context.reply`` and own posts should send in a room bridged to ``network``.

    Plain Matrix rooms (``network`` None, no features) get the text unchanged.
    """
    if network is None and not features:
        return body, html
    return fit(body, html, limits_for(network, features))



async def for_room_id(
    session: AsyncSession, room_id: str, body: str, html: str | None
) -> tuple[str, str | None]:
    """``for_room`` for a room known only by id (the outbox worker, posts to other rooms)."""
    known = await rooms.get(session, room_id)
    bridged = await bridge_rows.get(session, room_id)
    network = known.network if known is not None else None
    return for_room(body, html, network, bridged.features if bridged is not None else None)
