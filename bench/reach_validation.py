"""Does the reach model tell the truth? A validation on a synthetic Cambridgeshire network
where the truth is known (issue 17).

The network is the room tree the bot builds (``bot.features.tree_plan``) over the shipped
areas, with groups in it:
- the 279 shipped localities (``config/data/areas``), each with its locality room, and a
  theme room per district and shipped theme (``config/data/themes.toml``: 15 themes, so
  90 theme rooms), as ``tree_plan.full_plan`` makes them;
- groups per locality in proportion to its LSOA count (a population proxy: the seed
  report's directory counts are not in the repository, the shared data or the stored
  sources, see bench/README.md), each with one shipped theme and a network (Matrix,
  WhatsApp or IRC bridge);
- ties by place (groups in one locality), by theme (groups of a theme across one
  district's localities; fewer from deprived localities, which is the gap the model is
  meant to find) and hubs (a locality room tied to its groups, a district theme room tied
  to that theme's groups). Activity (members) leans to less deprived places.

A notice goes where the bot would post it: ``bot.features.funding_targeting.plan``, the
rule delivery uses, on the groups' profiles and the tree's rooms. A notice for a district
and a theme goes to every locality room of the district, the district's room for the
theme and every group of the district doing that theme (contact is on, the default of
``storage.groups.Group.contact``): 24-151 rooms, 71 on average, not a handful.
Posting in far fewer rooms than the bot does (one theme room and 2-6 groups, as this
did before) judged the intervals on mostly-zero locality counts that real notices do not
make: a locality posted in gets the notice in its locality room for certain.

The truth: notices spread by independent cascade with a known probability per tie kind,
and a room that got one leaves a trace with a known probability per network.

Measured:
1. calibration: ``fit_ic`` on 200 notices' cascades recovers each tie kind's probability
   (target: within 0.02);
2. intervals: fresh notices predicted with the fitted probabilities and trace rates
   (``predict_traces``), observed from the truth; share of (notice, area) pairs inside
   the 90% and 50% intervals as shown (``simulate.interval``, the one rule the commands
   use; targets 85-95% and 40-60%) per locality (those whose outcome was uncertain, those
   posted in, and all), district, IMD band and all rooms, beside
   the mean chance those intervals claim, plus the randomised PIT coverage (right for
   counts, Czado et al. 2009);
3. equity: rooms reached with a trace in IMD 1-3 localities when the k seeds are chosen
   with equity=1 against the k most active rooms (target: at least +30%).

    .venv/bin/python -m bench reach_validation [--notices 200] [--test 100] [--k 10]
        [--world-seed 7] [--draw-seed 11]
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench.reach_common import cpu_timed
from bot.features.funding_targeting import GroupFacts, NoticeFacts, TreeRoom, plan
from config.areas import AreaIndex
from config.themes import load_themes
from reach.calibrate import fit_ic, kind_probabilities
from reach.graph import ARC_KINDS, NodeKind, ReachGraph, from_arcs
from reach.seeding import choose_seeds, equity_weights
from reach.simulate import cascade_times, interval
from reach.traces import BANDS, band_codes, fit_rates, predict_traces

ROOT = Path(__file__).resolve().parent.parent
LSOAS = Path(os.environ.get(
    "GRAPEVINE_LSOA_FILE", ROOT.parent / "shared/data/cambridgeshire_localities_imd_detail.csv"))
GROUPS_PER_LSOA = 3.0
THEMES = tuple(t.key for t in load_themes())  # the shipped ones: a room each per district
# Ground truth. Tie kinds are stored under the graph's arc kinds.
TRUE_P = {"member": 0.10, "reply": 0.06, "offline": 0.08}  # place, theme, hub ties
KIND_NAMES = {"member": "place", "reply": "theme", "offline": "hub"}
NETWORKS = {"matrix": (0.55, 0.45), "whatsapp": (0.30, 0.20), "irc": (0.15, 0.10)}  # share, trace


@dataclass(frozen=True)
class World:
    graph: ReachGraph
    networks: list[str]
    hubs: np.ndarray  # node ids of hub rooms
    groups: np.ndarray  # node ids of groups
    theme_rooms: dict[tuple[str, int], int]  # (district code, theme) -> room node
    areas: AreaIndex
    profiles: tuple[GroupFacts, ...]  # what targeting reads of each group
    tree: tuple[TreeRoom, ...]  # the locality and theme rooms, as targeting reads them


def lsoa_counts() -> dict[str, int]:
    """LSOAs per locality from the shipped data's audit file; 1 each if it is missing."""
    if not LSOAS.exists():
        return {}
    with LSOAS.open(newline="") as f:
        return {r["code"]: int(r["n_lsoas"] or 1) for r in csv.DictReader(f)}


