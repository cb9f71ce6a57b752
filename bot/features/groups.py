"""!group register/verify/set/unregister, !group and !directory: group profiles.

A profile is what funding notices and volunteer requests are targeted by
(area, themes, type, size), so registering is opting in. A room has at most
one group; a group not on chat is registered by a coordinator or moderator
with ``room=none`` and reached by email.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, AskFor, CommandError, Param, Role
from bot.commands.values import (
    AreaValue,
    BadValue,
    Choice,
    Integer,
    ListOf,
    ParseContext,
    Ref,
    Text,
    ThemeValue,
    YesNo,
)
from bot.features import unclaimed
from bot.features.councils import COUNCIL, refresh_after
from bot.features.group_routes import route_for
from config.areas import name_key
from config.organisations import GROUP_TYPE_ALIASES, GROUP_TYPES, REACHES, SIZES
from config.themes import resolve_theme
from storage import groups, listings
from storage.groups import Group
from storage.listings import Listing

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_LINES = 11
MANAGERS = [Role.GROUP_ADMIN, Role.MODERATOR, Role.COORDINATOR]



class GroupType(Choice):
    """The organisation's legal form; a service typed here (foodbank) is pointed to themes=."""

    async def parse(self, raw: str, ctx: ParseContext) -> str:
        try:
            return await super().parse(raw, ctx)
        except BadValue:
            theme = resolve_theme(raw, ctx.app.themes)
            if theme is None:
                raise
            raise BadValue(
                f"{raw} is a service: themes={theme.key}; type is the organisation's form: "
                f"{', '.join(self.options)}"
            ) from None


TYPE = GroupType(GROUP_TYPES, aliases=GROUP_TYPE_ALIASES)
PROFILE = {
    "name": Param("name", Text(max_length=200), ask="What is the group called?"),
    "type": Param("type", TYPE, ask=f"What kind of group is it? ({', '.join(GROUP_TYPES)})"),
    "area": Param("area", AreaValue(), ask="Where does it work? (a place name or GSS code)"),
    "themes": Param("themes", ListOf(ThemeValue(), max_items=6),
                    ask="What does it do? (themes, e.g. food,youth)"),
    "size": Param("size", Choice(SIZES), ask="How big is it? (micro, small, medium or large)"),
    "reach": Param("reach", Choice(REACHES), required=False),
    "listed": Param("listed", YesNo(), required=False),
    "contact": Param("contact", YesNo(), required=False),
    "email": Param("email", Text(max_length=320), required=False,
                   ask="What email address reaches the group?"),
    "introductions": Param("introductions", Choice(("room", "admins")), required=False,
                           help="where introductions arrive: this room, or its admins by DM"),
}
GROUP_REF = Param("group", Ref("G"), required=False, positional=True,
                  help="a group not on chat, or another room's group")


def _optional(param: Param) -> Param:
    return Param(param.name, param.value, required=False, ask=param.ask)


def _email(raw: str | None) -> str | None:
    if raw is not None and not EMAIL.match(raw):
        raise CommandError(f"email: {raw!r} doesn't look like an email address (name@example.org).")
    return raw


def _label(ctx: Context, area_code: str) -> str:
    return ctx.app.areas.label(area_code) if area_code in ctx.app.areas else "?"


def describe(ctx: Context, group: Group) -> str:
    """One line: G5 Wisbech Food Bank (charity, Wisbech)."""
    return f"{group.ref} {group.name} ({group.type}, {_label(ctx, group.area_code)})"


# -- register ---------------------------------------------------------------------------


@commands.command(
    "group register",
    summary="link this room to a group profile (prints G<n>)",
    roles=MANAGERS,
    params=[*PROFILE.values(), Param("room", Choice(("none",)), required=False,
                                     help="none: a group not on chat (coordinator, moderator)")],
)
async def group_register(ctx: Context, args: Args) -> None:
    email = _email(args.email)
    if args.room == "none":
        room_id = None
        if not (ctx.sender.is_coordinator or ctx.moderates(args.area)):
            raise CommandError(
                "Only a coordinator or a moderator of "
                f"{ctx.app.areas.label(args.area)} can register a group that is not on chat."
            )
        if email is None:
            raise AskFor("email")
        await _refuse_same_name(ctx, args.name, args.area)
    else:
        room_id = ctx.room.room_id
        if ctx.room.is_direct:
            raise CommandError(
                f"Run {ctx.prefix}group register in your group's own room (or add "
                "room=none email=... for a group that is not on chat)."
            )
        if not ctx.sender.is_group_admin:
            raise CommandError(
                "Only this room's admins can register its group; ask one of them to run it."
            )
        existing = await groups.by_room(ctx.session, room_id)
        if existing is not None:
            raise CommandError(
                f"This room is already {describe(ctx, existing)}: change it with "
                f"{ctx.prefix}group set, or {ctx.prefix}group unregister it first."
            )
    group = (await groups.by_room_any(ctx.session, room_id)) if room_id else None
    if group is None:
        group = Group(room_id=room_id)
        ctx.session.add(group)
    group.name, group.type, group.area_code = args.name, args.type, args.area
    group.themes, group.size = list(args.themes), args.size
    group.reach = args.reach or "locality"
    group.listed = True if args.listed is None else args.listed
    group.contact = True if args.contact is None else args.contact
    group.email = email
    group.introductions = args.introductions or "room"
    group.registered_by, group.registered_at = ctx.sender.user_id, ctx.now
    group.verified_at = group.verified_by = group.unregistered_at = None
    group.share_volunteers = group.share_volunteers or False
    group.max_posts = group.max_posts if group.max_posts is not None else 3
    group.quiet = group.quiet or False
    await ctx.session.flush()
    if group.type == COUNCIL:
        refresh_after(ctx)  # the locality room's topic names its council
    area = ctx.app.areas.label(group.area_code)
    await ctx.reply(
        f"Registered {describe(ctx, group)}, unverified: a moderator of {area} or a "
        f"coordinator confirms it with {ctx.prefix}group verify {group.ref}.\n"
        f"In the directory: {_yes(group.listed)}; matching notices: {_yes(group.contact)} "
        f"({ctx.prefix}group set listed=no contact=no changes that)."
    )


