"""Questions the bot has open: a missing option asked for, or a choice offered.

A command that lacks a required value is not refused: the bot asks, and the
person's next plain message in that place is the answer (or ``!cancel``). The
question waits in the database, except for commands carrying personal data,
whose questions stay in memory only and are lost on a restart (asked again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.aftercommit import after_commit
from bot.commands.context import Context
from bot.commands.dispatch import Choose, CommandLine, Missing, Overrides
from bot.commands.registry import CommandError
from bot.events import Incoming
from storage import prompts
from storage.engine import Database

PROMPT_TTL = timedelta(minutes=10)


@dataclass
class Question:
    command_line: str
    waiting_for: dict[str, Any]
    expires_at: datetime

    @property
    def relayed(self) -> bool:
        return bool(self.waiting_for.get("relayed"))

    def answered(self, body: str, prefix: str) -> Overrides:
        """The command's options with this answer filled in; a CommandError saying
        what to send instead when it is not a valid choice."""
        waiting = self.waiting_for
        answer = body.strip().splitlines()[0].strip() if body.strip() else ""
        overrides: Overrides = dict(waiting.get("overrides") or {})
        if waiting["kind"] == "choice":
            options = waiting["options"]
            number = answer.rstrip(".)").strip()
            if not number.isdigit() or not 1 <= int(number) <= len(options):
                raise CommandError(f"Reply with a number from 1 to {len(options)}, "
                                   f"or {prefix}cancel.")
            overrides[waiting["param"]] = options[int(number) - 1]
        else:
            overrides[waiting["param"]] = answer
        return overrides


Key = tuple[str, str]  # (room, person)


def _after(before: str, text: str) -> str:
    return f"{before}\n{text}" if before else text


class Questions:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Prompts of commands carrying personal data stay in memory, never in the database.
        self._private: dict[Key, Question] = {}
        # (room, sender) pairs with a question open in the database; loaded on first use.
        self._waiting: set[Key] | None = None

    async def may_be_answering(self, message: Incoming) -> bool:
        """Whether a plain message could be the answer to a question the bot asked."""
        key = (message.room_id, message.sender)
        if key in self._private:
            return True
        if self._waiting is None:
            async with self.db.transaction() as session:
                await self._load_waiting(session)
        return self._waiting is not None and key in self._waiting

    async def ask(self, ctx: Context, line: CommandLine, overrides: Overrides | None,
                  question: Missing | Choose, *, before: str = "") -> None:
        """Ask for a missing option or offer a numbered choice; ``before`` (what was wrong
        with other values) leads the same reply, so it is heard before the answer."""
        if isinstance(question, Missing):
            await self.ask_missing(ctx, line, overrides, question.param.name, before=before)
        else:
            await self.ask_choice(ctx, line, overrides, question, before=before)

    async def ask_missing(self, ctx: Context, line: CommandLine, overrides: Overrides | None,
                          name: str, *, before: str = "") -> None:
        assert ctx.command is not None
        param = ctx.command.param(name)
        question = param.question if param else f"What {name}?"
        await self._ask(ctx, line, overrides or {}, {"kind": "missing", "param": name})
        await ctx.reply(_after(before, f"{question} (or {ctx.prefix}cancel)"))

    async def ask_choice(self, ctx: Context, line: CommandLine, overrides: Overrides | None,
                         choose: Choose, *, before: str = "") -> None:
        options = choose.choice.options
        await self._ask(ctx, line, overrides or {}, {
            "kind": "choice", "param": choose.param.name,
            "options": [canonical for _, canonical in options],
        })
        numbered = "\n".join(f"{i}. {label}" for i, (label, _) in enumerate(options, 1))
        await ctx.reply(_after(before, (
            f"{choose.choice.question}\n{numbered}\n"
            f"Reply with a number (1-{len(options)}), or {ctx.prefix}cancel."
        )))

    async def _ask(self, ctx: Context, line: CommandLine, overrides: Overrides,
                   waiting: dict[str, Any]) -> None:
        waiting = {**waiting, "overrides": overrides, "relayed": line.relayed}
        expires = ctx.now + PROMPT_TTL
        key = (ctx.room.room_id, ctx.sender.user_id)
        if ctx.command is not None and ctx.command.personal:
            self._private[key] = Question(line.text, waiting, expires)
        else:
            await prompts.put(ctx.session, *key, line.text, waiting, expires)
            if self._waiting is None:
                await self._load_waiting(ctx.session)  # the one just put among them
            known = self._waiting
            assert known is not None
            known.add(key)

            async def note() -> None:  # again after a cancel's forget of this commit
                known.add(key)

            after_commit(note)

    async def open(self, session: AsyncSession, key: Key,
                   now: datetime) -> tuple[Question | None, bool]:
        """The question open for this person here, and whether it is a private one
        (its answer carries personal data, so it must leave the room)."""
        private = self._private.get(key)
        if private is not None and private.expires_at <= now:
            del self._private[key]
            private = None
        if private is not None:
            return private, True
        row = await prompts.get(session, *key, now)
        if row is None:
            return None, False
        return Question(row.command_line, row.waiting_for, row.expires_at), False

    async def cancel(self, session: AsyncSession, room_id: str, user_id: str) -> bool:
        key = (room_id, user_id)
        question = self._private.get(key)
        if question is not None:
            # Dropped once the command commits: one rolled back (to read from the server
            # first, or to try again) is run again and must still find its question.
            async def drop() -> None:
                if self._private.get(key) is question:
                    del self._private[key]

            after_commit(drop)
        private = question is not None
        if self._waiting is None:
            await self._load_waiting(session)
        waiting = self._waiting
        if waiting is None or key not in waiting:
            # Every question put since the load is in the set: none to clear, and no
            # statement spent on finding that out (every command cancels).
            return private

        async def forget() -> None:  # after the commit: one rolled back still has it
            waiting.discard(key)

        after_commit(forget)
        return await prompts.clear(session, room_id, user_id) or private

    async def _load_waiting(self, session: AsyncSession) -> None:
        """Load who has a question open; merged, as two commands may load at once."""
        loaded = await prompts.waiting(session)
        self._waiting = loaded if self._waiting is None else self._waiting | loaded
