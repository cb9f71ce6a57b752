"""From a message body to a bound command: finding it, binding its arguments, rendering help."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.commands.context import Context, Sender
from bot.commands.lexer import Tokens, tokenize
from bot.commands.registry import Args, Command, CommandError, Param, Registry, Where
from bot.commands.values import BadValue, NeedsChoice, Person

# "Name: !cmd" as relay bridges write it; the name never grants anything.
_RELAY = re.compile(r"^(?P<name>[^:\n]{1,64}?):\s*(?P<rest>\S.*)$")


@dataclass(frozen=True)
class CommandLine:
    text: str  # after the prefix, first line only
    relayed: bool


def command_line(body: str, prefix: str) -> CommandLine | None:
    """The command in a message, if it is one: its first line must start with the prefix."""
    stripped = body.lstrip()
    lines = stripped.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith(prefix) and len(first) > len(prefix):
        return CommandLine(first[len(prefix) :], relayed=False)
    match = _RELAY.match(first)
    if match and match["rest"].startswith(prefix) and len(match["rest"]) > len(prefix):
        return CommandLine(match["rest"][len(prefix) :], relayed=True)
    return None


# Answers given to the bot's questions, by option name; None: the value typed was bad
# and is to be asked for again.
Overrides = dict[str, str | None]


class Missing(Exception):
    def __init__(self, param: Param) -> None:
        super().__init__(param.name)
        self.param = param


class Choose(Exception):
    def __init__(self, param: Param, choice: NeedsChoice) -> None:
        super().__init__(param.name)
        self.param = param
        self.choice = choice


class FixThenAsk(Exception):
    """Values that were bad (``problems``: one line naming each) and, in the same reply, the
    question for a missing option (``then``). The bad ones are asked for again after it
    (``bad``: their names), so nothing typed wrong is ever used, nor silently dropped."""

    def __init__(self, problems: str, bad: list[str], then: Missing | Choose) -> None:
        super().__init__(problems)
        self.problems = problems
        self.bad = bad
        self.then = then


async def bind(
    command: Command,
    tokens: Tokens,
    consumed: int,
    ctx: Context,
    overrides: Mapping[str, str | None] | None = None,
) -> Args:
    """Parse every parameter and report every problem at once.

    Bad values alone: CommandError naming each, with the usage. A missing option or
    a choice to make: Missing or Choose (the first, in the order of the parameters).
    Both: FixThenAsk, so the person hears about the bad value now rather than after
    answering the question. An override of None is a value that was bad before: it is
    asked for again, whether or not the option is required.
    """
    overrides = overrides or {}
    words = list(tokens.words[consumed:])
    known = {p.name for p in command.params}
    for key in tokens.options:
        if key not in known:
            raise CommandError(_unknown_option(command, key, ctx.prefix))
    values: dict[str, object] = {}
    raw_values: dict[str, str | None] = {}
    positional = [p for p in command.params if p.positional and p.name not in tokens.options]
    replied_to = ctx.app.sender_of(ctx.message.reply_to) if ctx.message.reply_to else None
    if replied_to and len(words) < len(positional):
        # "!role grant coordinator" sent as a reply names the person replied to
        # (WhatsApp users cannot type @user:server).
        person = next((p for p in positional if isinstance(p.value, Person)), None)
        if person is not None:
            raw_values[person.name] = replied_to
            positional.remove(person)
    for param in command.params:
        if param in positional and words:
            raw_values[param.name] = words.pop(0)
        elif param.name in tokens.options:
            raw_values[param.name] = tokens.options[param.name]
    raw_values.update(overrides)
    if words:
        if command.rest is None:
            raise CommandError(
                f"I didn't expect {' '.join(words)!r}. Usage: {command.usage(ctx.prefix)}"
            )
        values["rest"] = " ".join(words)
    problems: list[str] = []
    bad: list[str] = []
    question: Missing | Choose | None = None
    for param in command.params:
        raw = raw_values.get(param.name)
        if raw is None and param.name in overrides:  # it was bad: ask for it now
            question = question or Missing(param)
            continue
        if raw is None or (raw.strip() == "" and param.required):
            if param.required:
                question = question or Missing(param)
            values[param.name] = None
            continue
        try:
            values[param.name] = await param.value.parse(raw, ctx)
        except BadValue as exc:
            problems.append(f"{param.name}: {str(exc).rstrip('.')}.")
            bad.append(param.name)
        except NeedsChoice as choice:
            question = question or Choose(param, choice)
    if problems and question is not None:
        raise FixThenAsk(" ".join(problems), bad, question)
    if problems:
        raise CommandError(f"{' '.join(problems)} Usage: {command.usage(ctx.prefix)}")
    if question is not None:
        raise question
    return Args(values)


def _unknown_option(command: Command, key: str, prefix: str) -> str:
    names = [p.name for p in command.params if not p.positional]
    close = difflib.get_close_matches(key, names, 1, 0.6)
    hint = f" Did you mean {close[0]}=?" if close else ""
    if not names:
        return f"{prefix}{command.name} takes no {key}= option. Usage: {command.usage(prefix)}"
    usage = command.usage(prefix)
    return f"{key}= is not an option of {prefix}{command.name}.{hint} Usage: {usage}"


def parse_tokens(text: str) -> Tokens:
    return tokenize(text)


def allowed_here(command: Command, sender: Sender, is_direct: bool) -> bool:
    if not sender.may(command):
        return False
    return not (command.where is Where.ROOM and is_direct)


def help_lines(registry: Registry, sender: Sender, is_direct: bool, prefix: str,
               topic: str | None = None) -> list[str]:
    """One line per command this sender may run in this room; a topic lists its subcommands."""
    usable = [c for c in registry.unique() if allowed_here(c, sender, is_direct)]
    if topic:
        topic = topic.lower().lstrip(prefix)
        chosen = [c for c in usable if c.words[0] == topic or c.name == topic]
        return [_line(c, prefix, is_direct) for c in chosen]
    by_word: dict[str, list[Command]] = {}
    for command in usable:
        by_word.setdefault(command.words[0], []).append(command)
    lines = []
    for word, commands in sorted(by_word.items()):
        if len(commands) == 1:
            lines.append(_line(commands[0], prefix, is_direct))
            continue
        subs = ", ".join(" ".join(c.words[1:]) or "(alone)" for c in commands)
        lines.append(f"{prefix}{word} {subs} (see {prefix}help {word})")
    return lines


def help_words(registry: Registry, sender: Sender, is_direct: bool, prefix: str) -> str:
    """The commands this sender may run here as one list, for rooms that show three lines."""
    words = sorted({c.words[0] for c in registry.unique() if allowed_here(c, sender, is_direct)})
    return (f"Commands here: {', '.join(prefix + word for word in words)}.\n"
            f"{prefix}help <command> says what one does.")


def _line(command: Command, prefix: str, is_direct: bool) -> str:
    where = " (by DM)" if command.where is Where.DM and not is_direct else ""
    return f"{command.usage(prefix)}: {command.summary}{where}"