async def _refuse_same_name(ctx: Context, name: str, area: str) -> None:
    wanted = name_key(name)
    for other in await groups.active(ctx.session):
        if other.area_code == area and name_key(other.name) == wanted:
            raise CommandError(f"{describe(ctx, other)} is already registered.")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


# -- verify -----------------------------------------------------------------------------


@commands.command(
    "group verify",
    summary="confirm a group is who it says (its area's moderators, coordinators)",
    roles=[Role.MODERATOR, Role.COORDINATOR],
    params=[Param("group", Ref("G"), positional=True, ask="Which group? (G<n>)")],
)
async def group_verify(ctx: Context, args: Args) -> None:
    group = await _by_ref(ctx, args.group)
    if not (ctx.sender.is_coordinator or ctx.moderates(group.area_code)):
        raise CommandError(
            f"{group.ref} is in {ctx.app.areas.label(group.area_code)}: only its moderators "
            f"or a coordinator can verify it ({ctx.prefix}moderators {group.area_code})."
        )
    if group.verified:
        await ctx.reply(f"{describe(ctx, group)} is already verified; nothing changed.")
        return
    group.verified_at, group.verified_by = ctx.now, ctx.sender.user_id
    if group.room_id is not None and group.room_id != ctx.room.room_id:
        await ctx.post(
            group.room_id,
            f"This group ({group.ref}) is now verified: its notices go out and its volunteer "
            "requests reach the shared pool.",
            kind="group-verified", dedupe_key=f"group-verified:{group.id}", own_post=False,
        )
    await ctx.reply(f"{describe(ctx, group)} is verified.")


async def _by_ref(ctx: Context, number: int) -> Group:
    group = await groups.by_id(ctx.session, number)
    if group is None:
        raise CommandError(f"There is no group G{number}; {ctx.prefix}directory lists groups.")
    return group


# -- the room's own group ---------------------------------------------------------------


async def _managed(ctx: Context, number: int | None) -> Group:
    """The group named (G<n>) or this room's, if the sender may manage it."""
    if number is not None:
        group = await _by_ref(ctx, number)
    elif ctx.room.is_direct:
        raise CommandError(f"Say which group (e.g. {ctx.prefix}group G5), or run it in its room.")
    else:
        found = await groups.by_room(ctx.session, ctx.room.room_id)
        if found is None:
            raise CommandError(
                f"This room has no group yet; a room admin can run {ctx.prefix}group register."
            )
        group = found
    own_room = group.room_id == ctx.room.room_id and ctx.sender.is_group_admin
    if not (own_room or ctx.sender.is_coordinator or ctx.moderates(group.area_code)):
        raise CommandError(
            f"Only {group.ref}'s room admins, moderators of its area or a coordinator can do that."
        )
    return group


@commands.command("group", summary="this room's group profile", roles=MANAGERS,
                  params=[GROUP_REF])
async def group_show(ctx: Context, args: Args) -> None:
    group = await _managed(ctx, args.group)
    status = "verified" if group.verified else "unverified"
    await ctx.reply(
        f"{describe(ctx, group)}, {status}\n"
        f"Themes: {_with_capital(ctx, group.themes)}; size {group.size}; reach {group.reach}\n"
        f"Listed: {_yes(group.listed)}; notices: {_yes(group.contact)}; "
        f"email: {group.email or 'none'}\n"
        f"My posts a day: {group.max_posts}; quiet: {_yes(group.quiet)}; "
        f"shares volunteers: {_yes(group.share_volunteers)}"
    )


def _with_capital(ctx: Context, keys: Sequence[str]) -> str:
    """food (health capital), advice (human capital): what each theme builds."""
    capital = {t.key: t.capital for t in ctx.app.themes}
    return ", ".join(f"{k} ({capital[k]} capital)" if k in capital else k for k in keys) or "none"


