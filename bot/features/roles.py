"""!role grant|revoke, !roles, !moderators: who may do what, and where."""

from __future__ import annotations

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, AskFor, CommandError, Param, Role
from bot.commands.values import AreaValue, Choice, Person
from bot.host import RoleChange
from storage import roles

GRANTABLE = Choice(("coordinator", "moderator"))
PERSON = Param("person", Person(), positional=True, help="Matrix id or display name")
ROLE = Param("role", GRANTABLE, positional=True)
AREA = Param("area", AreaValue(), required=False,
             ask="Which area will they moderate? (a name like Wisbech, or a GSS code)")


def _check_area(role: str, area: str | None) -> str:
    if role == "moderator" and area is None:
        raise AskFor("area")
    if role == "coordinator" and area is not None:
        raise CommandError("Coordinators work county-wide: leave out area=.")
    return area or ""


@commands.command("role grant", summary="give someone a role", roles=[Role.ADMIN],
                  params=[PERSON, ROLE, AREA])
async def role_grant(ctx: Context, args: Args) -> None:
    area = _check_area(args.role, args.area)
    changed = await roles.grant(ctx.session, args.person, args.role, area, ctx.sender.user_id,
                                ctx.now)
    where = f" of {ctx.app.areas.label(area)}" if area else ""
    if not changed:
        await ctx.reply(f"{args.person} is already {args.role}{where}; nothing changed.")
        return
    change = RoleChange(args.person, args.role, area, granted=True, by=ctx.sender.user_id,
                        at=ctx.now)
    for listener in ctx.app.role_listeners:
        await listener(ctx.session, change)
    await ctx.reply(f"{args.person} is now {args.role}{where}.")


@commands.command("role revoke", summary="take a role away", roles=[Role.ADMIN],
                  params=[PERSON, ROLE, AREA])
async def role_revoke(ctx: Context, args: Args) -> None:
    area = _check_area(args.role, args.area)
    config = ctx.app.settings.roles
    in_config = (args.role == "coordinator" and args.person in config.coordinators) or (
        args.role == "moderator" and area in ctx.app.config_moderators.get(args.person, ())
    )
    if in_config:
        raise CommandError(
            f"{args.person} is {args.role} in the config file; "
            "roles from config can only be removed there."
        )
    if not await roles.revoke(ctx.session, args.person, args.role, area):
        raise CommandError(f"{args.person} was not {args.role} there; nothing changed.")
    change = RoleChange(args.person, args.role, area, granted=False, by=ctx.sender.user_id,
                        at=ctx.now)
    for listener in ctx.app.role_listeners:
        await listener(ctx.session, change)
    await ctx.reply(f"{args.person} is no longer {args.role}.")


@commands.command("roles", summary="who holds which role")
async def list_roles(ctx: Context, args: Args) -> None:
    app = ctx.app
    config = app.settings.roles
    lines = []
    if config.admins:
        lines.append("Admins: " + ", ".join(config.admins))
    coordinators = set(config.coordinators)
    moderators: dict[str, set[str]] = {}
    for user, codes in app.config_moderators.items():
        for code in codes:
            moderators.setdefault(code, set()).add(user)
    for grant in await roles.all_grants(ctx.session):
        if grant.role == "coordinator":
            coordinators.add(grant.user_id)
        else:
            moderators.setdefault(grant.area_code, set()).add(grant.user_id)
    if coordinators:
        lines.append("Coordinators: " + ", ".join(sorted(coordinators)))
    for code, users in sorted(moderators.items(), key=lambda kv: app.areas.label(kv[0])):
        lines.append(f"Moderators of {app.areas.label(code)}: " + ", ".join(sorted(users)))
    await ctx.reply("\n".join(lines) if lines else "No roles are set yet.")


async def moderated_areas(ctx: Context) -> dict[str, frozenset[str]]:
    """Every moderator (from config and from grants) -> the area codes they moderate."""
    candidates = dict(ctx.app.config_moderators)
    for grant in await roles.all_grants(ctx.session):
        if grant.role == "moderator":
            candidates[grant.user_id] = candidates.get(grant.user_id, frozenset()) | {
                grant.area_code
            }
    return candidates


@commands.command("moderators", summary="who moderates an area",
                  params=[Param("area", AreaValue(), required=False, positional=True)])
async def list_moderators(ctx: Context, args: Args) -> None:
    app = ctx.app
    area = args.area or app.areas.root.code
    found: dict[str, set[str]] = {}
    for user, codes in (await moderated_areas(ctx)).items():
        for code in codes:
            # Moderators of the area, of anything containing it, and of anything inside it.
            if app.areas.contains(code, area) or app.areas.contains(area, code):
                found.setdefault(code, set()).add(user)
    if not found:
        await ctx.reply(f"Nobody moderates {app.areas.label(area)} yet.")
        return
    lines = [f"{app.areas.label(code)}: {', '.join(sorted(users))}"
             for code, users in sorted(found.items())]
    await ctx.reply("\n".join(lines[:12]))
