"""!privacy: what is recorded, opting out and in, a copy of everything, and erasure.

Export and erasure cover every table by discovery: any storage module with
``export_person(session, user_id, ...)`` or ``forget_person(session, user_id, ...)``
is called, so a new feature's tables are covered by adding those two functions.
Keyword arguments they declare from ``pseudonym`` and ``now`` are passed in.
"""

from __future__ import annotations

import inspect
import json
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, AskFor, CommandError, Param, Where
from bot.commands.values import YesNo
from bot.features.intake import flow_secret, intake_of
from bot.scheduler import Job
from storage import flow, mentions
from storage.engine import Database
from storage.outbox import Attachment

if TYPE_CHECKING:
    from bot.host import Host

log = logging.getLogger(__name__)

EXPORT_KIND = "privacy-export"
PURGE_EVERY = timedelta(hours=1)
SKIP_MODULES = {"all_models", "revision"}

PersonFunction = Callable[..., Awaitable[Any]]


def person_functions(name: str) -> list[tuple[str, PersonFunction]]:
    """Every storage module's function called ``name``, by module name."""
    found = []
    for info in sorted(pkgutil.iter_modules(storage.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in SKIP_MODULES:
            continue
        function = getattr(import_module(f"storage.{info.name}"), name, None)
        if callable(function):
            found.append((info.name, function))
    return found


async def _call(function: PersonFunction, session: AsyncSession, user_id: str,
                extras: dict[str, Any]) -> Any:
    accepted = inspect.signature(function).parameters
    return await function(session, user_id, **{k: v for k, v in extras.items() if k in accepted})


async def export_everything(session: AsyncSession, user_id: str, pseudonym: str,
                            now: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {"user_id": user_id, "exported_at": now.isoformat()}
    extras = {"pseudonym": pseudonym, "now": now}
    for module, function in person_functions("export_person"):
        data[module] = await _call(function, session, user_id, extras)
    return data


async def forget_everything(session: AsyncSession, user_id: str, pseudonym: str,
                            now: datetime) -> dict[str, int]:
    """Rows removed or anonymised, per storage module; then, last, the person's id
    wherever free text in any table still names them (storage.mentions)."""
    extras = {"pseudonym": pseudonym, "now": now}
    changed = {module: int(await _call(function, session, user_id, extras) or 0)
               for module, function in person_functions("forget_person")}
    changed["free text"] = await mentions.forget_mentions(session, user_id)
    return changed


async def purge(db: Database, now: datetime, retention_days: int = 180) -> int:
    """Delete flow records past retention; returns the rows deleted.

    The export file needs no purge: the outbox blanks a direct message once it is sent.
    """
    async with db.transaction() as session:
        removed = await flow.purge(session, now - timedelta(days=retention_days))
    if removed:
        log.info("privacy purge removed %d flow rows", removed)
    return removed


def _key(ctx: Context) -> str:
    return flow.pseudonym(flow_secret(ctx.app.settings), ctx.sender.user_id)


# -- commands ----------------------------------------------------------------------------------


@commands.command("privacy", summary="what I record about message flow, and why", where=Where.DM)
async def privacy(ctx: Context, args: Args) -> None:
    p = ctx.prefix
    kept = ctx.app.settings.privacy
    days = kept.retention_days
    general = (
        "In group rooms I record message flow, never message text: which room, when, "
        "a pseudonym for the sender (a keyed hash of your Matrix id), and whether it was a "
        "message, reply, reaction or a mention of a funding notice.\n"
        "Read receipts only as a count per room per notice, never who read.\n"
        "Nothing at all from direct messages or mediation case rooms.\n"
        f"Why: to see which groups notices reach and which they miss. Kept {days} days.\n"
        "Only coordinators see the results, and no count under 5 is shown.\n"
        f"What I send: my copy of a direct message goes once it is sent; of a reply or "
        f"notice, the text after {kept.outbox_body_days} days and the rest after "
        f"{kept.outbox_keep_days}.\n"
        f"{p}privacy optout / optin: stop or resume recording you.\n"
        f"{p}privacy export: a copy of everything I hold about you.\n"
        f"{p}privacy forget: erase it."
    )
    if not ctx.room.is_direct and not ctx.can_dm:
        # Nothing here is about the sender, so where no DM can reach them it is said here.
        await ctx.reply("I couldn't reach you privately through this bridge, so here is what "
                        "I record about everyone, none of it about you in particular.\n"
                        + general, private=False)
        return
    await ctx.reply(general)


@commands.command("privacy optout", summary="stop recording your message-flow metadata",
                  where=Where.DM)
async def optout(ctx: Context, args: Args) -> None:
    key = _key(ctx)
    if not await flow.opt_out(ctx.session, key, ctx.now):
        await ctx.reply(f"You're already opted out. {ctx.prefix}privacy optin resumes recording.",
                        private=ctx.confirm_privately)
        return
    intake_of(ctx.app).drop(key)
    await ctx.reply(
        "Done: from now on I record nothing about your messages, reactions or reads.\n"
        f"What I recorded before goes after {ctx.app.settings.privacy.retention_days} days, "
        f"or now with {ctx.prefix}privacy forget.",
        private=ctx.confirm_privately,
    )


@commands.command("privacy optin", summary="resume recording your message-flow metadata",
                  where=Where.DM)
async def optin(ctx: Context, args: Args) -> None:
    if not await flow.opt_in(ctx.session, _key(ctx)):
        await ctx.reply("You weren't opted out: nothing changed.", private=ctx.confirm_privately)
        return
    await ctx.reply(f"Thanks: I record your message flow again (never text). "
                    f"{ctx.prefix}privacy optout stops it.", private=ctx.confirm_privately)


@commands.command("privacy export", summary="everything I hold about you, as a JSON file",
                  where=Where.DM)
async def export(ctx: Context, args: Args) -> None:
    data = await export_everything(ctx.session, ctx.sender.user_id, _key(ctx), ctx.now)
    blob = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
    await ctx.answer_by_dm(
        "Everything I hold about you is in the attached file (JSON). "
        f"{ctx.prefix}privacy forget erases it.",
        kind=EXPORT_KIND,
        attachment=Attachment(f"grapevine-export-{ctx.today.isoformat()}.json",
                              "application/json", blob),
    )


FORGET_QUESTION = (
    "This erases everything I hold about you: message-flow records, a volunteer profile "
    "and hours, role grants, questions waiting for you. Reply yes to confirm, or no."
)


@commands.command(
    "privacy forget", summary="erase everything I hold about you (asks first)", where=Where.DM,
    params=[Param("confirm", YesNo(), required=False, positional=True, ask=FORGET_QUESTION)],
)
async def forget(ctx: Context, args: Args) -> None:
    if not ctx.room.is_direct:
        raise CommandError(f"Send {ctx.prefix}privacy forget to me in a direct message, "
                           "so the confirmation comes from you.")
    if args.confirm is None:
        raise AskFor("confirm")
    if not args.confirm:
        await ctx.reply("Nothing erased.")
        return
    key = _key(ctx)
    intake_of(ctx.app).drop(key)
    changed = await forget_everything(ctx.session, ctx.sender.user_id, key, ctx.now)
    total = sum(changed.values())
    kept = " Your opt-out stays, so I keep not recording you." if await flow.is_opted_out(
        ctx.session, key) else ""
    await ctx.reply(
        f"Erased: {total} records removed or made anonymous.{kept}\n"
        "Groups, notices and agreements you took part in stay, without your name.\n"
        "Outside my reach: copies of messages held by the Matrix homeserver and by bridged "
        "networks (WhatsApp, Telegram, Signal). Ask your homeserver's admin, and delete "
        "messages in those apps yourself."
    )


def install(app: Host) -> None:
    async def run() -> None:
        await purge(app.db, app.clock.now(), app.settings.privacy.retention_days)

    app.add_job(Job("privacy-purge", IntervalTrigger(seconds=PURGE_EVERY.total_seconds()), run))