def build_world(seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    areas = AreaIndex.load()
    lsoas = lsoa_counts()
    keys: list[str] = []
    kind: list[NodeKind] = []
    locality: list[str | None] = []
    district: list[str | None] = []
    decile: list[int | None] = []
    members: list[int] = []
    networks: list[str] = []
    theme: list[int] = []
    src: list[int] = []
    dst: list[int] = []
    arc_kind: list[int] = []

    def node(key: str, k: NodeKind, loc: str | None, dis: str, dec: int | None, mem: int,
             net: str, th: int) -> int:
        keys.append(key)
        kind.append(k)
        locality.append(loc)
        district.append(dis)
        decile.append(dec)
        members.append(mem)
        networks.append(net)
        theme.append(th)
        return len(keys) - 1

    def tie(a: int, b: int, k: str) -> None:
        src.extend((a, b))
        dst.extend((b, a))
        arc_kind.extend((ARC_KINDS.index(k),) * 2)

    net_names = list(NETWORKS)
    net_share = np.array([s for s, _ in NETWORKS.values()])
    by_district: dict[str, list[int]] = {}
    profiles: list[GroupFacts] = []
    tree: list[TreeRoom] = []
    theme_rooms: dict[tuple[str, int], int] = {}
    hubs: list[int] = []
    for d in areas.districts():
        for t in range(len(THEMES)):
            busy = int(rng.lognormal(4.3, 0.3))  # the district's theme rooms are the busiest
            theme_rooms[(d.code, t)] = node(f"#{d.slug}-{THEMES[t]}", "room", None, d.code, None,
                                            busy, "matrix", t)
            tree.append(TreeRoom(keys[-1], area=d.code, theme=THEMES[t]))
    hubs += list(theme_rooms.values())
    for loc in areas.localities():
        dis = areas.district_of(loc.code)
        assert dis is not None
        dec = loc.imd_decile
        n_groups = max(1, round(GROUPS_PER_LSOA * lsoas.get(loc.code, 1)))
        hub = node(f"#{loc.slug}", "room", loc.code, dis.code, dec, 15, "matrix", -1)
        hubs.append(hub)
        tree.append(TreeRoom(keys[hub], area=loc.code))
        mine = []
        for i in range(n_groups):
            active = rng.lognormal(3.0, 0.6) * (0.4 + 0.12 * (dec or 5))
            th = int(rng.integers(len(THEMES)))
            g = node(f"!{loc.slug}-{i}", "group", loc.code, dis.code, dec, int(active) + 1,
                     net_names[int(rng.choice(len(net_names), p=net_share))], th)
            mine.append(g)
            profiles.append(GroupFacts(id=g, room_id=keys[g], area_code=loc.code,
                                       themes=(THEMES[th],), type="unregistered-group",
                                       size="micro"))
            tie(hub, g, "offline")
            tie(theme_rooms[(dis.code, th)], g, "offline")
        for a in range(len(mine)):  # place: about three neighbours each
            for b in range(a + 1, len(mine)):
                if rng.random() < min(1.0, 3.0 / max(len(mine) - 1, 1)):
                    tie(mine[a], mine[b], "member")
        by_district.setdefault(dis.code, []).extend(mine)
    for members_of in by_district.values():
        arr = np.array(members_of)
        for g in members_of:  # theme: ties to same-theme groups elsewhere in the district
            same = arr[(np.array(theme)[arr] == theme[g]) & (np.array(locality)[arr]
                                                             != locality[g])]
            ties = 1 if (decile[g] or 5) <= 3 else 3
            for other in rng.choice(same, size=min(ties, same.size), replace=False):
                tie(g, int(other), "reply")
    n = len(keys)
    graph = from_arcs(n, np.array(src), np.array(dst), arc_kind=np.array(arc_kind), keys=keys,
                      kind=kind, locality=locality, district=district, decile=decile,
                      members=members)
    groups = np.flatnonzero(graph.kind == 1)
    return World(graph, networks, np.array(hubs), groups, theme_rooms, areas, tuple(profiles),
                 tuple(tree))


def notice_seeds(world: World, rng: np.random.Generator) -> list[int]:
    """Where a notice for a district and a theme (both at random) is posted: the rooms the
    bot's own targeting rule picks (``funding_targeting.plan``), that is every locality room
    of the district, the district's room for the theme and every group there doing it."""
    g = world.graph
    t = int(rng.integers(len(THEMES)))
    d = int(rng.integers(len(g.districts)))
    facts = NoticeFacts(areas=(g.districts[d],), themes=(THEMES[t],))
    chosen = plan(facts, (), world.profiles, world.tree, world.areas.contains)
    return [int(v) for v in g.nodes_of(target.room_id for target in chosen.rooms)]


def traced(world: World, reached: Sequence[int], rng: np.random.Generator) -> list[int]:
    rate = {n: r for n, (_, r) in NETWORKS.items()}
    return [v for v in reached if rng.random() < rate[world.networks[v]]]


def randomised_pit(samples: np.ndarray, obs: float, rng: np.random.Generator) -> float:
    below = float(np.mean(samples < obs))
    at = float(np.mean(samples == obs))
    return below + rng.random() * at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notices", type=int, default=200)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--world-seed", type=int, default=7, help="draws the network")
    parser.add_argument("--draw-seed", type=int, default=11,
                        help="draws the notices, their spread and traces")
    args = parser.parse_args()
    rng = np.random.default_rng(args.draw_seed)
    world = build_world(args.world_seed)
    g = world.graph
    true_p = kind_probabilities(g, TRUE_P)
    print(f"Synthetic network: {len(world.groups):,} groups and {world.hubs.size} hub rooms in "
          f"{len(g.localities)} localities, {g.m // 2:,} ties"
          + ("" if LSOAS.exists() else " (no LSOA file: one LSOA per locality)"))
    # 1. Calibration from the training notices' cascades (passing on is itself a trace).
    train = [notice_seeds(world, rng) for _ in range(args.notices)]
    cascades = cascade_times(g, true_p, train, seed=rng)
    t_fit, c_fit, cal = cpu_timed(lambda: fit_ic(g, cascades))
    sizes = [len(c) for c in cascades]
    history = []
    for c in cascades:
        hit = set(traced(world, list(c), rng))
        history += [(world.networks[v], v in hit) for v in c]
    rates = fit_rates(history, NETWORKS)
    posted = [len(s) for s in train]
    print(f"\n1. Calibration from {args.notices} notices, posted in {np.mean(posted):.1f} rooms "
          f"each ({min(posted)}-{max(posted)}) and reaching {np.mean(sizes):.1f} (posted or "
          f"passed on), fit {t_fit:.2f} s wall ({c_fit:.2f} CPU):")
    print("| tie kind | true p | fitted p | error | attempts |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for k, p in TRUE_P.items():
        err = cal.kind_prob[k] - p
        worst = max(worst, abs(err))
        print(f"| {KIND_NAMES[k]} | {p:.3f} | {cal.kind_prob[k]:.3f} | {err:+.3f} | "
              f"{cal.kind_trials[k]:,} |")
    print(f"worst error {worst:.3f} (target <= 0.02): {'met' if worst <= 0.02 else 'MISSED'}")
    print("| network | true trace rate | fitted (Beta mean) |")
    print("|---|---|---|")
    for n, (_, r) in NETWORKS.items():
        print(f"| {n} | {r:.2f} | {rates[n].mean:.3f} |")
    # 2. Interval coverage on fresh notices: per locality, and per district, IMD band and
    # all rooms (what the report shows). Every interval is simulate.interval's, as shown.
    levels = (0.9, 0.5)
    scales = ("localities", "posted in", "expected >= 1 room", "all localities", "districts",
              "IMD bands", "all rooms")
    inside = {(sc, lv): [0, 0, 0.0] for sc in scales for lv in levels}  # in, of, chance
    pit = []
    modal = []  # chance of the most likely value, per uncertain locality
    means = []  # their predicted mean counts
    t_pred = 0.0

    def score(scale: str, x: np.ndarray, seen: int) -> None:
        for lv in levels:
            iv = interval(x, lv)
            row = inside[(scale, lv)]
            row[0] += int(iv.lo <= seen <= iv.hi)
            row[1] += 1
            row[2] += 1.0 if iv.chance is None else iv.chance

    for i in range(args.test):
        seeds = notice_seeds(world, rng)
        [truth] = cascade_times(g, true_p, [seeds], seed=rng)
        seen = traced(world, list(truth), rng)
        posted_in = set(g.locality[seeds].tolist())  # known before the outcome, like the plan
        obs = np.bincount(g.locality[seen][g.locality[seen] >= 0], minlength=len(g.localities))
        obs_d = np.bincount(g.district[seen][g.district[seen] >= 0], minlength=len(g.districts))
        bands = band_codes(g)[seen]
        obs_b = np.bincount(bands[bands >= 0], minlength=len(BANDS))
        dt, _, pred = cpu_timed(partial(
            predict_traces, g, cal.arc_prob, [g.keys[s] for s in seeds], world.networks, rates,
            runs=args.runs, seed=1000 + i))
        t_pred += dt
        score("all rooms", pred.total.group_samples, len(seen))
        for scale, rows, observed in (("districts", pred.districts, obs_d),
                                      ("IMD bands", pred.bands, obs_b)):
            for j, area in enumerate(rows):
                if float(np.ptp(area.group_samples)) > 0:
                    score(scale, area.group_samples, int(observed[j]))
        for j, area in enumerate(pred.localities):
            x = area.group_samples
            score("all localities", x, int(obs[j]))
            if j in posted_in:
                score("posted in", x, int(obs[j]))
            if float(np.ptp(x)) > 0:
                score("localities", x, int(obs[j]))
                if x.mean() >= 1.0:  # chosen on the prediction, never on the outcome
                    score("expected >= 1 room", x, int(obs[j]))
                pit.append(randomised_pit(x, float(obs[j]), rng))
                modal.append(float(np.max(np.unique(x, return_counts=True)[1])) / x.size)
                means.append(float(x.mean()))
    u = np.array(pit)
    print(f"\n2. Coverage on {args.test} fresh notices, {args.runs} runs each "
          f"({t_pred / args.test:.2f} s per prediction). Each cell: share inside the interval "
          "as shown / the mean chance those intervals claim (what a right model gives); "
          "'posted in' counts the localities with a room the notice was posted in, 'all "
          "localities' and 'all rooms' count every one, the rest only areas whose outcome was "
          "uncertain:")
    print("| interval | target | " + " | ".join(scales) + " | randomised PIT |")
    print("|---|---|" + "---|" * (len(scales) + 1))
    for lv, target in zip(levels, ("85-95%", "40-60%"), strict=True):
        cells = []
        for sc in scales:
            n_in, of, claimed = inside[(sc, lv)]
            cells.append(f"{n_in / max(of, 1):.1%} / {claimed / max(of, 1):.1%} of {of:,}")
        pit_cover = float(np.mean((u >= (1 - lv) / 2) & (u <= 1 - (1 - lv) / 2)))
        print(f"| {lv:.0%} | {target} | " + " | ".join(cells) + f" | {pit_cover:.1%} |")
    m = np.array(modal)
    print(f"Uncertain localities: mean predicted count {np.mean(means):.2f} rooms; the most "
          f"likely value holds {m.mean():.1%} of the chance on average (median "
          f"{np.median(m):.1%}), so any interval that holds it covers at least that.")
    # 3. Equity seeding against the most active rooms, at equal k.
    weights = equity_weights(g, 1.0, np.ones(g.n))
    t_seed, _, choice = cpu_timed(lambda: choose_seeds(g, cal.arc_prob, args.k, weights=weights,
                                                      eps=0.2, seed=3))
    active = np.argsort(-g.members, kind="stable")[: args.k]

    def deprived_reach(seeds: Sequence[int]) -> tuple[float, float]:
        pred = predict_traces(g, cal.arc_prob, [g.keys[s] for s in seeds], world.networks,
                              rates, runs=2000, seed=5)
        band = pred.bands[BANDS.index("IMD 1-3")].groups_reached
        return band.mean, pred.total.groups_reached.mean

    plain = choose_seeds(g, cal.arc_prob, args.k, eps=0.2, seed=3)
    eq, eq_all = deprived_reach(choice.seeds)
    top, top_all = deprived_reach(active.tolist())
    pl, pl_all = deprived_reach(plain.seeds)
    lift = eq / top - 1 if top else float("inf")
    print(f"\n3. Equity, k={args.k} (IMM eps=0.2, {t_seed:.1f} s CPU): rooms reached with a trace")
    print("| seeds | in IMD 1-3 localities | everywhere |")
    print("|---|---|---|")
    print(f"| equity=1 | {eq:.1f} | {eq_all:.1f} |")
    print(f"| equity=0 (plain reach) | {pl:.1f} | {pl_all:.1f} |")
    print(f"| {args.k} most active rooms | {top:.1f} | {top_all:.1f} |")
    kinds = np.bincount(g.kind[active], minlength=2)
    names = sorted({world.areas.get(g.districts[d]).name for d in g.district[active] if d >= 0})
    print(f"The {args.k} most active rooms: hub rooms {kinds[0]}, groups {kinds[1]}, in "
          f"{', '.join(names)}; the lift over plain reach is {eq / pl - 1 if pl else 0:+.0%}")
    print(f"lift in IMD 1-3: {lift:+.0%} (target >= +30%): "
          f"{'met' if lift >= 0.3 else 'MISSED'}")


if __name__ == "__main__":
    main()
