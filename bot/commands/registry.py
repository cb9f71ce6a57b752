"""Commands are declared once: name, parameters, roles, where they run and their help.

``!help``, usage lines, the missing-option questions and the near-miss
suggestions are all generated from these declarations (maubot-style), so they
can never disagree with what the parser accepts.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from bot.commands.values import Value


class Role(StrEnum):
    MEMBER = "member"
    GROUP_ADMIN = "group admin"
    MODERATOR = "moderator"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class Where(StrEnum):
    ANY = "any"
    DM = "dm"  # personal data: only ever in a direct message with the bot
    ROOM = "room"  # needs a group room (e.g. registering the room's group)


class CommandError(Exception):
    """A refusal the sender should see: one line saying why and what to do instead."""


class AskFor(Exception):
    """Raised by a handler when an optional parameter turns out to be needed after all."""

    def __init__(self, param: str) -> None:
        super().__init__(param)
        self.param = param


@dataclass(frozen=True)
class Param:
    name: str
    value: Value
    required: bool = True
    positional: bool = False
    help: str = ""
    # The question asked when a required option is missing.
    ask: str | None = None

    def usage(self) -> str:
        shape = self.value.shape
        if len(shape) > 30:  # a long list of choices belongs in !help <command>, not here
            shape = self.name
        text = f"<{self.name}>" if self.positional else f"{self.name}={shape}"
        return text if self.required else f"[{text}]"

    @property
    def question(self) -> str:
        return self.ask or f"What {self.name.replace('_', ' ')}? ({self.value.shape})"


class Args(Mapping[str, Any]):
    """Parsed arguments; missing optional ones read as None."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._values.get(name)


# A handler takes the command's context (bot.commands.context.Context) and its
# arguments. The declarations sit below the context, which names the command it
# runs, so they do not name the context back: the registry stores handlers as
# taking any first argument, and the decorator hands each one back with its own
# signature, so mypy still checks every call a test or feature makes to it.
Handler = Callable[[Any, Args], Awaitable[None]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    handler: Handler
    summary: str
    params: tuple[Param, ...] = ()
    # Anyone may run it when empty; otherwise any one of these roles.
    roles: frozenset[Role] = frozenset()
    where: Where = Where.ANY
    # Carries personal data: redacted once stored, never logged, answered by DM.
    personal: bool = False
    aliases: tuple[tuple[str, ...], ...] = ()
    # Extra free text after the words/positionals, e.g. `!directory warm spaces`.
    rest: str | None = None

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def usage(self, prefix: str = "!") -> str:
        parts = [prefix + self.name, *(p.usage() for p in self.params)]
        if self.rest:
            parts.append(f"[{self.rest}]")
        return " ".join(parts)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass
class Registry:
    commands: dict[tuple[str, ...], Command] = field(default_factory=dict)

    def command(
        self,
        name: str,
        *,
        summary: str,
        params: Sequence[Param] = (),
        roles: Sequence[Role] = (),
        where: Where = Where.ANY,
        personal: bool = False,
        aliases: Sequence[str] = (),
        rest: str | None = None,
    ) -> Callable[[H], H]:
        def register(handler: H) -> H:
            words = tuple(name.split())
            command = Command(
                words=words,
                handler=handler,
                summary=summary,
                params=tuple(params),
                roles=frozenset(roles),
                where=where,
                personal=personal,
                aliases=tuple(tuple(a.split()) for a in aliases),
                rest=rest,
            )
            for key in (words, *command.aliases):
                if key in self.commands:
                    raise ValueError(f"command {' '.join(key)!r} declared twice")
                self.commands[key] = command
            return handler

        return register

    def find(self, words: Sequence[str]) -> tuple[Command, int] | None:
        """The longest declared command that the words start with, and how many words it used."""
        lowered = tuple(w.lower() for w in words)
        for length in range(min(len(lowered), 3), 0, -1):
            command = self.commands.get(lowered[:length])
            if command is not None:
                return command, length
        return None

    def unique(self) -> list[Command]:
        seen: dict[int, Command] = {}
        for command in self.commands.values():
            seen.setdefault(id(command), command)
        return sorted(seen.values(), key=lambda c: c.words)

    def top_words(self) -> set[str]:
        return {key[0] for key in self.commands}

    def subcommands(self, first: str) -> list[Command]:
        return [c for c in self.unique() if c.words[0] == first and len(c.words) > 1]

    def near_miss(self, word: str) -> str | None:
        """A real command word close to a mistyped one (`fundng` -> `funding`), else None."""
        matches = difflib.get_close_matches(word.lower(), sorted(self.top_words()), 1, 0.75)
        return matches[0] if matches else None


# The bot's commands; feature modules add theirs with ``@REGISTRY.command(...)``.
REGISTRY = Registry()
