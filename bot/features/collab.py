"""!collab: evidence that collaborating paid off, and its sum per area and over time.

The report's recommendation 3: coordinators show groups that working together
pays. A record is about groups, not people; anyone may read the sums.
"""

from __future__ import annotations

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param
from bot.commands.values import AreaValue, Choice, ListOf, Money, Ref, Text
from bot.features import impact
from bot.features.representatives import Reps
from storage import collab, groups, introductions

ONE = {"joint-funding": "joint funding bid", "shared-event": "shared event",
       "shared-volunteers": "volunteer sharing", "referral": "referral", "other": "collaboration"}
TYPE = Choice(collab.TYPES, aliases={"funding": "joint-funding", "joint-bid": "joint-funding",
                                     "event": "shared-event", "volunteers": "shared-volunteers"})


@commands.command(
    "collab record",
    summary="record that groups worked together (group admin or coordinator)",
    params=[Param("type", TYPE), Param("groups", ListOf(Ref("G"), max_items=10)),
            Param("amount", Money(), required=False, help="joint-funding only, in pounds"),
            Param("note", Text(max_length=300), required=False)],
)
async def record(ctx: Context, args: Args) -> None:
    group_ids: list[int] = list(args.groups)
    if len(group_ids) < 2:
        raise CommandError("Collaboration takes at least two groups: groups=G3,G7.")
    for number in group_ids:
        if await groups.by_id(ctx.session, number) is None:
            raise CommandError(f"There is no group G{number}; nothing was recorded.")
    if not ctx.sender.is_coordinator:
        reps = Reps(ctx.app, ctx.session)
        admin_of = [n for n in group_ids if ctx.sender.user_id in await reps.of(n)]
        if not admin_of:
            raise CommandError("Only an admin of one of these groups' rooms, or a coordinator, "
                               "can record their collaboration.")
    amount = _amount(args.type, args.amount)
    row = await collab.record(ctx.session, type=args.type, group_ids=group_ids, amount=amount,
                              note=args.note, author=ctx.sender.user_id, at=ctx.now)
    money = f", £{amount:,}" if amount else ""
    await ctx.reply(f"{row.ref} recorded: {ONE[row.type]} between "
                    f"{', '.join(f'G{g}' for g in row.group_ids)}{money}. "
                    f"{ctx.prefix}collab impact shows the sums.")


def _amount(kind: str, given: tuple[int | None, int | None] | None) -> int | None:
    if given is None:
        return None
    if kind != "joint-funding":
        raise CommandError("amount= counts only for joint-funding; leave it out for "
                           f"{kind}, or put details in note=.")
    low, high = given
    if low is None or low != high:
        raise CommandError("amount= takes the one sum the bid won, e.g. amount=5000.")
    return low


@commands.command("collab remove", summary="remove a collaboration record you made",
                  params=[Param("record", Ref("C"), positional=True)])
async def remove(ctx: Context, args: Args) -> None:
    row = await collab.get(ctx.session, args.record)
    if row is None:
        raise CommandError(f"There is no record C{args.record}.")
    if row.author != ctx.sender.user_id and not ctx.sender.is_coordinator:
        raise CommandError(f"Only {row.author}, who recorded {row.ref}, or a coordinator can "
                           "remove it.")
    await collab.remove(ctx.session, row, ctx.sender.user_id, ctx.now)
    await ctx.reply(f"{row.ref} removed; it no longer counts in {ctx.prefix}collab impact.")


@commands.command("collab impact", summary="collaboration evidence summed per area and quarter",
                  params=[Param("area", AreaValue(allow_all=True), required=False)])
async def show_impact(ctx: Context, args: Args) -> None:
    code = args.area or ctx.app.areas.root.code
    group_areas = await collab.group_areas(ctx.session)
    records = [impact.Evidence(r.type, tuple(r.group_ids), r.amount, r.recorded_at)
               for r in await collab.current(ctx.session)]
    # An accepted introduction is two groups choosing to work together: evidence too.
    records += [impact.Evidence("introduction", (asker, answerer), None, at)
                for asker, answerer, at in await introductions.accepted_between_groups(
                    ctx.session)]
    await ctx.reply(impact.summarise(records, group_areas, ctx.app.areas, code, ctx.tz))
