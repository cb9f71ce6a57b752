"""!reach stats|predict|gaps|seed|report|map: the reach model, for coordinators only.

Answers go only to a DM or a room whose members are all coordinators; asked
anywhere else, the answer goes by DM. Every count is rendered by
``reach.report`` (under 5 shows as "<5"). The model's work runs in a thread so
the bot keeps hearing other rooms meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import AreaValue, Decimal, Integer, ListOf, Ref, Text
from bot.features import reach_network
from bot.features.reach_network import Network
from reach import charts, report
from reach.evaluate import evaluate, observed_by_district
from reach.gaps import AreaInfo, find_gaps
from reach.predict import Prediction, predict
from reach.seeding import choose_seeds, equity_weights
from reach.structure import analyse
from storage import funding, roles
from storage.outbox import Attachment

RUNS = 1000
T = TypeVar("T")

NOTICE = Param("notice", Ref("F"), positional=True, ask="Which notice? (e.g. F12)")
AREA = Param("area", AreaValue(), required=False)


async def _off_loop(work: Callable[[], T]) -> T:
    return await asyncio.to_thread(work)


async def _answer_privately_unless_safe(ctx: Context) -> None:
    """A DM, or a room of coordinators only; anywhere else the answer goes by DM."""
    if ctx.room.is_direct:
        return
    config = ctx.app.settings.roles.coordinators
    for user in await ctx.room_members():
        if user == ctx.app.transport.user_id or user in config:
            continue
        if not any(g.role == "coordinator" for g in await roles.grants_for(ctx.session, user)):
            ctx.private_replies = True
            return


async def _network(ctx: Context, area: str | None = None) -> Network:
    await _answer_privately_unless_safe(ctx)
    records = await reach_network.load_records(ctx.session)
    if area is not None:
        records = reach_network.within(records, lambda code: _in_area(ctx, area, code))
        if not records.rooms:
            raise CommandError(f"I know no group rooms in {ctx.app.areas.label(area)} yet; "
                               "groups get an area when they register.")
    if not records.rooms:
        raise CommandError("I'm in no group rooms yet, so there is no network to model.")
    return await _off_loop(lambda: reach_network.build(records, ctx.app.areas))


def _in_area(ctx: Context, area: str | None, code: str) -> bool:
    """``code`` lies inside ``area`` (or is it)."""
    areas = ctx.app.areas
    return area is None or code == area or (code in areas and areas.contains(area, code))


async def _seeds_of(ctx: Context, net: Network, notice_id: int, given: list[str] | None
                    ) -> list[str]:
    notice = await funding.notice(ctx.session, notice_id)
    if notice is None:
        raise CommandError(f"There is no notice F{notice_id}; {ctx.prefix}funding list shows them.")
    if not given:
        seeds = await reach_network.delivery_rooms(ctx.session, notice_id)
        if not seeds:
            raise CommandError(f"F{notice_id} has not been posted anywhere yet; give "
                               "seeds=<room,...> to see what posting it would do.")
        return [s for s in seeds if s in net.graph.index]
    out = []
    for item in given:
        room = net.group_rooms.get(item.upper()) or item
        if room.startswith("#"):
            room = await ctx.app.transport.resolve_alias(room) or room
        if room not in net.graph.index:
            raise CommandError(f"seeds: I don't know the room {item}; give a group (G5), a room id "
                               "or an alias of a room I'm in.")
        out.append(room)
    return out


def _predict(net: Network, seeds: list[str], notice_id: int) -> Prediction:
    return predict(net.graph, net.p, seeds, runs=RUNS, seed=notice_id)


@commands.command("reach stats", summary="rooms, groups, activity and bridging ties per district",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_stats(ctx: Context, args: Args) -> None:
    net = await _network(ctx, args.area)
    graph = net.graph
    def district(room: str) -> str | None:
        v = graph.index.get(room)
        return graph.districts[graph.district[v]] if v is not None and graph.district[v] >= 0 \
            else None

    messages: dict[str, int] = defaultdict(int)
    for room, (n, _) in net.activity.items():
        if (d := district(room)) is not None:
            messages[d] += n
    people: dict[str, set[str]] = defaultdict(set)  # distinct pseudonyms: one person, one count
    for room, key in net.records.memberships:
        if (d := district(room)) is not None:
            people[d].add(key)
    active = {d: len(keys) for d, keys in people.items()}
    structure = await _off_loop(lambda: analyse(graph))
    rows = report.district_stats(graph, structure, active, messages)
    if not rows:
        raise CommandError("No rooms with a known area yet; groups get an area when they "
                           f"register ({ctx.prefix}group register).")
    await ctx.reply(report.render_stats(rows, net.labels))


@commands.command("reach predict", summary="expected reach of a notice per district",
                  roles=[Role.COORDINATOR],
                  params=[NOTICE, Param("seeds", ListOf(Text(max_length=255)), required=False)])
async def reach_predict(ctx: Context, args: Args) -> None:
    net = await _network(ctx)
    seeds = await _seeds_of(ctx, net, args.notice, args.seeds)
    pred = await _off_loop(lambda: _predict(net, seeds, args.notice))
    await ctx.reply(f"F{args.notice}: " + report.render_prediction(pred, net.labels))


@commands.command("reach gaps", summary="localities and groups the network leaves out",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_gaps(ctx: Context, args: Args) -> None:
    net = await _network(ctx, args.area)
    graph = net.graph
    areas = ctx.app.areas
    # Reach of a typical notice: one posted in every room that has had one (else every room).
    posted = sorted({room for d in net.records.deliveries.values() for room in d}
                    & set(graph.keys))
    seeds = posted or list(graph.keys)
    info = {}
    for a in areas.localities(args.area):
        district = areas.district_of(a.code)
        info[a.code] = AreaInfo(district.code if district else None, a.imd_decile)

    def work() -> str:
        structure = analyse(graph)
        pred = predict(graph, net.p, seeds, runs=RUNS, seed=0)
        gaps = find_gaps(graph, structure, pred.node_prob, areas=info)
        return report.render_gaps(gaps, net.labels)

    await ctx.reply(await _off_loop(work))


@commands.command("reach seed", summary="the rooms to post a notice in for the most reach",
                  roles=[Role.COORDINATOR],
                  params=[NOTICE, Param("k", Integer(1, 50), required=False),
                          Param("equity", Decimal(0, 1), required=False)])
async def reach_seed(ctx: Context, args: Args) -> None:
    net = await _network(ctx)
    if await funding.notice(ctx.session, args.notice) is None:
        raise CommandError(f"There is no notice F{args.notice}; "
                           f"{ctx.prefix}funding list shows them.")
    k = args.k or 5
    equity = 0.0 if args.equity is None else float(args.equity)
    graph = net.graph

    def work() -> str:
        weights = equity_weights(graph, equity, np.maximum(graph.members, 1).astype(float))
        choice = choose_seeds(graph, net.p, k, weights=weights, eps=0.2, seed=args.notice)
        return report.render_seeds(choice, net.labels, equity)

    await ctx.reply(f"F{args.notice}: " + await _off_loop(work))


@commands.command("reach report", summary="predicted against observed reach of a notice, "
                  "with a chart", roles=[Role.COORDINATOR], params=[NOTICE])
async def reach_report(ctx: Context, args: Args) -> None:
    net = await _network(ctx)
    seeds = await _seeds_of(ctx, net, args.notice, None)
    signals = await reach_network.signals(ctx.session, args.notice)

    def work() -> tuple[str, bytes]:
        pred = _predict(net, seeds, args.notice)
        ev = evaluate(pred.districts, observed_by_district(net.graph, signals), "groups")
        title = f"F{args.notice}: predicted vs observed groups reached"
        return report.render_evaluation(ev, net.labels), charts.prediction_chart(
            ev, net.labels, title)

    text, png = await _off_loop(work)
    await ctx.reply(f"F{args.notice}: " + text,
                    attachment=Attachment(f"reach-F{args.notice}.png", "image/png", png))


@commands.command("reach map", summary="a picture of the network of groups by district",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_map(ctx: Context, args: Args) -> None:
    net = await _network(ctx, args.area)
    graph = net.graph

    def work() -> tuple[bytes, int, int]:
        structure = analyse(graph)
        return (charts.network_map(graph, structure, names=net.labels),
                int(structure.edges.shape[0]), int(structure.bridging.sum()))

    png, ties, bridging = await _off_loop(work)
    await ctx.reply(
        f"The network: {report.count(graph.n)} rooms and groups, {report.count(ties)} ties, "
        f"{report.count(bridging)} of them bridging (in red).",
        attachment=Attachment("reach-map.png", "image/png", png),
    )
