"""The reach model's heavy steps as module-level functions of plain records.

They run where :mod:`bot.offload` puts them (under the service, another process), so
a model build, a simulation or a chart, mostly Python holding the GIL, holds up no one
else's command. Everything they take and give back crosses a process boundary: records,
the area tree and what the command read in, text and image bytes out. A command's
refusal that depends on the model comes back as None, for the command to say in the
bot's own process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.features import reach_network
from bot.features.reach_network import Network, Records
from config.areas import AreaIndex

if TYPE_CHECKING:
    from reach.evaluate import RoomSignal
    from reach.traces import TracePrediction

RUNS = 1000
GAPS_SHOWN = 4  # with the reach-funding table and closed-in groups, one screen (12 lines)
RECENT_RUNS = 300

# A place as ``!reach gaps`` reads it: code, name, district code, IMD decile, lat, lon.
Place = tuple[str, str, str | None, int | None, float | None, float | None]
# An earlier notice ``!reach report`` checks the model against: id, its rooms, what they did.
Past = tuple[int, list[str], list["RoomSignal"]]


def predict(net: Network, seeds: list[str], notice_id: int, history: list[tuple[str, bool]],
            runs: int = RUNS) -> TracePrediction:
    """Rooms reached with a trace: the quantity the report observes, with trace rates fitted
    from ``history`` (other notices' rooms)."""
    from reach.traces import fit_rates, predict_traces

    networks = reach_network.node_networks(net)
    rates = fit_rates(((reach_network.network_of(net.records, room), hit)
                       for room, hit in history), networks)
    return predict_traces(net.graph, net.p, seeds, networks, rates, runs=runs, seed=notice_id)


def stats_answer(records: Records, areas: AreaIndex, people: dict[str, int]) -> str | None:
    """``!reach stats``: a line per district (``people``: distinct active senders per
    district, counted by the database); None when no room has a known area."""
    from reach import report
    from reach.structure import analyse

    net = reach_network.build(records, areas)
    graph = net.graph

    def district(room: str) -> str | None:
        v = graph.index.get(room)
        return graph.districts[graph.district[v]] if v is not None and graph.district[v] >= 0 \
            else None

    messages: dict[str, int] = {}
    for room, (n, _) in net.activity.items():
        if (d := district(room)) is not None:
            messages[d] = messages.get(d, 0) + n
    rows = report.district_stats(graph, analyse(graph), people, messages)
    if not rows:
        return None
    return report.render_stats(rows, net.labels)


def predict_answer(records: Records, areas: AreaIndex, seeds: list[str], notice: int,
                   history: list[tuple[str, bool]]) -> str:
    """``!reach predict``'s answer for notice ``notice`` posted in ``seeds`` (rooms of the
    network; others are left out)."""
    from reach import report

    net = reach_network.build(records, areas)
    seeds = [s for s in seeds if s in net.graph.index]
    pred = predict(net, seeds, notice, history)
    return f"F{notice}: " + report.render_trace_prediction(
        pred.districts, pred.total, pred.level, len(seeds), net.labels)


def gaps_answer(records: Records, areas: AreaIndex, places: list[Place],
                money: dict[str, tuple[int, float]], collab_records: list[list[int]],
                group_areas: dict[int, str], histories: dict[int, list[tuple[str, bool]]]
                ) -> tuple[str, bytes, str]:
    """``!reach gaps``: the ranked gaps' text, the localities' map (PNG) and its text
    alternative."""
    from reach import charts, overlay, report
    from reach.gaps import find_gaps
    from reach.structure import analyse

    net = reach_network.build(records, areas)
    graph = net.graph
    # Reach of a typical notice: one posted in every room that has had one (else every room).
    posted = sorted({room for d in net.records.deliveries.values() for room in d}
                    & set(graph.keys))
    seeds = posted or list(graph.keys)
    hubs = [r.room_id for r in net.records.rooms if r.hub]
    codes = [p[0] for p in places]
    history = [pair for pairs in histories.values() for pair in pairs]
    pred = predict(net, seeds, 0, history)
    closed = find_gaps(graph, analyse(graph), pred.node_prob).groups
    rows = overlay.join(
        [overlay.Place(*p) for p in places], pred.localities,
        {c: overlay.Funding(n, amount) for c, (n, amount) in money.items()},
        overlay.collaborations_per_locality(collab_records, group_areas,
                                            {c: c for c in codes}))
    ranks = overlay.with_ties(overlay.rank_gaps(rows, GAPS_SHOWN), graph, pred.node_prob, hubs)
    return (report.render_overlay(ranks, overlay.reach_bands(rows), net.labels,
                                  [g.key for g in closed], pred.level),
            charts.locality_map(rows), report.map_text(rows, net.labels))


def report_answer(records: Records, areas: AreaIndex, notice: int, posted: list[str],
                  signals: list[RoomSignal], histories: dict[int, list[tuple[str, bool]]],
                  past: list[Past]) -> tuple[str, bytes]:
    """``!reach report``: predicted against observed reach of notice ``notice`` (with how
    the model did on the ``past`` notices), and the chart (PNG)."""
    from reach import charts, report
    from reach.evaluate import Evaluation, Observed, evaluate
    from reach.traces import ALL, observed_traces

    net = reach_network.build(records, areas)
    seeds = [s for s in posted if s in net.graph.index]
    pred = predict(net, seeds, notice, reach_network.history_without(histories, notice))
    seen = observed_traces(net.graph, signals)
    observed = {d: Observed(n, 0) for d, n in seen.items()}
    ev = evaluate(pred.districts, observed, "groups")
    bands = evaluate([b for b in pred.bands if b.groups], observed, "groups")
    recent = []
    for earlier, rooms, sigs in past:
        known = [r for r in rooms if r in net.graph.index]
        if not known:
            continue
        then = predict(net, known, earlier, reach_network.history_before(histories, earlier),
                       RECENT_RUNS)
        iv = then.total.groups_reached
        recent.append(report.RecentCheck(
            earlier, iv.lo, iv.hi, observed_traces(net.graph, sigs).get(ALL, 0), iv.chance))
    both = Evaluation(ev.measure, ev.level, ev.rows + bands.rows, ev.mean_abs_log_error,
                      ev.bias, ev.coverage, ev.spearman, ev.expected)
    title = f"F{notice}: predicted vs observed rooms reached (with a trace)"
    return (f"F{notice}: " + report.render_traces(ev, pred.total, seen.get(ALL, 0), net.labels,
                                                  bands, recent),
            charts.prediction_chart(both, net.labels, title))


def map_answer(records: Records, areas: AreaIndex) -> tuple[str, bytes]:
    """``!reach map``: a line saying what the picture shows, and the picture (PNG)."""
    from reach import charts, report
    from reach.structure import analyse

    net = reach_network.build(records, areas)
    graph = net.graph
    structure = analyse(graph)
    png = charts.network_map(graph, structure, names=net.labels)
    ties, bridging = int(structure.edges.shape[0]), int(structure.bridging.sum())
    return (f"The network: {report.count(graph.n)} rooms and groups, {report.count(ties)} ties, "
            f"{report.count(bridging)} of them bridging (in red).", png)


def seed_answer(records: Records, areas: AreaIndex, k: int, equity: float, notice: int) -> str:
    """``!reach seed``'s answer: the network built from ``records``, then the ``k`` rooms
    to post notice ``notice`` in for the most reach (weighted towards poorer places by
    ``equity``), as the report words it."""
    import numpy as np

    from reach import report
    from reach.seeding import choose_seeds, equity_weights

    net = reach_network.build(records, areas)
    graph = net.graph
    weights = equity_weights(graph, equity, np.maximum(graph.members, 1).astype(float))
    choice = choose_seeds(graph, net.p, k, weights=weights, eps=0.2, seed=notice)
    return report.render_seeds(choice, net.labels, equity)
