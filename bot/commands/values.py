"""Parameter value types: each turns what a person typed into a typed value, or says why not.

A parse either returns a value, raises :class:`BadValue` (one line: what was
wrong and the forms accepted) or raises :class:`NeedsChoice` (the text could
mean several things; the person picks from a numbered list, never a guess).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit

import bot.commands.when as when
from bot.commands.lexer import split_list

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bot.host import Host

USER_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[a-zA-Z0-9.\-:\[\]]+$")


class BadValue(ValueError):
    """str(e) is one line for the sender; the dispatcher prefixes the option name."""


class NeedsChoice(Exception):
    def __init__(self, question: str, options: Sequence[tuple[str, str]]) -> None:
        """``options`` are (label shown, canonical text that parses to exactly that choice)."""
        super().__init__(question)
        self.question = question
        self.options = list(options)


class _Someone(Protocol):
    @property
    def user_id(self) -> str: ...


class ParseContext(Protocol):
    """What a value parser may read of the command it parses for: the deployment's
    areas, themes and time zone, the date, who asks and who else is in the room.
    (``bot.commands.context.Context`` is one; parsers need no more, and the command
    framework needs no import circle.)"""

    @property
    def app(self) -> Host: ...

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def today(self) -> date: ...

    @property
    def prefix(self) -> str: ...

    @property
    def sender(self) -> _Someone: ...

    async def room_members(self) -> dict[str, str | None]: ...


class Value:
    shape: ClassVar[str] = "text"

    async def parse(self, raw: str, ctx: ParseContext) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Value):
    max_length: int = 300
    shape: ClassVar[str] = '"text"'

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        text = raw.strip()
        if not text:
            raise BadValue("is empty; put the text in quotes, e.g. \"Warm spaces\"")
        if len(text) > self.max_length:
            raise BadValue(f"is too long ({len(text)} characters; at most {self.max_length})")
        return text


@dataclass(frozen=True)
class Integer(Value):
    minimum: int = 0
    maximum: int = 1_000_000
    shape: ClassVar[str] = "number"

    async def parse(self, raw: str, ctx: ParseContext) -> int:
        cleaned = raw.strip().replace(",", "")
        if not re.fullmatch(r"[+-]?\d+", cleaned):
            raise BadValue(f"should be a whole number, not {raw!r}")
        number = int(cleaned)
        if not self.minimum <= number <= self.maximum:
            raise BadValue(f"should be between {self.minimum} and {self.maximum}")
        return number


@dataclass(frozen=True)
class Decimal(Value):
    minimum: float = 0
    maximum: float = 1_000_000
    shape: ClassVar[str] = "number"

    async def parse(self, raw: str, ctx: ParseContext) -> float:
        cleaned = raw.strip().replace(",", "").removesuffix("h").removesuffix("hrs")
        try:
            number = float(cleaned)
        except ValueError:
            raise BadValue(f"should be a number like 2.5, not {raw!r}") from None
        if not self.minimum <= number <= self.maximum:
            raise BadValue(f"should be between {self.minimum:g} and {self.maximum:g}")
        return number


@dataclass(frozen=True)
class Choice(Value):
    options: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> str:  # type: ignore[override]
        return "|".join(self.options)

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        key = raw.strip().lower().replace(" ", "-").replace("_", "-")
        for option in self.options:
            if key == option.lower().replace("_", "-"):
                return option
        if key in self.aliases:
            return self.aliases[key]
        raise BadValue(f"should be one of {', '.join(self.options)} (not {raw!r})")


YES = {"yes", "y", "true", "on", "1", "ok"}
NO = {"no", "n", "false", "off", "0"}


@dataclass(frozen=True)
class YesNo(Value):
    shape: ClassVar[str] = "yes|no"

    async def parse(self, raw: str, ctx: ParseContext) -> bool:
        key = raw.strip().lower()
        if key in YES:
            return True
        if key in NO:
            return False
        raise BadValue(f"should be yes or no (not {raw!r})")


@dataclass(frozen=True)
class ListOf(Value):
    item: Value
    max_items: int = 20

    @property
    def shape(self) -> str:  # type: ignore[override]
        return f"{self.item.shape},..."

    async def parse(self, raw: str, ctx: ParseContext) -> list[Any]:
        items = split_list(raw)
        if not items:
            raise BadValue("is empty; give one or more, separated by commas")
        if len(items) > self.max_items:
            raise BadValue(f"has {len(items)} items; at most {self.max_items}")
        values = []
        for index, item in enumerate(items):
            try:
                value = await self.item.parse(item, ctx)
            except NeedsChoice as choice:
                # The choice settles one item; the answer keeps the rest of the list.
                raise NeedsChoice(choice.question, [
                    (label, ",".join([*items[:index], canonical, *items[index + 1:]]))
                    for label, canonical in choice.options
                ]) from None
            if value not in values:
                values.append(value)
        return values


def _choose(ambiguous: when.Ambiguous[Any], label: Any, canonical: Any) -> NeedsChoice:
    return NeedsChoice(
        ambiguous.question, [(label(choice), canonical(choice)) for choice in ambiguous.choices]
    )


@dataclass(frozen=True)
class DateValue(Value):
    shape: ClassVar[str] = "date"

    async def parse(self, raw: str, ctx: ParseContext) -> date:
        try:
            result = when.parse_date(raw, today=ctx.today)
        except when.WhenError as exc:
            raise BadValue(str(exc)) from None
        if isinstance(result, when.Ambiguous):
            raise _choose(result, when.describe_date, date.isoformat)
        return result


@dataclass(frozen=True)
class Deadline(Value):
    shape: ClassVar[str] = "date"

    async def parse(self, raw: str, ctx: ParseContext) -> datetime:
        try:
            result = when.parse_deadline(raw, today=ctx.today, tz=ctx.tz)
        except when.WhenError as exc:
            raise BadValue(str(exc)) from None
        if isinstance(result, when.Ambiguous):
            raise _choose(
                result,
                lambda d: when.describe_date(d.date()),
                lambda d: d.strftime("%Y-%m-%d %H:%M"),
            )
        return result


@dataclass(frozen=True)
class Window(Value):
    shape: ClassVar[str] = '"sat 10am-1pm"'

    async def parse(self, raw: str, ctx: ParseContext) -> tuple[datetime, datetime]:
        try:
            result = when.parse_window(raw, today=ctx.today, tz=ctx.tz)
        except when.WhenError as exc:
            raise BadValue(str(exc)) from None
        if isinstance(result, when.Ambiguous):
            raise _choose(
                result,
                lambda w: f"{when.describe_date(w[0].date())} {w[0]:%H:%M}-{w[1]:%H:%M}",
                lambda w: f"{w[0]:%Y-%m-%d %H:%M}-{w[1]:%H:%M}",
            )
        return result


@dataclass(frozen=True)
class AreaValue(Value):
    """A GSS code or a name; ``all`` means the whole area file when allowed."""

    allow_all: bool = False
    shape: ClassVar[str] = "area"

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        areas = ctx.app.areas
        if self.allow_all and raw.strip().lower() in {"all", "everywhere", "county"}:
            return areas.root.code
        found = areas.resolve(raw)
        if not found:
            raise BadValue(
                f"{raw!r} is not an area I know; give a GSS code (E04001668) or a name (Wisbech)"
            )
        if len(found) > 1:
            raise NeedsChoice(
                f"{raw!r} could be several places. Which did you mean?",
                [(areas.label(a.code), a.code) for a in found[:9]],
            )
        return found[0].code


@dataclass(frozen=True)
class ThemeValue(Value):
    shape: ClassVar[str] = "theme"

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        from config.themes import resolve_theme

        theme = resolve_theme(raw, ctx.app.themes)
        if theme is None:
            known = ", ".join(t.key for t in ctx.app.themes)
            raise BadValue(f"{raw!r} is not a theme; use one of: {known}")
        return theme.key


@dataclass(frozen=True)
class Url(Value):
    shape: ClassVar[str] = "https://..."

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        text = raw.strip().strip("<>")
        parts = urlsplit(text)
        if parts.scheme not in {"http", "https"} or "." not in parts.netloc:
            raise BadValue(f"should be a web link starting https:// (not {raw!r})")
        return text


@dataclass(frozen=True)
class Ref(Value):
    """A short id with its letter, e.g. F12; a bare number is accepted too."""

    letter: str

    @property
    def shape(self) -> str:  # type: ignore[override]
        return f"{self.letter}<n>"

    async def parse(self, raw: str, ctx: ParseContext) -> int:
        match = re.fullmatch(rf"(?i){self.letter}?\s*#?(\d{{1,9}})", raw.strip())
        if not match:
            raise BadValue(f"should be an id like {self.letter}12 (not {raw!r})")
        return int(match.group(1))


@dataclass(frozen=True)
class Money(Value):
    """An amount or range in pounds: 500, £5k, 500-5000, "up to 10,000"."""

    shape: ClassVar[str] = "min-max"

    async def parse(self, raw: str, ctx: ParseContext) -> tuple[int | None, int | None]:
        text = raw.strip().lower().replace("£", "").replace(",", "").replace(" ", "")
        upto = text.startswith("upto")
        text = text.removeprefix("upto")
        parts = text.split("-") if "-" in text else [text]
        if len(parts) > 2 or not all(parts):
            raise BadValue(f"should be an amount or a range like 500-5000 (not {raw!r})")
        amounts = [_pounds(p, raw) for p in parts]
        if len(amounts) == 1:
            return (None, amounts[0]) if upto else (amounts[0], amounts[0])
        low, high = amounts
        if low > high:
            raise BadValue(f"the smaller amount goes first: {high}-{low}")
        return low, high


def _pounds(text: str, raw: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", text)
    if not match:
        raise BadValue(f"should be an amount or a range like 500-5000 (not {raw!r})")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
    return round(float(match.group(1)) * scale)


@dataclass(frozen=True)
class Person(Value):
    """A Matrix id, or a display name that is unique in the room (WhatsApp users can't type ids)."""

    shape: ClassVar[str] = "person"

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        text = raw.strip()
        if text.lower() in {"me", "myself"}:
            return ctx.sender.user_id
        if text.startswith("@") and ":" in text:
            if not USER_ID.match(text.lower()):
                raise BadValue(f"{text!r} is not a Matrix id like @name:server")
            return text
        members = await ctx.room_members()
        wanted = text.lstrip("@").casefold()
        matches = [
            user for user, name in members.items() if (name or "").casefold() == wanted
        ] or [user for user in members if user[1:].split(":")[0].casefold() == wanted]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise BadValue(
                f"nobody called {text!r} is in this room; use their Matrix id, "
                "or reply to one of their messages"
            )
        raise NeedsChoice(
            f"More than one {text!r} is here. Which?", [(user, user) for user in matches]
        )
