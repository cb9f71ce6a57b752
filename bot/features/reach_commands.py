"""!reach stats|predict|gaps|seed|report|map: the reach model, for coordinators only.

Answers go only to a DM or a room whose members are all coordinators; asked
anywhere else, the answer goes by DM. Every count is rendered by
``reach.report`` (under 5 shows as "<5"). Each command checks what it was asked
in its own transaction and defers the rest to a job that runs after it commits, off
the sync loop (:mod:`bot.commands.deferred`): the flow records, read in a snapshot
that holds no lock (in the command's transaction, which holds the write lock, every
other room's command waited for them), the room's members, the model and the charts.
The model's work runs in the bot's offload (:mod:`bot.features.reach_work`; under the
service, another process): it is mostly Python, and in a thread of the bot it held
the GIL every other room's command needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.commands.context import Context
from bot.commands.deferred import Outside
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import AreaValue, Decimal, Integer, ListOf, Ref, Text
from bot.features import reach_network, reach_work
from bot.features.reach_network import Records
from config.areas import AreaIndex
from storage import flow, funding, roles
from storage.outbox import Attachment

# The model (numpy, scipy, igraph, matplotlib: most of the bot's memory) is imported
# where the offload runs it, not at start-up: a bot that is never asked starts small.

RECENT = 10  # past notices the report checks the model against
NOTICE = Param("notice", Ref("F"), positional=True, ask="Which notice? (e.g. F12)")
AREA = Param("area", AreaValue(), required=False)


async def _coordinators(ctx: Context) -> frozenset[str]:
    coordinators = set(ctx.app.settings.roles.coordinators)
    coordinators |= {g.user_id for g in await roles.all_grants(ctx.session)
                     if g.role == "coordinator"}
    return frozenset(coordinators)


async def _records(out: Outside, area: str | None = None) -> Records:
    """The flow records (within ``area``), read after the command's transaction in a
    snapshot; an error if there is no network to model."""
    async with out.snapshot() as session:
        records = await reach_network.load_records(session)
    if area is not None:
        areas = out.app.areas
        records = reach_network.within(records, lambda code: _in_area(areas, area, code))
        if not records.rooms:
            raise CommandError(f"I know no group rooms in {areas.label(area)} yet; "
                               "groups get an area when they register.")
    if not records.rooms:
        raise CommandError("I'm in no group rooms yet, so there is no network to model.")
    return records


async def _later(ctx: Context, job: Callable[[Outside, Records], Awaitable[None]],
                 area: str | None = None) -> None:
    """Finish with ``job`` outside the transaction, on the records (within ``area``) once
    it is known where to answer. A refusal for want of records is said where the command
    was asked, as the command's own errors are."""
    coordinators = await _coordinators(ctx)

    async def run(out: Outside) -> None:
        records = await _records(out, area)
        await _answer_privately_unless_safe(out, coordinators)
        await job(out, records)

    ctx.defer(run)


async def _answer_privately_unless_safe(out: Outside, coordinators: frozenset[str]) -> None:
    """A DM, or a room of coordinators only; anywhere else the answer goes by DM."""
    if out.room.is_direct:
        return
    bot = out.app.transport.user_id
    if any(user != bot and user not in coordinators for user in await out.room_members()):
        out.private = True


def _in_area(areas: AreaIndex, area: str | None, code: str) -> bool:
    """``code`` lies inside ``area`` (or is it)."""
    return area is None or code == area or (code in areas and areas.contains(area, code))


async def _notice_exists(ctx: Context, notice_id: int) -> None:
    if await funding.notice(ctx.session, notice_id) is None:
        raise CommandError(f"There is no notice F{notice_id}; "
                           f"{ctx.prefix}funding list shows them.")


async def _posted_in(ctx: Context, notice_id: int) -> list[str]:
    """The rooms a notice went to; an error if it has not been posted."""
    await _notice_exists(ctx, notice_id)
    seeds = await reach_network.delivery_rooms(ctx.session, notice_id)
    if not seeds:
        raise CommandError(f"F{notice_id} has not been posted anywhere yet; give "
                           "seeds=<room,...> to see what posting it would do.")
    return seeds


async def _seeds_of(out: Outside, records: Records, given: list[str]) -> list[str]:
    """The rooms named (groups, hubs, room ids or aliases), all of them the network's nodes
    (the rooms of ``records``); an error naming the first that is not."""
    known = {r.room_id for r in records.rooms}
    group_rooms = reach_network.group_rooms(records)
    rooms = []
    for item in given:
        room = group_rooms.get(item.upper()) or item
        if room.startswith("#"):
            room = await out.app.transport.resolve_alias(room) or room
        if room not in known:
            raise CommandError(f"seeds: I don't know the room {item}; give a group (G5), a hub "
                               "(P3), a room id or an alias of a room I'm in.")
        rooms.append(room)
    return rooms


