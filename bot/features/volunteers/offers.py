"""!volunteer accept|decline|browse|take: answering offers and taking places, by DM.
"""

from __future__ import annotations

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Where
from bot.commands.values import AreaValue, Ref
from bot.features.matching import SkillError, normalise_skills, refusal
from bot.features.volunteers.common import SKILLS, need_of, profile_or_refuse, queue_dm, when_of
from bot.features.volunteers.places import leave, make_offers
from storage import groups
from storage import volunteers as store
from storage.models import add_row
from storage.volunteers import VolunteerOffer, VolunteerRequest

_REFUSALS = {
    "not free then": "your availability doesn't cover that time",
    "DBS level too low": "it needs a DBS check you haven't recorded",
    "DBS re-check due": "your DBS re-check falls before it",
    "too far": "it's outside your travel radius",
    "paused": "your profile is paused then",
    "not shared with this group": "it's for that group's own volunteers",
}


async def _my_offer(ctx: Context, offer_id: int) -> tuple[VolunteerOffer, VolunteerRequest]:
    o = await store.offer(ctx.session, offer_id)
    if o is None or o.user_id != ctx.sender.user_id:
        raise CommandError(f"You have no offer O{offer_id}; offers come by DM as O<n> "
                           f"({ctx.prefix}volunteer browse lists open requests).")
    req = await store.request(ctx.session, o.request_id)
    assert req is not None
    return o, req


def _check_open(ctx: Context, req: VolunteerRequest) -> None:
    if req.status == store.CANCELLED:
        raise CommandError(f"{req.ref} was cancelled by the group.")
    if req.starts_at <= ctx.now:
        raise CommandError(f"{req.ref} has already started.")


async def _took(ctx: Context, o: VolunteerOffer, req: VolunteerRequest) -> None:
    status = await store.take_place(ctx.session, o, ctx.now)
    group = await groups.by_id(ctx.session, req.group_id)
    name = group.name if group else "the group"
    if status == store.WAITLISTED:
        waiting = await store.offers_of(ctx.session, req.id, (store.WAITLISTED,))
        place = next(i for i, w in enumerate(waiting, 1) if w.id == o.id)
        await ctx.reply(f"{req.ref} is full, so you're number {place} on the waitlist. "
                        f"I'll tell you if a place frees up ({ctx.prefix}volunteer decline "
                        f"{o.ref} to leave it).")
        return
    f = await store.fill(ctx.session, req.id)
    await ctx.reply(
        f"You're in for {req.ref}: {req.role} for {name}, {when_of(ctx.app, req)}, "
        f"{ctx.app.areas.label(req.area_code)} ({o.ref}).\nI'll remind you a day before. "
        f"Can't make it after all? {ctx.prefix}volunteer decline {o.ref}."
    )
    dbs = " and meets the DBS requirement" if req.dbs_level else ""
    await queue_dm(ctx.app, ctx.session, ctx.now, req.created_by,
                   f"{ctx.sender.user_id} accepted {req.ref} ({req.role}){dbs}: "
                   f"{f.accepted}/{req.count} places filled.")


@commands.command("volunteer accept", summary="take a place you were offered",
                  where=Where.DM, params=[Param("offer", Ref("O"), positional=True)])
async def accept(ctx: Context, args: Args) -> None:
    o, req = await _my_offer(ctx, args.offer)
    if o.status == store.ACCEPTED:
        raise CommandError(f"You've already got a place on {req.ref} ({o.ref}).")
    if o.status == store.WAITLISTED:
        raise CommandError(f"You're already on the waitlist for {req.ref}.")
    _check_open(ctx, req)
    take = f"{ctx.prefix}volunteer take {req.ref}"
    if o.status == store.DECLINED:
        raise CommandError(f"You declined {o.ref}; {take} if you've changed your mind.")
    if o.status != store.OFFERED or o.expires_at <= ctx.now:
        raise CommandError(f"{o.ref} has expired; {take} still works if there's room.")
    await _took(ctx, o, req)


@commands.command("volunteer decline", summary="say no to an offer, or give up a place",
                  where=Where.DM, params=[Param("offer", Ref("O"), positional=True)])
async def decline(ctx: Context, args: Args) -> None:
    o, req = await _my_offer(ctx, args.offer)
    if o.status not in store.LIVE:
        raise CommandError(f"{o.ref} is already closed; nothing to decline.")
    was = o.status
    await leave(ctx.app, ctx.session, o, store.DECLINED, ctx.now)
    if was == store.OFFERED and req.status == store.OPEN and req.starts_at > ctx.now:
        group = await groups.by_id(ctx.session, req.group_id)
        if group is not None:
            await make_offers(ctx.app, ctx.session, req, group, ctx.now, 1)
    left = {store.ACCEPTED: "given up your place", store.WAITLISTED: "left the waitlist"}
    await ctx.reply(f"Done: you've {left.get(was, 'declined')} for {req.ref} ({o.ref}). "
                    "Thanks for letting them know.")


@commands.command("volunteer browse", summary="open requests you could take", where=Where.DM,
                  params=[Param("area", AreaValue(allow_all=True), required=False),
                          Param("skills", SKILLS, required=False)])
async def browse(ctx: Context, args: Args) -> None:
    v = await profile_or_refuse(ctx)
    me = await store.candidate_for(ctx.session, v)
    try:
        wanted = set(normalise_skills(args.skills or ()))
    except SkillError as exc:
        raise CommandError(f"skills: {exc}.") from None
    lines = []
    for req in await store.open_requests(ctx.session, ctx.now):
        group = await groups.by_id(ctx.session, req.group_id)
        if group is None or refusal(me, need_of(req, group)) is not None:
            continue
        if args.area and not ctx.app.areas.contains(args.area, req.area_code):
            continue
        if wanted and not wanted & set(req.skills or ()):
            continue
        f = await store.fill(ctx.session, req.id)
        room = "full, waitlist open" if f.accepted >= req.count else f"{f.accepted}/{req.count}"
        lines.append(f"{req.ref} {req.role} for {group.name}, {when_of(ctx.app, req)}, "
                     f"{ctx.app.areas.label(req.area_code)} ({room})")
    if not lines:
        await ctx.reply("No open requests fit you right now; offers will come here.")
        return
    await ctx.reply("\n".join(lines[:10]) + f"\n{ctx.prefix}volunteer take V<n> to take one.")


@commands.command("volunteer take", summary="take a place on an open request", where=Where.DM,
                  params=[Param("request", Ref("V"), positional=True)])
async def take(ctx: Context, args: Args) -> None:
    v = await profile_or_refuse(ctx)
    req = await store.request(ctx.session, args.request)
    group = await groups.by_id(ctx.session, req.group_id) if req else None
    if req is None or group is None:
        raise CommandError(f"There's no request V{args.request}; {ctx.prefix}volunteer browse "
                           "lists the open ones.")
    _check_open(ctx, req)
    why = refusal(await store.candidate_for(ctx.session, v), need_of(req, group))
    if why is not None:
        raise CommandError(f"You can't take {req.ref}: {_REFUSALS[why]}.")
    o = await store.offer_for(ctx.session, req.id, v.user_id)
    if o is not None and o.status in (store.ACCEPTED, store.WAITLISTED):
        raise CommandError(f"You're already {o.status} on {req.ref} ({o.ref}).")
    if o is None:
        o = VolunteerOffer(request_id=req.id, user_id=v.user_id, status=store.OFFERED,
                           via="take", offered_at=ctx.now, expires_at=req.starts_at)
        await add_row(ctx.session, o)
    await _took(ctx, o, req)
