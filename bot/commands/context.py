"""What a command handler gets: who asked, where, a database session, and ways to answer.

Everything a handler queues (replies, DMs, posts) goes into the outbox inside
the command's own transaction, so effects and messages commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot import prefetch, voice
from bot.commands.deferred import Deferred
from bot.commands.registry import REGISTRY, Command, Registry
from bot.commands.sender import Sender
from bot.dm_reach import cannot_reach_text
from bot.events import Incoming, RoomContext
from bot.host import Host
from bot.redaction import Redaction
from bridges import render
from bridges.capabilities import Limits, limits_for
from storage import outbox
from storage.outbox import Attachment

__all__ = ["Context", "RoomContext", "Sender"]

FILE_FOLLOWS = "(The file follows; a Matrix client shows it, this chat may not.)"


class Context:
    def __init__(
        self,
        app: Host,
        session: AsyncSession,
        message: Incoming,
        room: RoomContext,
        sender: Sender,
        now: datetime,
        command: Command | None = None,
        *,
        registry: Registry = REGISTRY,
        defer_to: Callable[[Context, Deferred], None] | None = None,
    ) -> None:
        self.app = app
        # The commands this bot answers (help and usage lines are generated from it).
        self.registry = registry
        # The router's queue of work to finish after the commit (None: not in a command).
        self._defer_to = defer_to
        self.session = session
        self.message = message
        self.room = room
        self.sender = sender
        self.now = now
        self.command = command
        # Personal answers from a group room go by DM; the room is told so once.
        self.private_replies = False
        self.told_dm = False
        # The personal message this command's answers wait on (bot.redaction), if any.
        self.redaction: Redaction | None = None

    @property
    def tz(self) -> ZoneInfo:
        return self.app.settings.bot.tz

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    @property
    def limits(self) -> Limits:
        """How long a page may be here: IRC shows 3 short lines, WhatsApp far more."""
        return limits_for(self.room.network)

    @property
    def can_dm(self) -> bool:
        """False for someone the bot knows its DMs do not reach (through their bridge)."""
        return not self.app.dm_reach.cannot_reach(self.sender.user_id, self.now)

    @property
    def confirm_privately(self) -> bool | None:
        """``private=`` for a reply that only confirms what the sender just asked for in the
        room: as usual (by DM) where a DM reaches them, else in the room, where it tells
        nothing they did not say themselves (an IRC person's ``!privacy optout``)."""
        return None if self.can_dm else False

    @property
    def prefix(self) -> str:
        return self.app.settings.bot.prefix

    def moderates(self, area_code: str) -> bool:
        """True when the sender moderates this area or an area containing it."""
        areas = self.app.areas
        return any(
            code == area_code or (code in areas and area_code in areas
                                  and areas.contains(code, area_code))
            for code in self.sender.moderated
        )

    async def room_members(self) -> dict[str, str | None]:
        """Who is in this room: read before the command's transaction (bot.prefetch)."""
        return await prefetch.members(self.app, self.room.room_id)

    def defer(self, job: Deferred) -> None:
        """Finish this command with ``job`` after its transaction commits (slow work,
        network reads): it runs off the sync loop and outside any transaction, and its
        replies are committed with the record that the command was handled."""
        if self._defer_to is None:
            raise RuntimeError("defer() outside a command")
        self._defer_to(self, job)

    async def reply(
        self,
        body: str,
        html: str | None = None,
        *,
        attachment: Attachment | None = None,
        private: bool | None = None,
    ) -> None:
        """Answer the sender: in the room, or by DM when the answer is personal.

        Long answers are paged: the first page now, the rest on ``!more``.
        """
        private = self.private_replies if private is None else private
        where = self.sender.user_id if private and not self.room.is_direct else self.room.room_id
        limits = self.limits if where == self.room.room_id else limits_for(None)
        if attachment is not None and not limits.files:
            # A file message could take the words down with it on the far side: the
            # words go as text, saying the file follows, and the file after them.
            await self.reply(f"{body} {FILE_FOLLOWS}", html=None, private=private)
            await self._queue(room_id=self.room.room_id, body=attachment.name,
                              attachment=attachment)
            return
        if limits.plain_only:
            body = render.flatten(body)
        if private and not self.room.is_direct:
            if self.can_dm:
                body = self.app.pager.first_page(where, self.sender.user_id, body, limits,
                                                 self.prefix)
            await self.answer_by_dm(body, html=html, attachment=attachment)
            return
        body = self.app.pager.first_page(where, self.sender.user_id, body, limits, self.prefix)
        await self._queue(
            kind="private" if self.room.is_direct else "reply",
            room_id=self.room.room_id,
            body=body,
            html=html,
            attachment=attachment,
            extra={"m.relates_to": {"m.in_reply_to": {"event_id": self.message.event_id}}},
        )

    async def answer_by_dm(self, body: str, *, html: str | None = None, kind: str = "private",
                           attachment: Attachment | None = None,
                           shared_room: bool | None = None) -> bool:
        """A personal answer to the sender by DM, from any room; False if none can reach them.

        The room hears once what is true: that a DM was sent (or, to someone on a bridge,
        that they were invited to one), or that no DM reaches them and what works instead.
        Nothing personal is ever put in the room in its place. ``shared_room`` says the
        room is not the sender's own DM (default: unless it is a direct room).
        """
        shared = not self.room.is_direct if shared_room is None else shared_room
        if shared and not self.told_dm:
            self.told_dm = True
            text = (self.app.dm_reach.told_text(self.sender.user_id) if self.can_dm
                    else cannot_reach_text(self.app.transport.user_id))
            await self._queue(room_id=self.room.room_id, body=text)
            if self.can_dm:
                await self._watch_dm()
        if shared and not self.can_dm:
            return False
        await self._queue(to_user=self.sender.user_id, body=body, html=html,
                          attachment=attachment, kind=kind)
        return True

    async def _watch_dm(self) -> None:
        """Watched from this command's transaction, so a restart re-arms it (bot.dm_reach)."""
        committed = await self.app.dm_reach.watch(
            self.session, self.sender.user_id, self.room.room_id, self.now)
        if committed is None:
            return

        async def watching() -> None:
            committed()

        self.app.after_commit(watching)

    async def dm(self, user_id: str, body: str, *, kind: str = "dm",
                 attachment: Attachment | None = None, dedupe_key: str | None = None) -> None:
        await self._queue(to_user=user_id, body=body, kind=kind, attachment=attachment,
                          dedupe_key=dedupe_key)

    async def post(
        self,
        room_id: str,
        body: str,
        *,
        kind: str = "notice",
        dedupe_key: str | None = None,
        own_post: bool = True,
        not_before: datetime | None = None,
    ) -> bool:
        """A post the bot makes on its own (notices, cross-posts); False if a duplicate.

        Own posts follow the room's daily cap and night hours (bot.voice).
        """
        if own_post:
            row = await voice.enqueue_own_post(
                self.session, now=self.now, tz=self.tz, room_id=room_id, body=body, kind=kind,
                dedupe_key=dedupe_key, not_before=not_before,
            )
        else:
            row = await outbox.enqueue(
                self.session, now=self.now, room_id=room_id, body=body, kind=kind,
                dedupe_key=dedupe_key, not_before=not_before,
            )
        return row is not None

    async def _queue(self, *, kind: str = "reply", extra: Mapping[str, Any] | None = None,
                     **fields: Any) -> None:
        fields["kind"] = kind
        # The worker is woken once the transaction commits (the router's committed()),
        # not now: a pass started before the commit would not see the row.
        held = self.redaction is not None and self.redaction.hold(fields, self.now)
        row = await outbox.enqueue(
            self.session, now=self.now, extra=dict(extra) if extra else None, **fields
        )
        if held and row is not None and self.redaction is not None:
            self.redaction.held.append(row.id)
