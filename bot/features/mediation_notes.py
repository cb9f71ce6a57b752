"""!mediation note|notes: the mediator's notes, taken only in a direct message with the
bot, sealed with the configured key, and read back only there (sealed again in the outbox).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Where
from bot.commands.values import Text
from bot.features import agreement, sealing
from storage import mediation as cases
from storage import outbox

if TYPE_CHECKING:
    pass
from bot.features.mediation import CASE, answer_privately, hm, in_private_dm, visible_case


@commands.command("mediation note", summary="add a private note to a case (mediator, by DM)",
                  params=[CASE, Param("text", Text(max_length=4000), positional=True,
                                      ask="What's the note? (in quotes)")],
                  rest="more words", where=Where.DM, personal=True)
async def note(ctx: Context, args: Args) -> None:
    if not await in_private_dm(ctx):
        raise CommandError("Notes are taken only in a direct message with me; I've removed "
                           "your message here. Send it again in our DM.")
    case = await visible_case(ctx, args.case)
    if ctx.sender.user_id != case.mediator:
        raise CommandError(f"Notes on {case.ref} are its mediator's own; only they add them.")
    if not case.is_open:
        raise CommandError(f"{case.ref} is closed; its notes can't be added to.")
    text = " ".join(part for part in (args.text, args.rest) if part)
    try:
        sealed = sealing.seal(ctx.app.settings.privacy.notes_key, text)
    except sealing.NoKey as exc:
        raise CommandError(str(exc)) from None
    await cases.add_note(ctx.session, case.id, ctx.sender.user_id, sealed, ctx.now)
    count = len(await cases.notes(ctx.session, case.id))
    await answer_privately(ctx, f"Note {count} on {case.ref} kept, encrypted; your message is "
                           f"removed. {ctx.prefix}mediation notes {case.ref} reads them back here.")


@commands.command("mediation notes", summary="read a case's notes (mediator or coordinator, DM)",
                  params=[CASE], where=Where.DM)
async def read_notes(ctx: Context, args: Args) -> None:
    case = await visible_case(ctx, args.case)
    if ctx.sender.user_id != case.mediator and not ctx.sender.is_coordinator:
        raise CommandError(f"Only {case.ref}'s mediator and coordinators can read its notes.")
    if case.notes_purged_at is not None:
        await answer_privately(ctx, f"{case.ref}'s notes were deleted on "
                        f"{agreement.day(case.notes_purged_at, ctx.tz)}, after it closed.")
        return
    rows = await cases.notes(ctx.session, case.id)
    if not rows:
        await answer_privately(ctx, f"{case.ref} has no notes.")
        return
    try:
        sealing.cipher(ctx.app.settings.privacy.notes_key)
    except sealing.NoKey as exc:
        raise CommandError(str(exc)) from None
    lines = [f"{case.ref} notes:"]
    for number, row in enumerate(rows, 1):
        text = sealing.unseal(ctx.app.settings.privacy.notes_key, row.sealed)
        when = f"{agreement.day(row.written_at, ctx.tz)} {hm(ctx, row.written_at)}"
        lines.append(f"{number}. {when}: "
                     + (text if text is not None else "(sealed with another key; unreadable)"))
    # Sealed again for the outbox: the opened notes exist only in memory, here and in
    # the outbox worker as it sends them; pending, failed or sent, the row is ciphertext.
    here = await in_private_dm(ctx)
    await outbox.enqueue(ctx.session, now=ctx.now, kind=outbox.SEALED_KIND,
                         body=sealing.seal_text(ctx.app.settings.privacy.notes_key,
                                                "\n".join(lines)),
                         room_id=ctx.room.room_id if here else None,
                         to_user=None if here else ctx.sender.user_id)
    ctx.app.queued()
    if not here:
        await answer_privately(ctx, f"I've sent {case.ref}'s notes to our direct messages.")
