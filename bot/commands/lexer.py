"""Split one command line into positional words and ``key=value`` options.

People type commands on phones, so the lexer is forgiving about what phones
do to text (curly quotes, dashes, invisible marks, a trailing full stop) and
strict only where guessing could change meaning (an unclosed double quote, a
key given twice). Rules, in the order they apply:

- ``normalise`` first maps phone punctuation to ASCII (see its docstring).
- Tokens are separated by whitespace. A double-quoted part (``"St Ives"``,
  ``title="Warm spaces"``) keeps its spaces; the quotes are removed. A single
  quote quotes only when it opens a token or a value (``'St Ives'``,
  ``name='A "b" c'``) and a closing single quote is followed by whitespace or
  the end; an apostrophe anywhere else (``St John's``), or an opening one that
  is never closed (``'90s``), is an ordinary character. There are no
  backslash escapes: to put ``"`` in a value, single-quote it.
- A token whose unquoted start is ``key=`` is an option; the value is the rest,
  up to the end of the token, so ``url=https://x.org/?a=b`` and
  ``title="a = b"`` keep their ``=``. Keys are ASCII words, lower-cased, with
  ``-`` read as ``_``; leading dashes are dropped (``--title=`` and an
  autocorrected ``—title=``). ``key=`` followed by a space is the empty
  value. ``key = value`` and ``key =value`` (spaces around ``=``) are
  tolerated. A key given twice is refused.
- ``.``, ``!`` and ``?`` typed at the very end of the line, outside quotes,
  are dropped (``funding list.``); the same characters anywhere else stay.
- Values are raw strings: splitting a list is ``split_list``'s job.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["LexError", "Tokens", "normalise", "split_list", "tokenize"]


class LexError(ValueError):
    """One clear user-facing line saying what is wrong and what to do (str(e))."""


_INVISIBLE = (
    "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"  # soft hyphen, zero-widths, bidi marks, BOM
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"  # bidi embeddings and isolates
)
_SPACES = "\u00a0\u202f\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u205f\u3000"
_TRANSLATION: dict[int, str | None] = {
    **dict.fromkeys(map(ord, "“”„‟″«»＂"), '"'),
    **dict.fromkeys(map(ord, "‘’‚‛′ʼ‹›＇"), "'"),
    **dict.fromkeys(map(ord, "‐‑‒–—―−﹘﹣－"), "-"),
    **dict.fromkeys(map(ord, _SPACES), " "),
    **dict.fromkeys(map(ord, _INVISIBLE), None),
    ord("…"): "...",
    ord("＝"): "=",
}


def normalise(text: str) -> str:
    """Phone text to plain ASCII punctuation, so the parsers need to know only one spelling.

    Curly and angled double quotes become ``"``, curly single quotes and primes
    ``'``, every dash and the minus sign ``-``, no-break and thin spaces a
    plain space, an ellipsis ``...``; zero-width characters, bidi marks and
    the BOM are removed. Letters (accented or not) and runs of spaces are kept.
    """
    return text.translate(_TRANSLATION)


@dataclass(frozen=True)
class Tokens:
    """One command line, split: what the command framework binds to its parameters."""

    words: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    option_order: tuple[str, ...] = ()


_KEY = re.compile(r"-*([A-Za-z][A-Za-z0-9_-]*)", re.ASCII)
_TRAILING = ".!?"
_SNIPPET = 24


@dataclass
class _Raw:
    """A token as scanned: its text with quotes removed, and what was quoted."""

    text: str
    quoted: bool  # some part of it was inside quotes
    eq: int | None  # index of a '=' reached before any quote, outside quotes
    tail: int  # length of the unquoted run at its end


def _snippet(text: str) -> str:
    shown = "".join(c for c in text if c.isprintable())
    return shown if len(shown) <= _SNIPPET else shown[: _SNIPPET - 1] + "…"


def _closing_quotes(line: str) -> list[int]:
    """Where a single quote may close a quoted part: before whitespace or the line's end."""
    end = len(line.rstrip(_TRAILING))  # trailing punctuation counts as the end
    return [i for i, c in enumerate(line) if c == "'" and (i + 1 >= end or line[i + 1].isspace())]


def _scan(line: str) -> list[_Raw]:
    raws: list[_Raw] = []
    closers = _closing_quotes(line) if "'" in line else []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        parts: list[str] = []
        length, quoted, eq, tail = 0, False, None, 0
        while i < n and not line[i].isspace():
            c = line[i]
            close = -2  # not a quote
            if c == '"':
                close = line.find('"', i + 1)
                if close == -1:
                    raise LexError(
                        f"This quote is not closed: {_snippet(line[i:])} - "
                        'add the closing " or remove the quote.'
                    )
            elif c == "'" and (length == 0 or (eq == length - 1 and not quoted)):
                at = bisect_right(closers, i)
                close = closers[at] if at < len(closers) else -1  # -1: just an apostrophe
            if close >= 0:
                part = line[i + 1 : close]
                parts.append(part)
                length += len(part)
                quoted, tail, i = True, 0, close + 1
                continue
            if c == "=" and eq is None and not quoted:
                eq = length
            parts.append(c)
            length += 1
            tail += 1
            i += 1
        raws.append(_Raw("".join(parts), quoted, eq, tail))
    return raws


def _drop_trailing_punctuation(raws: list[_Raw]) -> None:
    if not raws or raws[-1].tail == 0:
        return
    last = raws[-1]
    keep = len(last.text) - last.tail
    tail = last.text[keep:].rstrip(_TRAILING)
    last.text = last.text[:keep] + tail
    last.tail = len(tail)
    if not last.text and not last.quoted:
        raws.pop()


def _key(name: str) -> str | None:
    match = _KEY.fullmatch(name)
    return match.group(1).lower().replace("-", "_") if match else None


def tokenize(line: str) -> Tokens:
    """Split one command line (prefix already removed) into words and options."""
    raws = _scan(normalise(line))
    _drop_trailing_punctuation(raws)
    words: list[str] = []
    options: dict[str, str] = {}
    bare_word_last = False  # the previous token was an unquoted word, so may be a key

    def put(key: str, value: str) -> None:
        if key in options:
            raise LexError(f"{key}= was given twice: give it once ({key}=a,b for a list).")
        options[key] = value

    i = 0
    while i < len(raws):
        raw = raws[i]
        i += 1
        if raw.eq is not None and raw.eq > 0 and (key := _key(raw.text[: raw.eq])):
            put(key, raw.text[raw.eq + 1 :])
            bare_word_last = False
            continue
        if raw.eq == 0:
            key = _key(words[-1]) if bare_word_last else None
            if key is None:
                raise LexError(
                    f'"{_snippet(raw.text)}" has no option name before "=": write key=value.'
                )
            words.pop()
            value = raw.text[1:]
            if not value and not raw.quoted and i < len(raws):  # "key = value"
                value = raws[i].text
                i += 1
            put(key, value)
            bare_word_last = False
            continue
        words.append(raw.text)
        bare_word_last = not raw.quoted
    return Tokens(tuple(words), MappingProxyType(options), tuple(options))


_LIST_SEPARATOR = re.compile(r"[,;]")


def split_list(value: str) -> list[str]:
    """Split a list value on commas or semicolons, trimming items and dropping empty ones.

    'and' is deliberately not a separator: theme and group names contain it
    ("Arts and crafts"). Repeated items are kept once, first occurrence first.
    """
    items = (item.strip() for item in _LIST_SEPARATOR.split(value))
    return list(dict.fromkeys(item for item in items if item))
