"""Subject access and erasure for the backbone's and directory's tables.

Feature modules answer for their own tables with ``export_person`` and
``forget_person``; this module does the same for tables whose modules have
none: role grants, pending prompts, the outbox (messages to the person and
messages naming them), the person's direct-message room, room-tree set-ups they
asked for, group registrations and the funding records people posted, decided
or subscribed to.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.funding import FundingNotice, FundingSource, FundingSubscription
from storage.groups import Group
from storage.models import FORGOTTEN, BotState, OutboxMessage, PendingPrompt, RoleGrant
from storage.outbox import person_key
from storage.state import DIRECT_ROOM_KEY
from storage.tree import SetupRun, TreeRoom


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _naming(user_id: str) -> ColumnElement[bool]:
    """Outbox rows to someone else whose text or mentions name ``user_id``."""
    return or_(OutboxMessage.to_user.is_(None), OutboxMessage.to_user != user_id) & or_(
        OutboxMessage.body.contains(user_id, autoescape=True),
        OutboxMessage.html.contains(user_id, autoescape=True),
        cast(OutboxMessage.extra, Text).contains(user_id, autoescape=True))


def without(value: Any, user_id: str) -> Any:
    """``value`` (text or JSON-ready data) with the person's id replaced."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(user_id, FORGOTTEN)
    mentions = value.get("m.mentions") if isinstance(value, dict) else None
    if isinstance(mentions, dict) and isinstance(mentions.get("user_ids"), list):
        # A mention of nobody in particular is no mention: drop it rather than rename it.
        kept = [u for u in mentions["user_ids"] if u != user_id]
        value = {**value, "m.mentions": {**mentions, "user_ids": kept}}
    return json.loads(json.dumps(value).replace(json.dumps(user_id)[1:-1], FORGOTTEN))


async def export_person(session: AsyncSession, user_id: str) -> dict[str, Any]:
    grants = await session.scalars(select(RoleGrant).where(RoleGrant.user_id == user_id))
    prompts = await session.scalars(select(PendingPrompt).where(PendingPrompt.user_id == user_id))
    sent_to = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_user == user_id).order_by(OutboxMessage.id))
    naming = await session.scalars(select(OutboxMessage).where(
        _naming(user_id) | OutboxMessage.dedupe_key.contains(user_id, autoescape=True)
        | OutboxMessage.dedupe_key.contains(person_key(user_id)))
        .order_by(OutboxMessage.id))
    made = await session.scalars(select(RoleGrant).where(RoleGrant.granted_by == user_id))
    direct = await session.get(BotState, DIRECT_ROOM_KEY + user_id)
    setups = await session.scalars(
        select(SetupRun).where(SetupRun.requested_by == user_id).order_by(SetupRun.id))
    groups = await session.scalars(select(Group).where(
        or_(Group.registered_by == user_id, Group.verified_by == user_id)).order_by(Group.id))
    notices = await session.scalars(select(FundingNotice).where(
        or_(FundingNotice.posted_by == user_id, FundingNotice.decided_by == user_id))
        .order_by(FundingNotice.id))
    subs = await session.scalars(
        select(FundingSubscription).where(FundingSubscription.created_by == user_id))
    sources = await session.scalars(select(FundingSource).where(FundingSource.added_by == user_id))
    moderated = [r for r in await session.scalars(select(TreeRoom)) if user_id in r.moderators]
    return {
        "role_grants": [{"role": g.role, "area": g.area_code or None, "granted_by": g.granted_by,
                         "granted_at": _when(g.granted_at)} for g in grants],
        "pending_questions": [{"room_id": p.room_id, "command": p.command_line,
                               "expires_at": _when(p.expires_at)} for p in prompts],
        "messages_to_you": [{"kind": m.kind, "body": m.body, "file": m.file_name,
                             "queued_at": _when(m.created_at), "sent_at": _when(m.sent_at)}
                            for m in sent_to],
        "messages_naming_you": [{"kind": m.kind, "room_id": m.room_id, "body": m.body,
                                 "queued_at": _when(m.created_at), "sent_at": _when(m.sent_at)}
                                for m in naming],
        "role_grants_you_made": [{"user_id": g.user_id, "role": g.role,
                                  "area": g.area_code or None, "granted_at": _when(g.granted_at)}
                                 for g in made],
        "direct_room_with_you": direct.value if direct is not None else None,
        "room_setups_you_asked_for": [{"area": r.area_code, "requested_at": _when(r.requested_at)}
                                      for r in setups],
        "groups": [{"group": g.ref, "name": g.name, "registered": g.registered_by == user_id,
                    "verified": g.verified_by == user_id, "at": _when(g.registered_at)}
                   for g in groups],
        "funding_notices": [{"notice": n.ref, "title": n.title, "posted": n.posted_by == user_id,
                             "decided": n.decided_by == user_id} for n in notices],
        "funding_subscriptions": [{"room_id": s.room_id, "created_at": _when(s.created_at)}
                                  for s in subs],
        "funding_sources": [{"source": s.ref, "url": s.url} for s in sources],
        "rooms_you_moderate": [r.alias for r in moderated],
    }


async def forget_person(session: AsyncSession, user_id: str) -> int:
    """Delete the person's grants, questions, unsent messages and direct-room record;
    elsewhere replace their id (in messages to others that name them, too).

    Groups, notices, subscriptions and sources belong to the groups and stay,
    without who made them. Sent messages to them are emptied (the row stays so
    a resend after a crash is still recognised). Moderator power in tree rooms
    is a role's effect and is taken away by revoking the role, not here.
    """
    changed = 0
    # Messages to others that name the person keep their sense, without the id.
    for row in await session.scalars(select(OutboxMessage).where(_naming(user_id))):
        row.body = without(row.body, user_id)
        row.html = without(row.html, user_id)
        row.extra = without(row.extra, user_id)
        changed += 1
    # Dedupe keys may name the person (by digest, or by id if written before digests):
    # keep them unique, without the person.
    keyed = await session.scalars(select(OutboxMessage).where(
        OutboxMessage.dedupe_key.contains(user_id, autoescape=True)
        | OutboxMessage.dedupe_key.contains(person_key(user_id))))
    for row in keyed:
        row.dedupe_key = f"forgotten:{row.id}"
        changed += 1
    for stmt in (
        delete(RoleGrant).where(RoleGrant.user_id == user_id),
        delete(PendingPrompt).where(PendingPrompt.user_id == user_id),
        delete(BotState).where(BotState.key == DIRECT_ROOM_KEY + user_id),
        delete(OutboxMessage).where(OutboxMessage.to_user == user_id,
                                    OutboxMessage.sent_at.is_(None)),
        update(OutboxMessage).where(OutboxMessage.to_user == user_id).values(
            to_user=FORGOTTEN, body="", html=None, extra=None, file_name=None, file_mime=None,
            file_data=None),
    ):
        changed += int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]
    replacements: list[Any] = [
        RoleGrant.granted_by, Group.registered_by, Group.verified_by, FundingNotice.posted_by,
        FundingNotice.decided_by, FundingSubscription.created_by, FundingSource.added_by,
        SetupRun.requested_by,
    ]
    for column in replacements:
        result = await session.execute(
            update(column.class_).where(column == user_id).values({column.key: FORGOTTEN}))
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return changed
