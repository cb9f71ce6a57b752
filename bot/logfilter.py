"""Keep what people write out of the logs, whatever a library or a traceback prints.

Logs are read by operators, shipped to log services and kept longer than the
database's retention. Our own code logs ids, not text, but a library may log an
event's content and a traceback may show a value. :class:`RedactBodies` rewrites
each record before any handler formats it: message bodies and notes in
event-like text (``"body": "..."``, ``body='...'``), and command lines (``!word
...``), keeping the command word so the log still says what happened.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# Keys whose values are what people wrote.
_KEYS = r"body|formatted_body|text|note|notes|filename|displayname"
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_KEYS})["']?\s*[:=]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)


# A room id from room version 12 on: "!" and the create event's hash, 43 characters of
# unpadded URL-safe base64, with no ":server" after it.
_ROOM_ID_V12 = r"(?![A-Za-z0-9_-]{43}(?![A-Za-z0-9_-]))"


def _command_line(prefix: str) -> re.Pattern[str]:
    """A command as typed: the prefix, a word, then the rest of that line.

    Room ids are not commands: an old one (``!opaque:server``) because the word
    must end at a space, a new one (``!`` and 43 characters) by its shape.
    """
    guard = _ROOM_ID_V12 if prefix == "!" else ""
    return re.compile(rf"(?<![\w{re.escape(prefix)}]){re.escape(prefix)}{guard}"
                      r"(?P<word>[A-Za-z]\w*)(?P<rest>[ \t][^\n]*)?(?![\w:])")


class RedactBodies(logging.Filter):
    """Rewrites records in place; never drops one (an operator still sees that it happened)."""

    def __init__(self, prefix: str = "!") -> None:
        super().__init__()
        self._prefix = prefix
        self._command = _command_line(prefix)

    def redact(self, text: str) -> str:
        text = _KEY_VALUE.sub(lambda m: f'{m.group("key")}"{REDACTED}"', text)
        return self._command.sub(
            lambda m: m.group(0) if not (m.group("rest") or "").strip()
            else f"{self._prefix}{m.group('word')} {REDACTED}", text
        )

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: show its template, never its arguments
            message = str(record.msg)
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install(prefix: str = "!", logger: logging.Logger | None = None) -> RedactBodies:
    """Put the filter on every handler of ``logger`` (the root logger by default).

    Handler filters see records from every logger that propagates to it, which a
    filter on the root logger itself would not.
    """
    target = logger or logging.getLogger()
    found = next((f for h in target.handlers for f in h.filters if isinstance(f, RedactBodies)),
                 None)
    redact = found or RedactBodies(prefix)
    for handler in target.handlers:
        if redact not in handler.filters:
            handler.addFilter(redact)
    return redact
