"""!group claim L<n>: a room's admin says an imported listing is their group.

Anyone can type a listing's number, so a claim waits until someone who can vouch
for the area (its moderator, or a coordinator) answers it in the same command's
words: ``!group claim L<n> confirm`` or ``!group claim L<n> refuse``. On confirm
the listing becomes the room's group profile: a room with no group gets one made
from the listing (what the listing cannot say, the claimant gave: size, and type
or area when missing); a room with a group keeps its own answers and gains the
listing's themes and published address. Either way the admin edits it after with
``!group set``. A refusal clears the claim, so the room (or another) can ask again.
"""

from __future__ import annotations

import logging

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, AskFor, CommandError, Param
from bot.commands.values import AreaValue, Choice, Ref
from bot.features.councils import COUNCIL, refresh_after
from bot.features.groups import MANAGERS, PROFILE, TYPE, describe
from bot.features.roles import moderated_areas
from bot.features.unclaimed import place
from storage import groups, listings
from storage.groups import Group
from storage.listings import CONFIRMED, PENDING, REFUSED, Listing, ListingClaim
from storage.models import add_row
from storage.outbox import person_key

log = logging.getLogger(__name__)

ANSWERS = ("confirm", "refuse")


@commands.command(
    "group claim",
    summary="claim an imported listing as this room's group; its area's moderator or a "
            "coordinator answers with confirm or refuse",
    roles=MANAGERS,
    params=[
        Param("listing", Ref(Listing.LETTER), positional=True,
              ask="Which listing? (L<n>, from !directory)"),
        Param("answer", Choice(ANSWERS), required=False, positional=True,
              help="confirm or refuse a claim (its area's moderators, coordinators)"),
        Param("size", PROFILE["size"].value, required=False, ask=PROFILE["size"].ask),
        Param("type", TYPE, required=False, ask=PROFILE["type"].ask),
        Param("area", AreaValue(), required=False, ask=PROFILE["area"].ask),
    ],
)
async def group_claim(ctx: Context, args: Args) -> None:
    listing = await listings.by_id(ctx.session, args.listing)
    if listing is None:
        raise CommandError(f"There is no listing {Listing.ref_of(args.listing)}; "
                           f"{ctx.prefix}directory lists them (marked unclaimed).")
    if listing.group_id is not None:
        raise CommandError(f"{listing.ref} is already G{listing.group_id}'s profile; "
                           "nothing changed.")
    if args.answer is None:
        await _ask(ctx, args, listing)
    else:
        await _answer(ctx, listing, args.answer)


async def _ask(ctx: Context, args: Args, listing: Listing) -> None:
    if ctx.room.is_direct or not ctx.sender.is_group_admin:
        raise CommandError(f"A room's admin claims a listing for that room: run {ctx.prefix}"
                           f"group claim {listing.ref} in your group's own room.")
    waiting = await listings.pending_claim(ctx.session, listing.id)
    if waiting is not None:
        whose = "This room's" if waiting.room_id == ctx.room.room_id else "Another room's"
        raise CommandError(f"{whose} claim of {listing.ref} is waiting for "
                           f"{_deciders(ctx, waiting)}; nothing changed.")
    group = await groups.by_room(ctx.session, ctx.room.room_id)
    area = args.area or listing.area_code
    if group is None:  # a new profile needs what the listing may not say
        if area is None:
            raise AskFor("area")
        if args.type is None and listing.org_type is None:
            raise AskFor("type")
        if args.size is None:
            raise AskFor("size")
    claim = ListingClaim(listing_id=listing.id, room_id=ctx.room.room_id,
                         area_code=area if group is None else group.area_code,
                         type=args.type, size=args.size, asked_by=ctx.sender.user_id,
                         asked_at=ctx.now, status=PENDING)
    await add_row(ctx.session, claim)
    becomes = f"merged into {group.ref}" if group is not None else "this room's group"
    await ctx.reply(
        f"Claim of {listing.ref} {listing.name} ({place(ctx, listing)}) sent; it becomes "
        f"{becomes} once {_deciders(ctx, claim)} runs "
        f"{ctx.prefix}group claim {listing.ref} confirm (or refuse)."
    )
    await _tell_deciders(ctx, listing, claim)
    log.info("listing claim asked: %s", listing.ref)