SETTABLE: Sequence[Param] = (
    *(_optional(p) for p in PROFILE.values()),
    Param("max_posts", Integer(minimum=0, maximum=20), required=False,
          help="posts a day I make here on my own; the rest go in a daily digest"),
    Param("quiet", YesNo(), required=False, help="answer only the room's admins here"),
    Param("share_volunteers", YesNo(), required=False),
)


@commands.command("group set", summary="change the group's profile (key=value ...)",
                  roles=MANAGERS, params=[GROUP_REF, *SETTABLE])
async def group_set(ctx: Context, args: Args) -> None:
    group = await _managed(ctx, args.group)
    changes = {p.name: args[p.name] for p in SETTABLE if args[p.name] is not None}
    if not changes:
        raise CommandError(
            f"Nothing to change; e.g. {ctx.prefix}group set listed=no max_posts=1 "
            f"({ctx.prefix}help group set lists the keys)."
        )
    if "email" in changes:
        _email(changes["email"])
    if group.room_id is None and changes.get("email", group.email) is None:
        raise CommandError("A group not on chat needs an email address.")
    notes = []
    if "area" in changes and changes["area"] != group.area_code and group.verified:
        group.verified_at = group.verified_by = None
        notes.append(
            f"It moved area, so a moderator of {ctx.app.areas.label(changes['area'])} "
            f"verifies it again ({ctx.prefix}group verify {group.ref})."
        )
    if COUNCIL in (group.type, changes.get("type")) and {"type", "area", "name"} & set(changes):
        refresh_after(ctx)  # a council renamed, moved or no longer one: topics follow
    for key, value in changes.items():
        setattr(group, key, list(value) if key == "themes" else value)
    shown = ", ".join(f"{k} {_show(v)}" for k, v in changes.items())
    await ctx.reply("\n".join([f"{group.ref} updated: {shown}.", *notes]))


def _show(value: object) -> str:
    if isinstance(value, bool):
        return _yes(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


@commands.command("group unregister", summary="remove the group's profile", roles=MANAGERS,
                  params=[GROUP_REF])
async def group_unregister(ctx: Context, args: Args) -> None:
    group = await _managed(ctx, args.group)
    group.unregistered_at = ctx.now
    if group.type == COUNCIL:
        refresh_after(ctx)
    await ctx.reply(
        f"{describe(ctx, group)} is unregistered: no more notices, and it is out of the "
        f"directory. {ctx.prefix}group register brings it back."
    )


# -- directory --------------------------------------------------------------------------


@commands.command(
    "directory",
    summary="groups by words, area, theme and type, with the room to reach them",
    params=[Param("area", AreaValue(allow_all=True), required=False),
            Param("theme", ThemeValue(), required=False),
            Param("type", TYPE, required=False)],
    rest="words",
)
async def directory(ctx: Context, args: Args) -> None:
    areas = ctx.app.areas
    words = name_key(args.rest or "").split()
    found = [
        g for g in await groups.listed(ctx.session)
        if (args.area is None or (g.area_code in areas and areas.contains(args.area, g.area_code)))
        and (args.theme is None or args.theme in g.themes)
        and (args.type is None or g.type == args.type)
        and all(word in name_key(g.name) for word in words)
    ]
    # Imported listings nobody has claimed yet are shown too, marked unclaimed.
    waiting = unclaimed.matching(await listings.unclaimed(ctx.session), areas, args.area,
                                 args.theme, args.type, words)
    # By parish (or area), its council first: the council is the locality's node.
    entries: list[Group | Listing] = [*found, *waiting]
    entries.sort(key=lambda e: (
        _label(ctx, e.area_code) if isinstance(e, Group) else unclaimed.place(ctx, e),
        (e.type if isinstance(e, Group) else e.org_type) != "parish-council",
        name_key(e.name), isinstance(e, Listing), e.id))
    if not entries:
        raise CommandError(
            "No listed groups match; try fewer words or a bigger area "
            f"({ctx.prefix}directory area=all lists every one)."
        )
    on_matrix = ctx.room.network is None
    lines = [f"{_listing(ctx, e)}: {_reach(ctx, e, on_matrix)}" if isinstance(e, Group)
             else unclaimed.line(ctx, e) for e in entries[:MAX_LINES]]
    if len(entries) > MAX_LINES:
        lines.append(f"...and {len(entries) - MAX_LINES} more; narrow with words, area=, "
                     "theme= or type=.")
    await ctx.reply("\n".join(lines))


def _listing(ctx: Context, group: Group) -> str:
    """G1 Wisby Food Bank (charity, Wisby) unverified; food, advice."""
    status = "" if group.verified else " unverified"
    return f"{describe(ctx, group)}{status}; {', '.join(group.themes) or 'no themes'}"


def _reach(ctx: Context, group: Group, on_matrix: bool) -> str:
    """How this asker can reach the group: never a raw room id."""
    ask = f"ask via {ctx.prefix}directory contact {group.ref}" if group.contact else ""
    if group.room_id is None:
        return "; ".join(filter(None, ["not on chat", ask]))
    route = route_for(ctx.app, group, on_matrix=on_matrix)
    return route or ask or "not open to contact"
