"""!reach stats|predict|gaps|seed|report|map: the reach model, for coordinators only.

Answers go only to a DM or a room whose members are all coordinators; asked
anywhere else, the answer goes by DM. Every count is rendered by
``reach.report`` (under 5 shows as "<5"). Each command reads the database in
its own transaction and defers the rest (the room's members, the model, the
charts) to a job that runs after it commits, off the sync loop and in a
thread (:mod:`bot.commands.deferred`), so no one else waits for the model;
``!reach seed`` runs in the bot's offload (another process under the service).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands.context import Context
from bot.commands.deferred import Outside
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import AreaValue, Decimal, Integer, ListOf, Ref, Text
from bot.features import reach_network
from bot.features.reach_network import Network, Records
from bot.features.reach_work import seed_answer
from storage import funding, roles
from storage.outbox import Attachment

if TYPE_CHECKING:
    from reach.traces import TracePrediction

# The model (numpy, scipy, igraph, matplotlib: most of the bot's memory) is imported by
# the commands that run it, not at start-up: a bot that is never asked starts small.

RUNS = 1000
GAPS_SHOWN = 4  # with the reach-funding table and closed-in groups, one screen (12 lines)
RECENT = 10  # past notices the report checks the model against
RECENT_RUNS = 300
NOTICE = Param("notice", Ref("F"), positional=True, ask="Which notice? (e.g. F12)")
AREA = Param("area", AreaValue(), required=False)


@dataclass(frozen=True)
class Loaded:
    """What a reach command read in its transaction, for the job that runs after it."""

    records: Records
    coordinators: frozenset[str]


async def _load(ctx: Context, area: str | None = None) -> Loaded:
    """The flow records (within ``area``) and who is a coordinator; errors said at once."""
    records = await reach_network.load_records(ctx.session)
    if area is not None:
        records = reach_network.within(records, lambda code: _in_area(ctx, area, code))
        if not records.rooms:
            raise CommandError(f"I know no group rooms in {ctx.app.areas.label(area)} yet; "
                               "groups get an area when they register.")
    if not records.rooms:
        raise CommandError("I'm in no group rooms yet, so there is no network to model.")
    coordinators = set(ctx.app.settings.roles.coordinators)
    coordinators |= {g.user_id for g in await roles.all_grants(ctx.session)
                     if g.role == "coordinator"}
    return Loaded(records, frozenset(coordinators))


def _later(ctx: Context, loaded: Loaded, job: Callable[[Outside, Network], Awaitable[None]]
           ) -> None:
    """Finish with ``job`` outside the transaction, on the network built in a thread."""

    async def run(out: Outside) -> None:
        await _answer_privately_unless_safe(out, loaded.coordinators)
        net = await out.thread(lambda: reach_network.build(loaded.records, out.app.areas))
        await job(out, net)

    ctx.defer(run)


async def _answer_privately_unless_safe(out: Outside, coordinators: frozenset[str]) -> None:
    """A DM, or a room of coordinators only; anywhere else the answer goes by DM."""
    if out.room.is_direct:
        return
    bot = out.app.transport.user_id
    if any(user != bot and user not in coordinators for user in await out.room_members()):
        out.private = True


def _in_area(ctx: Context, area: str | None, code: str) -> bool:
    """``code`` lies inside ``area`` (or is it)."""
    areas = ctx.app.areas
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


async def _seeds_of(out: Outside, net: Network, given: list[str]) -> list[str]:
    rooms = []
    for item in given:
        room = net.group_rooms.get(item.upper()) or item
        if room.startswith("#"):
            room = await out.app.transport.resolve_alias(room) or room
        if room not in net.graph.index:
            raise CommandError(f"seeds: I don't know the room {item}; give a group (G5), a hub "
                               "(P3), a room id or an alias of a room I'm in.")
        rooms.append(room)
    return rooms


def _predict(net: Network, seeds: list[str], notice_id: int, history: list[tuple[str, bool]],
             runs: int = RUNS) -> TracePrediction:
    """Rooms reached with a trace: the quantity the report observes, with trace rates fitted
    from ``history`` (other notices' rooms)."""
    from reach.traces import fit_rates, predict_traces

    networks = reach_network.node_networks(net)
    rates = fit_rates(((reach_network.network_of(net.records, room), hit)
                       for room, hit in history), networks)
    return predict_traces(net.graph, net.p, seeds, networks, rates, runs=runs, seed=notice_id)


@commands.command("reach stats", summary="rooms, groups, activity and bridging ties per district",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_stats(ctx: Context, args: Args) -> None:
    loaded = await _load(ctx, args.area)
    prefix = ctx.prefix

    async def job(out: Outside, net: Network) -> None:
        from reach import report
        from reach.structure import analyse

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
        structure = await out.thread(lambda: analyse(graph))
        rows = report.district_stats(graph, structure, active, messages)
        if not rows:
            raise CommandError("No rooms with a known area yet; groups get an area when they "
                               f"register ({prefix}group register).")
        out.reply(report.render_stats(rows, net.labels))

    _later(ctx, loaded, job)


@commands.command("reach predict", summary="expected reach of a notice per district",
                  roles=[Role.COORDINATOR],
                  params=[NOTICE, Param("seeds", ListOf(Text(max_length=255)), required=False)])
async def reach_predict(ctx: Context, args: Args) -> None:
    loaded = await _load(ctx)
    notice, given = args.notice, args.seeds
    posted = [] if given else await _posted_in(ctx, notice)
    if given:
        await _notice_exists(ctx, notice)
    history = await reach_network.trace_history(ctx.session, notice)

    async def job(out: Outside, net: Network) -> None:
        from reach import report

        seeds = await _seeds_of(out, net, given) if given else \
            [s for s in posted if s in net.graph.index]
        pred = await out.thread(lambda: _predict(net, seeds, notice, history))
        out.reply(f"F{notice}: " + report.render_trace_prediction(
            pred.districts, pred.total, pred.level, len(seeds), net.labels))

    _later(ctx, loaded, job)


@commands.command("reach gaps", summary="localities and groups the network leaves out",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_gaps(ctx: Context, args: Args) -> None:
    loaded = await _load(ctx, args.area)
    areas = ctx.app.areas
    localities = areas.localities(args.area)
    codes = [a.code for a in localities]
    money = await reach_network.funding_by_locality(ctx.session, codes)
    collab_records, group_areas = await reach_network.collaboration_groups(ctx.session)
    histories = await reach_network.trace_histories(ctx.session)
    places = []
    for a in localities:
        district = areas.district_of(a.code)
        places.append((a.code, a.name, district.code if district else None, a.imd_decile,
                       a.lat, a.lon))

    async def job(out: Outside, net: Network) -> None:
        from reach import charts, overlay, report

        graph = net.graph
        # Reach of a typical notice: one posted in every room that has had one (else every room).
        posted = sorted({room for d in net.records.deliveries.values() for room in d}
                        & set(graph.keys))
        seeds = posted or list(graph.keys)
        hubs = [r.room_id for r in net.records.rooms if r.hub]

        def work() -> tuple[str, bytes, str]:
            from reach.gaps import find_gaps
            from reach.structure import analyse

            history = [pair for pairs in histories.values() for pair in pairs]
            pred = _predict(net, seeds, 0, history)
            closed = find_gaps(graph, analyse(graph), pred.node_prob).groups
            rows = overlay.join(
                [overlay.Place(*p) for p in places], pred.localities,
                {c: overlay.Funding(n, amount) for c, (n, amount) in money.items()},
                overlay.collaborations_per_locality(collab_records, group_areas,
                                                    {c: c for c in codes}))
            ranks = overlay.with_ties(overlay.rank_gaps(rows, GAPS_SHOWN), graph, pred.node_prob,
                                      hubs)
            return (report.render_overlay(ranks, overlay.reach_bands(rows), net.labels,
                                          [g.key for g in closed], pred.level),
                    charts.locality_map(rows), report.map_text(rows, net.labels))

        text, png, alt = await out.thread(work)
        out.reply(text)
        out.reply(alt, attachment=Attachment("reach-gaps-map.png", "image/png", png))

    _later(ctx, loaded, job)


@commands.command("reach seed", summary="the rooms to post a notice in for the most reach",
                  roles=[Role.COORDINATOR],
                  params=[NOTICE, Param("k", Integer(1, 50), required=False),
                          Param("equity", Decimal(0, 1), required=False)])
async def reach_seed(ctx: Context, args: Args) -> None:
    loaded = await _load(ctx)
    notice = args.notice
    await _notice_exists(ctx, notice)
    k = args.k or 5
    equity = 0.0 if args.equity is None else float(args.equity)

    async def run(out: Outside) -> None:
        await _answer_privately_unless_safe(out, loaded.coordinators)
        # Built and chosen in one step where the bot's offload runs it (another process
        # under the service): only the records go there, and the answer's text comes back.
        out.reply(f"F{notice}: " + await out.compute(seed_answer, loaded.records,
                                                     out.app.areas, k, equity, notice))

    ctx.defer(run)


@commands.command("reach report", summary="predicted against observed reach of a notice, "
                  "with a chart", roles=[Role.COORDINATOR], params=[NOTICE])
async def reach_report(ctx: Context, args: Args) -> None:
    loaded = await _load(ctx)
    notice = args.notice
    posted = await _posted_in(ctx, notice)
    signals = await reach_network.signals(ctx.session, notice)
    histories = await reach_network.trace_histories(ctx.session)
    past = []  # the latest earlier notices, to say whether the model has been right lately
    for earlier in await reach_network.recent_notices(ctx.session, notice, RECENT):
        past.append((earlier, await reach_network.delivery_rooms(ctx.session, earlier),
                     await reach_network.signals(ctx.session, earlier)))

    async def job(out: Outside, net: Network) -> None:
        seeds = [s for s in posted if s in net.graph.index]

        def work() -> tuple[str, bytes]:
            from reach import charts, report
            from reach.evaluate import Evaluation, Observed, evaluate
            from reach.traces import ALL, observed_traces

            pred = _predict(net, seeds, notice,
                            reach_network.history_without(histories, notice))
            seen = observed_traces(net.graph, signals)
            observed = {d: Observed(n, 0) for d, n in seen.items()}
            ev = evaluate(pred.districts, observed, "groups")
            bands = evaluate([b for b in pred.bands if b.groups], observed, "groups")
            recent = []
            for earlier, rooms, sigs in past:
                known = [r for r in rooms if r in net.graph.index]
                if not known:
                    continue
                then = _predict(net, known, earlier,
                                reach_network.history_before(histories, earlier), RECENT_RUNS)
                iv = then.total.groups_reached
                recent.append(report.RecentCheck(
                    earlier, iv.lo, iv.hi, observed_traces(net.graph, sigs).get(ALL, 0),
                    iv.chance))
            both = Evaluation(ev.measure, ev.level, ev.rows + bands.rows, ev.mean_abs_log_error,
                              ev.bias, ev.coverage, ev.spearman, ev.expected)
            title = f"F{notice}: predicted vs observed rooms reached (with a trace)"
            return (report.render_traces(ev, pred.total, seen.get(ALL, 0), net.labels, bands,
                                         recent),
                    charts.prediction_chart(both, net.labels, title))

        text, png = await out.thread(work)
        out.reply(f"F{notice}: " + text,
                  attachment=Attachment(f"reach-F{notice}.png", "image/png", png))

    _later(ctx, loaded, job)


@commands.command("reach map", summary="a picture of the network of groups by district",
                  roles=[Role.COORDINATOR], params=[AREA])
async def reach_map(ctx: Context, args: Args) -> None:
    loaded = await _load(ctx, args.area)

    async def job(out: Outside, net: Network) -> None:
        from reach import charts, report
        from reach.structure import analyse

        graph = net.graph

        def work() -> tuple[bytes, int, int]:
            structure = analyse(graph)
            return (charts.network_map(graph, structure, names=net.labels),
                    int(structure.edges.shape[0]), int(structure.bridging.sum()))

        png, ties, bridging = await out.thread(work)
        out.reply(
            f"The network: {report.count(graph.n)} rooms and groups, {report.count(ties)} ties, "
            f"{report.count(bridging)} of them bridging (in red).",
            attachment=Attachment("reach-map.png", "image/png", png),
        )

    _later(ctx, loaded, job)