async def _tell_deciders(ctx: Context, listing: Listing, claim: ListingClaim) -> None:
    """The area's moderators hear of the claim by DM (coordinators see it when they look):
    a claim nobody knows about would wait for ever."""
    if claim.area_code is None or claim.area_code not in ctx.app.areas:
        return
    areas = ctx.app.areas
    for user, codes in sorted((await moderated_areas(ctx)).items()):
        if user == ctx.sender.user_id or not any(
                c in areas and areas.contains(c, claim.area_code) for c in codes):
            continue
        await ctx.dm(user, f"{ctx.sender.user_id}, a room's admin, claims {listing.ref} "
                           f"{listing.name} ({place(ctx, listing)}) for the room: answer with "
                           f"{ctx.prefix}group claim {listing.ref} confirm (or refuse).",
                     kind="listing-claim",
                     dedupe_key=f"listing-claim-ask:{claim.id}:{person_key(user)}")


def _deciders(ctx: Context, claim: ListingClaim) -> str:
    if claim.area_code is not None and claim.area_code in ctx.app.areas:
        return f"a moderator of {ctx.app.areas.label(claim.area_code)} or a coordinator"
    return "a coordinator"


async def _answer(ctx: Context, listing: Listing, answer: str) -> None:
    claim = await listings.pending_claim(ctx.session, listing.id)
    if claim is None:
        raise CommandError(f"Nobody has claimed {listing.ref}; a room's admin asks with "
                           f"{ctx.prefix}group claim {listing.ref} in its room.")
    allowed = ctx.sender.is_coordinator or (claim.area_code is not None
                                            and ctx.moderates(claim.area_code))
    if not allowed:
        raise CommandError(f"Only {_deciders(ctx, claim)} can answer the claim of "
                           f"{listing.ref}.")
    claim.answered_by, claim.answered_at = ctx.sender.user_id, ctx.now
    if answer == "refuse":
        claim.status = REFUSED
        await ctx.post(claim.room_id,
                       f"The claim of {listing.ref} {listing.name} was refused; ask "
                       f"{_deciders(ctx, claim)} why, or claim it again.",
                       kind="listing-claim", dedupe_key=f"listing-claim:{claim.id}",
                       own_post=False)
        await ctx.reply(f"Refused the claim of {listing.ref}; the room is told.")
        log.info("listing claim refused: %s", listing.ref)
        return
    group = await _merge(ctx, listing, claim)
    claim.status = CONFIRMED
    listing.group_id = group.id
    await ctx.post(claim.room_id,
                   f"This room's group is now {describe(ctx, group)}, from {listing.ref}: "
                   f"see it with {ctx.prefix}group, change it with {ctx.prefix}group set.",
                   kind="listing-claim", dedupe_key=f"listing-claim:{claim.id}", own_post=False)
    await ctx.reply(f"Confirmed: {listing.ref} is now {describe(ctx, group)}.")
    log.info("listing claim confirmed: %s became %s", listing.ref, group.ref)


async def _merge(ctx: Context, listing: Listing, claim: ListingClaim) -> Group:
    """The room's group with the listing merged in (its own answers win), or a new one."""
    group = await groups.by_room(ctx.session, claim.room_id)
    if group is not None:
        group.themes = list(dict.fromkeys([*group.themes, *listing.themes]))[:6]
        group.email = group.email or listing.email
        return group
    group = await groups.by_room_any(ctx.session, claim.room_id)  # keeps an old G<n>
    if group is None:
        group = Group(room_id=claim.room_id)
        ctx.session.add(group)
    assert claim.area_code is not None  # asked for before the claim was stored
    group.name, group.area_code = listing.name[:200], claim.area_code
    group.type = claim.type or listing.org_type or "other"
    group.size = claim.size or "small"
    group.themes = list(listing.themes)[:6]
    group.reach, group.listed, group.contact = "locality", True, True
    group.email, group.introductions = listing.email, "room"
    group.registered_by, group.registered_at = claim.asked_by, ctx.now
    # The confirmer vouched for who the room is: that is what verifying means.
    group.verified_at, group.verified_by = ctx.now, ctx.sender.user_id
    group.unregistered_at = None
    group.share_volunteers = group.share_volunteers or False
    group.max_posts = group.max_posts if group.max_posts is not None else 3
    group.quiet = group.quiet or False
    await ctx.session.flush()
    if group.type == COUNCIL:
        refresh_after(ctx)  # the locality room's topic names its council, as on register
    return group
