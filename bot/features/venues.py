"""!venue add / find / show / remove: affordable premises, and community hubs.

The seeds' recommendation 4: groups need rooms they can afford, and community
hubs are offline nodes of the network. A venue is added by a moderator of its
area, a coordinator, or a verified group for its own premises; anyone can find
one by area, size and opening time. A hub (``hub=yes``) is tied to its
locality's groups in the reach graph (bot/features/reach_network.py) and gets
the printed notice sheet for its locality (bot/features/hub_sheets.py).
"""

from __future__ import annotations

import re

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param
from bot.commands.values import AreaValue, Choice, Integer, Ref, Text, Window, YesNo
from bot.features import availability
from bot.features.groups import EMAIL
from bot.features.hub_sheets import queue_sheet, sheet_attachment
from bot.features.representatives import Reps
from config.areas import name_key
from storage import groups, venues
from storage.groups import Group
from storage.models import add_row
from storage.venues import PRICES, Venue

MATRIX_ID = re.compile(r"^@[^:\s]+:\S+$")
ALIAS = re.compile(r"^#[^:\s]+:\S+$")
PHONE = re.compile(r"^\+?[\d\s()-]{7,20}$")
PRICE_WORDS = {"free": "free", "low": "low cost", "standard": "standard rates"}
MAX_LINES = 11
VENUE = Param("venue", Ref(Venue.LETTER), positional=True, ask="Which venue? (P<n>)")


def contact_kind(text: str) -> str:
    """What a booking contact is: matrix (a person's id), room, email or phone."""
    if MATRIX_ID.match(text):
        return "matrix"
    if ALIAS.match(text):
        return "room"
    if EMAIL.match(text):
        return "email"
    if PHONE.match(text) and sum(c.isdigit() for c in text) >= 7:
        return "phone"
    raise CommandError(f"contact: {text!r} is not a way to book I can show; give a Matrix id "
                       "(@name:server), a room (#hall:server), an email or a phone number.")


def describe(ctx: Context, venue: Venue) -> str:
    """P3 Wisby Village Hall (Wisby): 80 people, free, step-free, hub."""
    area = ctx.app.areas.label(venue.area_code) if venue.area_code in ctx.app.areas else "?"
    facts = [f"{venue.capacity} people", PRICE_WORDS[venue.price]]
    if venue.accessible:
        facts.append("step-free")
    if venue.hub:
        facts.append("community hub")
    return f"{venue.ref} {venue.name} ({area}): {', '.join(facts)}"


# -- add --------------------------------------------------------------------------------


@commands.command(
    "venue add",
    summary="list premises groups can use (moderator, coordinator, or a verified group's own)",
    params=[
        Param("name", Text(max_length=200), ask="What is the venue called?"),
        Param("area", AreaValue(), ask="Where is it? (a parish, ward or GSS code)"),
        Param("capacity", Integer(minimum=1, maximum=100_000),
              ask="How many people does it hold? (a number)"),
        Param("price", Choice(PRICES, aliases={"low-cost": "low", "cheap": "low",
                                               "paid": "standard", "full": "standard"}),
              ask="What does it cost groups? (free, low or standard)"),
        Param("accessible", YesNo(), required=False, help="step-free access"),
        Param("contact", Text(max_length=320), required=False,
              help="how to book: @person:server, #room:server, email or phone"),
        Param("hub", YesNo(), required=False,
              help="a community hub: a node of its locality's network, gets its notice sheet"),
        Param("open", Text(max_length=200), required=False,
              help=f"when it can be booked: {availability.FORMS}"),
    ],
)
async def venue_add(ctx: Context, args: Args) -> None:
    area: str = args.area
    own = await _own_group(ctx, area)
    hub = bool(args.hub)
    if hub and ctx.app.areas.children(area):
        raise CommandError(f"A hub is the node of one parish or ward: give area= the one it "
                           f"serves, not {ctx.app.areas.label(area)}.")
    contact = args.contact
    if contact is not None:
        contact_kind(contact)
    open_slots = None
    if args.open is not None:
        try:
            open_slots = availability.parse_slots(args.open)
        except availability.SlotError as exc:
            raise CommandError(f"open: {exc}") from None
    wanted = name_key(args.name)
    for other in await venues.current(ctx.session):
        if other.area_code == area and name_key(other.name) == wanted:
            raise CommandError(f"{describe(ctx, other)} is already listed; "
                               f"{ctx.prefix}venue remove {other.ref} first to list it anew.")
    venue = Venue(name=args.name, area_code=area, capacity=args.capacity, price=args.price,
                  accessible=bool(args.accessible), contact=contact, hub=hub,
                  open_slots=open_slots, group_id=own.id if own else None,
                  added_by=ctx.sender.user_id, added_at=ctx.now)
    await add_row(ctx.session, venue)
    lines = [f"Added {describe(ctx, venue)}."]
    if hub:
        lines.append(f"As a hub it is tied to {ctx.app.areas.label(area)}'s groups in the "
                     f"reach graph and gets its funding notice sheet ({ctx.prefix}venue show "
                     f"{venue.ref}).")
        if await queue_sheet(ctx.app, ctx.session, venue, ctx.now):
            ctx.app.queued()
            lines.append(f"{contact} gets it by direct message now and every Monday.")
    await ctx.reply("\n".join(lines))


