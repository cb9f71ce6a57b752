"""Shorten, flatten and page text for the network a room is bridged to.

Bridges pass ``body`` through and convert ``formatted_body`` only in part, so
for bridged rooms the plain body is the message: markdown-only structure is
flattened, HTML is dropped, and the text is paged to the network's lines and
length: the first page ends with a pointer to the rest (``!more``), and cuts
fall only between words, so no word, link or id is ever split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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


def _size(text: str, limits: Limits) -> int:
    return len(text.encode()) if limits.max_line_bytes is not None else len(text)


def wrap(line: str, width: int, limits: Limits) -> list[str]:
    """``line`` in pieces of at most ``width`` (bytes or characters), broken only at spaces.

    A single word longer than ``width`` (a long link) stays whole on a line of its own.
    """
    if _size(line, limits) <= width:
        return [line]
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and _size(candidate, limits) > width:
            pieces.append(current)
            current = word
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def shown_lines(body: str, limits: Limits, width: int | None = None) -> list[str]:
    """The lines the far side will show for ``body``: long lines wrapped as it would."""
    width = width or limits.max_line_bytes or limits.max_length
    lines: list[str] = []
    for line in body.splitlines():
        if not line.strip() and not limits.blank_lines:
            continue
        lines.extend(wrap(line, width, limits))
    return lines


def more_pointer(prefix: str) -> Callable[[int], str]:
    """The last line of a page that has more after it."""
    return lambda left: f"... {left} more line{'s' if left != 1 else ''}: {prefix}more"


def paginate(body: str, limits: Limits, pointer: Callable[[int], str]) -> tuple[str, list[str]]:
    """The first page of ``body`` within ``limits`` (lines and length), and the lines left.

    A page that has more after it keeps ``max_lines - 1`` lines at most and ends with
    ``pointer(lines left)``; nothing is cut inside a word.
    """
    width = _page_width(limits)
    lines = shown_lines(body, limits, width)
    if len(lines) > limits.max_lines and limits.max_line_bytes is not None:
        lines = compact(lines, limits.max_lines, width, limits)  # IRC: a line is a message
    whole = "\n".join(lines)
    if len(lines) <= limits.max_lines and len(whole) <= limits.max_length:
        return whole, []
    lines = shown_lines(body, limits, width)  # paged as written, not squeezed
    reserve = len(pointer(len(lines))) + 1
    kept: list[str] = []
    used = 0
    for line in lines[: max(1, limits.max_lines - 1)]:
        if kept and used + len(line) + 1 + reserve > limits.max_length:
            break
        kept.append(line)
        used += len(line) + 1
    rest = lines[len(kept):]
    return "\n".join([*kept, pointer(len(rest))]), rest


JOIN = " · "


def compact(lines: list[str], max_lines: int, width: int, limits: Limits) -> list[str]:
    """Short neighbouring lines joined (``a · b``) until ``max_lines`` remain, if they can.

    Where every line costs a message (IRC), a four-line notice is better as three whole
    lines than as two and a pointer. The shortest joins go first; none passes ``width``;
    a line that ends a sentence is simply followed by the next.
    Returns the lines as given when they cannot be brought down to ``max_lines``.
    """
    joined = list(lines)
    while len(joined) > max_lines:
        pairs = [(i, _join(joined[i], joined[i + 1])) for i in range(len(joined) - 1)]
        fitting = [(len(text), i, text) for i, text in pairs if _size(text, limits) <= width]
        if not fitting:
            return lines
        _, i, text = min(fitting)
        joined[i:i + 2] = [text]
    return joined


def _join(left: str, right: str) -> str:
    """Two lines as one: a sentence that ended goes on with a space, anything else with ·."""
    return f"{left} {right}" if left.rstrip().endswith((".", "!", "?", ":")) else (
        f"{left}{JOIN}{right}")


def _page_width(limits: Limits) -> int:
    """The longest line a page may hold: a pointer line must still fit beside it."""
    room = max(40, limits.max_length - 60)
    return min(limits.max_line_bytes or room, room)


def fit(
    body: str, html: str | None, limits: Limits, pointer: Callable[[int], str] | None = None
) -> tuple[str, str | None, list[str]]:
    """The body and HTML to send where ``limits`` apply, and the lines left for ``!more``.

    HTML is None for plain-only rooms and for a paged body (HTML cannot be cut safely).
    """
    plain = flatten(body) if limits.plain_only else body
    page, rest = paginate(plain, limits, pointer or more_pointer("!"))
    page = shorten(page, limits.max_length)  # only a single word longer than a page
    if limits.plain_only or rest or page != body:
        return page, None, rest
    return page, html, rest


def for_room(
    body: str,
    html: str | None,
    network: str | None,
    features: Mapping[str, Any] | None = None,
    pointer: Callable[[int], str] | None = None,
) -> tuple[str, str | None, list[str]]:
    """What replies and own posts send in a room bridged to ``network``, and any rest.

    Plain Matrix rooms (``network`` None, no features) get the text unchanged.
    """
    if network is None and not features:
        return body, html, []
    return fit(body, html, limits_for(network, features), pointer)


async def for_room_id(
    session: AsyncSession, room_id: str, body: str, html: str | None
) -> tuple[str, str | None]:
    """``for_room`` for a room known only by id (the outbox worker, posts to other rooms)."""
    known = await rooms.get(session, room_id)
    bridged = await bridge_rows.get(session, room_id)
    network = known.network if known is not None else None
    sent, sent_html, _ = for_room(
        body, html, network, bridged.features if bridged is not None else None)
    return sent, sent_html
