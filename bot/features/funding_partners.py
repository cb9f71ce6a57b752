"""!funding partners F<n>: groups this group could bid with, and an introduction in one step.

The ranking is ``partners.suggest`` (pure, tested on plain data); this handler
gathers the profiles and track records, shows a numbered list, and with
``introduce=<n>`` asks for the introduction through ``!directory contact``'s own
handler, so the directory's rules hold unchanged (listed and contactable groups
only, one open ask per pair, three a day per room, the answer by accept/decline).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role, Where
from bot.commands.values import Integer, Ref, Text, YesNo
from bot.features import introductions, partners
from bot.features.funding_delivery import facts_of, group_facts
from bot.features.funding_targeting import group_fits
from bot.features.matching import haversine_km
from storage import funding, groups
from storage import partners as track

log = logging.getLogger(__name__)




def _near(ctx: Context) -> partners.Near:
    areas = ctx.app.areas

    def near(a: str, b: str) -> bool:
        if a not in areas or b not in areas:
            return False
        x, y = areas.get(a), areas.get(b)
        if None in (x.lat, x.lon, y.lat, y.lon) or x.is_district or y.is_district:
            return False
        return haversine_km(x.lat, x.lon, y.lat, y.lon) <= partners.NEIGHBOUR_KM  # type: ignore[arg-type]

    return near


@commands.command(
    "funding partners",
    summary="up to five verified groups that could bid with yours for a notice; "
            "introduce=<n> asks to be put in touch with number n (as !directory contact does, "
            "so the group answers accept or decline and nothing of theirs is shared unasked)",
    roles=[Role.GROUP_ADMIN],
    where=Where.ROOM,
    params=[Param("notice", Ref("F"), positional=True, ask="Which notice? (e.g. F12)"),
            Param("include_partners", YesNo(), required=False,
                  help="also groups you already recorded collaborating with"),
            Param("introduce", Integer(1, partners.LIMIT), required=False,
                  help="the number of a suggestion to be introduced to"),
            Param("message", Text(max_length=introductions.MESSAGE_MAX), required=False,
                  help="what to say with the introduction")],
)
async def funding_partners(ctx: Context, args: Args) -> None:
    notice = await funding.notice(ctx.session, args.notice)
    if notice is None or notice.status != funding.PUBLISHED:
        raise CommandError(f"There is no open notice F{args.notice}; {ctx.prefix}funding list "
                           "shows them.")
    mine = await groups.by_room(ctx.session, ctx.room.room_id)
    if mine is None:
        raise CommandError(f"This room has no group; register it first with {ctx.prefix}group "
                           "register.")
    wanted = facts_of(notice, ctx.app.areas.root.code)
    own = group_facts(ctx.app.areas, mine)
    if not group_fits(wanted, replace(own, contact=True),
                      ctx.app.areas.contains):
        raise CommandError(f"{mine.ref} is not eligible for {notice.ref} (its areas, themes, "
                           f"types or sizes); {ctx.prefix}funding show {notice.ref} says who is.")
    record = await track.track_record(ctx.session)
    candidates = [
        partners.Candidate(group_facts(ctx.app.areas, g), verified=g.verified, listed=g.listed,
                           collaborations=record.collaborations[g.id],
                           introductions=record.introductions[g.id])
        for g in await groups.active(ctx.session)]
    found = partners.suggest(
        own, wanted, candidates, contains=ctx.app.areas.contains, near=_near(ctx),
        capital_of={t.key: t.capital for t in ctx.app.themes}, pairs=record.between(mine.id),
        include_partners=bool(args.include_partners))
    if args.introduce is not None:
        await _introduce(ctx, args, found, notice.ref, notice.title)
        return
    if not found:
        more = "" if args.include_partners else " (include_partners=yes adds past partners)"
        raise CommandError(f"No verified group that takes introductions fits {notice.ref} and "
                           f"complements {mine.ref} yet{more}.")
    names = {g.id: g for g in await groups.active(ctx.session)}
    lines = [f"Groups that could bid with {mine.ref} for {notice.ref}:"]
    for n, s in enumerate(found, 1):
        g = names[s.group_id]
        lines.append(f"{n}. {g.ref} {g.name} ({ctx.app.areas.label(g.area_code)}): "
                     f"{_why(s, record.collaborations[g.id], record.introductions[g.id])}")
    lines.append(f"To be introduced: {ctx.prefix}funding partners {notice.ref} introduce=<n> "
                 "[message=\"...\"]")
    log.info("funding partners for %s on %s: %d suggested", mine.ref, notice.ref, len(found))
    await ctx.reply("\n".join(lines))


def _why(s: partners.Suggestion, collaborations: int, intros: int) -> str:
    parts = []
    if s.brings:
        parts.append("brings " + ", ".join(s.brings)
                     + (f" ({', '.join(s.capitals)} capital)" if s.capitals else ""))
    if s.next_door:
        parts.append(f"also {', '.join(s.next_door)}, in a neighbouring place")
    if collaborations:
        parts.append(f"{collaborations} collaboration{'s' if collaborations > 1 else ''} "
                     "recorded")
    if intros:
        parts.append(f"{intros} introduction{'s' if intros > 1 else ''} accepted")
    if s.partner:
        parts.append("already a partner of yours")
    return "; ".join(parts)


async def _introduce(ctx: Context, args: Args, found: list[partners.Suggestion], ref: str,
                     title: str) -> None:
    if args.introduce > len(found):
        raise CommandError(f"There {'is' if len(found) == 1 else 'are'} only {len(found)} "
                           f"suggestion{'s' if len(found) != 1 else ''} for {ref}; "
                           f"{ctx.prefix}funding partners {ref} lists them.")
    chosen = found[args.introduce - 1]
    message = args.message or f"Would you bid together with us for {ref} ({title})?"
    await introductions.directory_contact(ctx, Args({"group": chosen.group_id,
                                                     "message": message}))