async def _people_per_district(out: Outside, records: Records) -> dict[str, int]:
    """Distinct active (pseudonymous) senders per district, counted by the database: one
    person in two rooms of a district counts once there."""
    rooms: dict[str, list[str]] = {}
    for facts in records.rooms:
        if (district := reach_network.district_of(facts, out.app.areas)) is not None:
            rooms.setdefault(district, []).append(facts.room_id)
    async with out.snapshot() as session:
        counts = {d: await flow.people_in(session, here) for d, here in sorted(rooms.items())}
    return {d: n for d, n in counts.items() if n}


@commands.command("reach stats", summary="rooms, groups, activity and bridging ties per district",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_stats(ctx: Context, args: Args) -> None:
    prefix = ctx.prefix

    async def job(out: Outside, records: Records) -> None:
        people = await _people_per_district(out, records)
        text = await out.compute(reach_work.stats_answer, records, out.app.areas, people)
        if text is None:
            raise CommandError("No rooms with a known area yet; groups get an area when they "
                               f"register ({prefix}group register).")
        out.reply(text)

    await _later(ctx, job, args.area)


@commands.command("reach predict", summary="expected reach of a notice per district",
                  roles=[Role.COORDINATOR],
                  params=[NOTICE, Param("seeds", ListOf(Text(max_length=255)), required=False)])
async def reach_predict(ctx: Context, args: Args) -> None:
    notice, given = args.notice, args.seeds
    posted = [] if given else await _posted_in(ctx, notice)
    if given:
        await _notice_exists(ctx, notice)
    history = await reach_network.trace_history(ctx.session, notice)

    async def job(out: Outside, records: Records) -> None:
        seeds = await _seeds_of(out, records, given) if given else posted
        out.reply(await out.compute(reach_work.predict_answer, records, out.app.areas,
                                    seeds, notice, history))

    await _later(ctx, job)


@commands.command("reach gaps", summary="localities and groups the network leaves out",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_gaps(ctx: Context, args: Args) -> None:
    areas = ctx.app.areas
    localities = areas.localities(args.area)
    codes = [a.code for a in localities]
    money = await reach_network.funding_by_locality(ctx.session, codes)
    collab_records, group_areas = await reach_network.collaboration_groups(ctx.session)
    histories = await reach_network.trace_histories(ctx.session)
    places: list[reach_work.Place] = []
    for a in localities:
        district = areas.district_of(a.code)
        places.append((a.code, a.name, district.code if district else None, a.imd_decile,
                       a.lat, a.lon))

    async def job(out: Outside, records: Records) -> None:
        text, png, alt = await out.compute(reach_work.gaps_answer, records, out.app.areas,
                                           places, money, collab_records, group_areas,
                                           histories)
        out.reply(text)
        out.reply(alt, attachment=Attachment("reach-gaps-map.png", "image/png", png))

    await _later(ctx, job, args.area)


@commands.command("reach seed", summary="the rooms to post a notice in for the most reach",
                  roles=[Role.COORDINATOR],
                  params=[NOTICE, Param("k", Integer(1, 50), required=False),
                          Param("equity", Decimal(0, 1), required=False)])
async def reach_seed(ctx: Context, args: Args) -> None:
    notice = args.notice
    await _notice_exists(ctx, notice)
    k = args.k or 5
    equity = 0.0 if args.equity is None else float(args.equity)

    async def job(out: Outside, records: Records) -> None:
        # Built and chosen in one step where the bot's offload runs it (another process
        # under the service): only the records go there, and the answer's text comes back.
        out.reply(f"F{notice}: " + await out.compute(reach_work.seed_answer, records,
                                                     out.app.areas, k, equity, notice))

    await _later(ctx, job)


@commands.command("reach report", summary="predicted against observed reach of a notice, "
                  "with a chart", roles=[Role.COORDINATOR], params=[NOTICE])
async def reach_report(ctx: Context, args: Args) -> None:
    notice = args.notice
    posted = await _posted_in(ctx, notice)
    signals = await reach_network.signals(ctx.session, notice)
    histories = await reach_network.trace_histories(ctx.session)
    past: list[reach_work.Past] = []  # the latest earlier notices: has the model been right?
    for earlier in await reach_network.recent_notices(ctx.session, notice, RECENT):
        past.append((earlier, await reach_network.delivery_rooms(ctx.session, earlier),
                     await reach_network.signals(ctx.session, earlier)))

    async def job(out: Outside, records: Records) -> None:
        text, png = await out.compute(reach_work.report_answer, records, out.app.areas,
                                      notice, posted, signals, histories, past)
        out.reply(text, attachment=Attachment(f"reach-F{notice}.png", "image/png", png))

    await _later(ctx, job)


@commands.command("reach map", summary="a picture of the network of groups by district",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_map(ctx: Context, args: Args) -> None:
    async def job(out: Outside, records: Records) -> None:
        text, png = await out.compute(reach_work.map_answer, records, out.app.areas)
        out.reply(text, attachment=Attachment("reach-map.png", "image/png", png))

    await _later(ctx, job, args.area)
