"""PNG charts for `!reach report` and `!reach map`.

Figures are drawn on the Agg canvas directly (no pyplot), so nothing global
changes in the bot's process and no display is needed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib
import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from reach.evaluate import Evaluation
from reach.graph import NODE_KINDS, ReachGraph
from reach.overlay import LocalityOverlay
from reach.report import SMALL
from reach.structure import Structure


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _masked(x: np.ndarray) -> np.ndarray:
    """Counts under 5 drawn at 2.5, inside the "<5" band, so no small count can be read off."""
    x = np.asarray(x, dtype=float)
    return np.where(np.round(x) < SMALL, SMALL / 2, x)


def prediction_chart(ev: Evaluation, names: Mapping[str, str] | None = None,
                     title: str = "Predicted vs observed reach") -> bytes:
    """Per district: the predicted interval as a bar, its mean as a tick, observed as a dot.

    Values under 5 are drawn in a grey "<5" band rather than where they are.
    """
    rows = ev.rows
    fig = Figure(figsize=(7, 0.5 * len(rows) + 2.0))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    lo = _masked(np.array([r.lo for r in rows]))
    hi = _masked(np.array([r.hi for r in rows]))
    ax.axvspan(0, SMALL, color="#eeeeee", zorder=0, label="<5 (not shown exactly)")
    ax.barh(y, hi - lo, left=lo, height=0.5, color="#9ecae1",
            label=f"predicted {round(ev.level * 100)}% interval")
    ax.scatter(_masked(np.array([r.predicted for r in rows])), y, marker="|", s=200,
               color="#08519c", label="predicted mean")
    ax.scatter(_masked(np.array([r.observed for r in rows])), y, color="#d94801", zorder=3,
               label="observed")
    ax.set_yticks(y, [(names or {}).get(r.area, r.area) for r in rows])
    ax.set_xlim(left=0)
    ax.set_xlabel(f"{ev.measure} reached")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize="small")
    fig.tight_layout()
    return _png(fig)


def network_map(
    graph: ReachGraph,
    structure: Structure,
    *,
    max_nodes: int = 300,
    seed: int = 0,
    names: Mapping[str, str] | None = None,
    area: str | None = None,
) -> bytes:
    """Rooms and groups coloured by district, bridging ties in red.

    ``area`` (a district or locality code) limits the map to the groups in it.
    Large graphs are cut to the ``max_nodes`` best-connected rooms and groups so
    the picture stays readable; the layout is seeded, so the map is stable.
    Cost: O(max_nodes^2) for the spring layout.
    """
    shown = graph.kind != NODE_KINDS.index("person")
    if area is not None:
        in_district = graph.district == (graph.districts.index(area)
                                         if area in graph.districts else -2)
        in_locality = graph.locality == (graph.localities.index(area)
                                         if area in graph.localities else -2)
        shown &= in_district | in_locality
    rooms = np.flatnonzero(shown)
    if rooms.size > max_nodes:
        rooms = rooms[np.argsort(-structure.degree[rooms], kind="stable")[:max_nodes]]
    keep = np.zeros(graph.n, bool)
    keep[rooms] = True
    e = structure.edges
    inside = keep[e[:, 0]] & keep[e[:, 1]]
    g = nx.Graph()
    g.add_nodes_from(rooms.tolist())
    g.add_edges_from(e[inside].tolist())
    pos = nx.spring_layout(g, seed=seed)
    fig = Figure(figsize=(8, 7))
    ax = fig.add_subplot()
    plain = e[inside & ~structure.bridging]
    bridge = e[inside & structure.bridging]
    for pairs, colour, width in ((plain, "#bbbbbb", 0.5), (bridge, "#d62728", 1.4)):
        if len(pairs):
            segs = [(pos[u], pos[v]) for u, v in pairs.tolist()]
            ax.add_collection(LineCollection(segs, colors=colour, linewidths=width, zorder=1))
    palette = matplotlib.colormaps["tab20"]
    for i, code in enumerate(graph.districts):
        members = [v for v in rooms.tolist() if graph.district[v] == i]
        if members:
            xy = np.array([pos[v] for v in members])
            ax.scatter(xy[:, 0], xy[:, 1], s=18, color=palette(i % 20), zorder=2,
                       label=(names or {}).get(code, code))
    unknown = [v for v in rooms.tolist() if graph.district[v] < 0]
    if unknown:
        xy = np.array([pos[v] for v in unknown])
        ax.scatter(xy[:, 0], xy[:, 1], s=18, color="#444444", zorder=2, label="no district")
    ax.set_axis_off()
    ax.set_title("Groups by district; bridging ties in red")
    if graph.districts:
        ax.legend(loc="lower left", fontsize="small", markerscale=1.5)
    fig.tight_layout()
    return _png(fig)


ATTRIBUTION = ("Contains OS data © Crown copyright and database right 2019-2024; ONS and "
               "IoD2019 (MHCLG) data, Open Government Licence v3.0")


def locality_map(rows: Sequence[LocalityOverlay], title: str = "Predicted reach and past funding"
                 ) -> bytes:
    """The shipped localities at their ONS points: colour = expected share of their rooms
    reached with a trace (grey rings: no room on chat), size = past grants in pounds.

    Longitude is scaled by cos(latitude) so the county keeps its shape. Funding sizes
    are areas proportional to the amount (the largest 400 pt^2), with a three-step key.
    """
    placed = [r for r in rows if r.place.lat is not None and r.place.lon is not None]
    fig = Figure(figsize=(8, 8))
    ax = fig.add_subplot()
    if placed:
        lat = np.array([r.place.lat for r in placed], float)
        lon = np.array([r.place.lon for r in placed], float)
        ax.set_aspect(1.0 / np.cos(np.radians(float(lat.mean()))))
        money = np.array([r.funding.amount for r in placed])
        top = float(money.max()) or 1.0
        size = 12.0 + 400.0 * money / top
        on = np.array([r.rooms > 0 for r in placed])
        share = np.array([r.reach_share for r in placed])
        ax.scatter(lon[~on], lat[~on], s=size[~on], facecolors="none", edgecolors="#999999",
                   linewidths=0.8, label="no room on chat")
        dots = ax.scatter(lon[on], lat[on], s=size[on], c=share[on], cmap="viridis", vmin=0,
                          vmax=1, edgecolors="#333333", linewidths=0.4)
        fig.colorbar(dots, ax=ax, shrink=0.6, label="share of rooms reached with a trace")
        for amount in (top / 4, top / 2, top):
            if money.max() > 0:
                ax.scatter([], [], s=12.0 + 400.0 * amount / top, color="#cccccc",
                           edgecolors="#333333", label=f"£{amount:,.0f} past grants")
        ax.legend(loc="lower left", fontsize="small", labelspacing=1.3, borderpad=1.0)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(title)
    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=6, color="#555555")
    return _png(fig)


def monthly_counts(months: list[str], series: Mapping[str, list[int]],
                   title: str = "Month by month") -> bytes:
    """One small bar chart per measure, months along the bottom.

    A month under 5 is drawn as a hatched bar in the grey "<5" band (at 2.5), never at
    its value. Cost: O(measures x months).
    """
    names = list(series)
    cols = 2
    rows = max(1, (len(names) + cols - 1) // cols)
    fig = Figure(figsize=(9, 1.9 * rows + 0.8))
    x = np.arange(len(months))
    ticks = [m if len(months) <= 12 or i % 3 == 0 else "" for i, m in enumerate(months)]
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        raw = np.asarray(series[name], dtype=float)
        small = np.round(raw) < SMALL
        ax.axhspan(0, SMALL, color="#eeeeee", zorder=0)
        ax.bar(x[~small], raw[~small], color="#3182bd", zorder=2)
        ax.bar(x[small], _masked(raw[small]), color="none", edgecolor="#999999", hatch="///",
               zorder=2)
        ax.set_title(name, fontsize="small")
        ax.set_xticks(x, ticks, rotation=90, fontsize="x-small")
        ax.set_ylim(bottom=0, top=max(SMALL * 1.5, float(raw.max(initial=0)) * 1.1))
        ax.tick_params(axis="y", labelsize="x-small")
    fig.suptitle(f"{title} (hatched: under 5, not shown exactly)", fontsize="medium")
    fig.tight_layout()
    return _png(fig)