async def _own_group(ctx: Context, area: str) -> Group | None:
    """None for a coordinator or the area's moderator; the group whose own premises these
    are when its admin adds them in its room; otherwise a refusal saying who may."""
    if ctx.sender.is_coordinator or ctx.moderates(area):
        return None
    label = ctx.app.areas.label(area)
    who = f"a moderator of {label}, a coordinator, or a verified group for its own premises"
    here = None if ctx.room.is_direct else await groups.by_room(ctx.session, ctx.room.room_id)
    if here is None or not ctx.sender.is_group_admin:
        raise CommandError(f"Venues are listed by {who} (its admin, in its room).")
    if not here.verified:
        raise CommandError(f"{here.ref} is not verified yet: a moderator of "
                           f"{ctx.app.areas.label(here.area_code)} runs {ctx.prefix}group verify "
                           f"{here.ref}, then you can list its premises.")
    areas = ctx.app.areas
    home = areas.district_of(here.area_code)
    near = areas.contains(here.area_code, area) or (
        home is not None and areas.contains(home.code, area))
    if not near:
        raise CommandError(f"{here.ref} works in {areas.label(here.area_code)}; its own premises "
                           f"are listed there (a moderator of {label} lists others).")
    return here


# -- find -------------------------------------------------------------------------------


@commands.command(
    "venue find",
    summary="venues in an area, by size and when they can be booked",
    params=[Param("area", AreaValue(allow_all=True), ask="Where? (a place name, or all)"),
            Param("capacity", Integer(minimum=1, maximum=100_000), required=False,
                  help="at least this many people"),
            Param("when", Window(), required=False, help='e.g. when="sat 10am-1pm"')],
)
async def venue_find(ctx: Context, args: Args) -> None:
    areas = ctx.app.areas
    inside = [v for v in await venues.current(ctx.session)
              if v.area_code in areas and areas.contains(args.area, v.area_code)
              and (args.capacity is None or v.capacity >= args.capacity)]
    unknown_hours = 0
    if args.when is not None:
        need = availability.window_slots(*args.when)
        unknown_hours = sum(v.open_slots is None for v in inside)
        inside = [v for v in inside if v.open_slots is not None and v.open_slots & need == need]
    where = areas.label(args.area)
    if not inside:
        hint = f" ({_not_said(unknown_hours)})" if unknown_hours else ""
        raise CommandError(f"No venue in {where} fits{hint}; try a bigger area, fewer people or "
                           f"another time. A moderator adds one with {ctx.prefix}venue add.")
    # Cheapest first, then the closest fit in size.
    inside.sort(key=lambda v: (PRICES.index(v.price), v.capacity, name_key(v.name), v.id))
    lines = [_line(ctx, v) for v in inside[:MAX_LINES]]
    if len(inside) > MAX_LINES:
        lines.append(f"...and {len(inside) - MAX_LINES} more; narrow with capacity= or when=.")
    if unknown_hours:
        lines.append(f"{_not_said(unknown_hours)}: ask them.")
    await ctx.reply("\n".join(lines))


def _not_said(count: int) -> str:
    return f"{count} more {'has' if count == 1 else 'have'} not said when they open"


def _line(ctx: Context, venue: Venue) -> str:
    book = f"; book: {venue.contact}" if venue.contact else ""
    return f"{describe(ctx, venue)}{book}"


# -- show -------------------------------------------------------------------------------


@commands.command("venue show", summary="a venue's details; a hub's notice sheet comes with it",
                  params=[VENUE])
async def venue_show(ctx: Context, args: Args) -> None:
    venue = await _venue(ctx, args.venue)
    lines = [describe(ctx, venue) + "."]
    if venue.open_slots is not None:
        lines.append(f"Open: {availability.describe(venue.open_slots)}.")
    lines.append(f"Book: {venue.contact}." if venue.contact else
                 "No booking contact given; ask whoever runs it.")
    if venue.group_id is not None and (owner := await groups.by_id(ctx.session, venue.group_id)):
        lines.append(f"Premises of {owner.ref} {owner.name}.")
    attachment = None
    if venue.hub:
        attachment, count = await sheet_attachment(ctx.app, ctx.session, venue, ctx.now)
        lines.append(f"Community hub: the notice sheet for "
                     f"{ctx.app.areas.label(venue.area_code)} ({count} open notice"
                     f"{'s' if count != 1 else ''}) is attached, to print and pin up.")
    await ctx.reply("\n".join(lines), attachment=attachment)


async def _venue(ctx: Context, number: int) -> Venue:
    venue = await venues.by_id(ctx.session, number)
    if venue is None:
        raise CommandError(f"There is no venue {Venue.ref_of(number)}; "
                           f"{ctx.prefix}venue find area=... lists them.")
    return venue


# -- remove -----------------------------------------------------------------------------


@commands.command("venue remove", summary="take a venue off the list (whoever may list it)",
                  params=[VENUE])
async def venue_remove(ctx: Context, args: Args) -> None:
    venue = await _venue(ctx, args.venue)
    allowed = (ctx.sender.is_coordinator or ctx.moderates(venue.area_code)
               or venue.added_by == ctx.sender.user_id)
    if not allowed and venue.group_id is not None:
        allowed = ctx.sender.user_id in await Reps(ctx.app, ctx.session).of(venue.group_id)
    if not allowed:
        raise CommandError(f"Only whoever listed {venue.ref}, its group's admins, a moderator "
                           f"of {ctx.app.areas.label(venue.area_code)} or a coordinator can "
                           "remove it.")
    venue.removed_at, venue.removed_by = ctx.now, ctx.sender.user_id
    hub = " It is no longer a hub in the reach graph." if venue.hub else ""
    await ctx.reply(f"{venue.ref} {venue.name} removed from the venue list.{hub}")
