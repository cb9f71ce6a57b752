"""The reach model's inputs, read from the database: rooms and groups with their areas, who is
active where (pseudonymously), notices' deliveries and forwards, and what each room did
with a notice. ``build`` is pure: plain records in, graph and calibrated probabilities out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.areas import AreaIndex
from storage import collab, flow, funding, groups, introductions, rooms, tree, venues
from storage.flow import FlowEvent, FlowReceipts
from storage.funding import FundingDelivery
from storage.mediation import Case

if TYPE_CHECKING:
    import numpy as np

    from reach.calibrate import Calibration
    from reach.evaluate import RoomSignal
    from reach.graph import FlowTie, OfflineTie, ReachGraph, RoomNode

# The model's libraries (numpy, scipy) are imported where the model is built, not at start-up.

HUB_TYPES = {"parish-council"}
OFFLINE = "offline"  # the "network" of a community hub: it leaves no trace on chat
CASCADE_BIN_HOURS = 12.0


@dataclass(frozen=True)
class RoomFacts:
    room_id: str
    label: str
    is_group: bool
    area_code: str | None
    hub: bool  # a parish council, locality room or community hub: ties to its locality's groups


@dataclass(frozen=True)
class Forward:
    notice_id: int
    room_id: str
    sender_key: str
    at: datetime


@dataclass(frozen=True)
class Records:
    rooms: list[RoomFacts]
    memberships: list[tuple[str, str]]  # (room, pseudonymous sender key)
    activity: dict[str, tuple[int, int]]  # room -> (messages, active senders)
    deliveries: dict[int, dict[str, datetime]]  # notice -> room -> sent at
    forwards: list[Forward] = field(default_factory=list)
    networks: dict[str, str] = field(default_factory=dict)  # room -> bridged network, if any
    # Groups put in touch through the directory (accepted introductions): (room, room).
    introductions: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Network:
    graph: ReachGraph
    p: np.ndarray  # per-arc transmission probability, calibrated
    calibration: Calibration
    labels: dict[str, str]  # area codes and room ids -> what people call them
    activity: dict[str, tuple[int, int]]
    group_rooms: dict[str, str]  # "G5" -> room id, "P3" -> hub key
    records: Records


def hub_key(venue_id: int) -> str:
    """The reach graph's key for a community hub (venue ``P<id>``): not a room id."""
    return f"hub:P{venue_id}"


def node_of(facts: RoomFacts, areas: AreaIndex, members: int) -> RoomNode:
    from reach.graph import RoomNode

    code = facts.area_code if facts.area_code in areas else None
    locality = district = None
    decile = None
    if code is not None:
        district_area = areas.district_of(code)
        district = district_area.code if district_area else None
        if not areas.children(code):
            locality = code
        decile = areas.get(code).imd_decile
    return RoomNode(facts.room_id, "group" if facts.is_group else "room", locality, district,
                    decile, members)


def forward_ties(records: Records) -> list[FlowTie]:
    """A notice named in a room it was not sent to came from a room that got it where the
    same (pseudonymous) person is active; each such pair is one tie."""
    from reach.graph import FlowTie

    active: dict[str, set[str]] = defaultdict(set)
    for room, key in records.memberships:
        active[key].add(room)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for f in records.forwards:
        got = records.deliveries.get(f.notice_id, {})
        if f.room_id in got:
            continue
        for src in sorted(active[f.sender_key] & set(got)):
            counts[(src, f.room_id)] += 1
    return [FlowTie(src, dst, "forward", n) for (src, dst), n in sorted(counts.items())]


def introduction_ties(records: Records) -> list[OfflineTie]:
    """An accepted introduction ties the two groups' rooms (both on chat), once per pair."""
    from reach.graph import OfflineTie

    known = {r.room_id for r in records.rooms}
    pairs = {tuple(sorted(pair)) for pair in records.introductions}
    return [OfflineTie(a, b) for a, b in sorted(pairs) if a in known and b in known and a != b]


def cascades(records: Records, graph: ReachGraph) -> list[dict[int, int]]:
    """Each notice as {node: time step}: its rooms at their send time, forwards when first seen."""
    from reach.calibrate import steps_from_times

    out = []
    for notice_id, sent in records.deliveries.items():
        times = dict(sent)
        for f in records.forwards:
            if f.notice_id == notice_id and (f.room_id not in times or f.at < times[f.room_id]):
                times[f.room_id] = f.at
        steps = steps_from_times(graph, times, CASCADE_BIN_HOURS)
        if steps:
            out.append(steps)
    return out


def build(records: Records, areas: AreaIndex) -> Network:
    from reach.calibrate import fit_ic
    from reach.graph import Membership, build_graph, hub_ties

    nodes = [node_of(r, areas, records.activity.get(r.room_id, (0, 0))[1]) for r in records.rooms]
    hubs = [r.room_id for r in records.rooms if r.hub]
    graph = build_graph(
        nodes,
        [Membership(room, key) for room, key in records.memberships],
        forward_ties(records),
        [*hub_ties(nodes, hubs), *introduction_ties(records)],
    )
    calibration = fit_ic(graph, cascades(records, graph))
    labels = {a.code: a.name for a in areas}
    labels.update({r.room_id: r.label for r in records.rooms})
    # Seeds may be named as people know them: a group (G5) or a community hub (P3).
    group_rooms = {r.label.split(" ", 1)[0]: r.room_id for r in records.rooms
                   if r.is_group or r.room_id.startswith("hub:")}
    return Network(graph, calibration.arc_prob, calibration, labels, records.activity, group_rooms,
                   records)


def within(records: Records, keep: Callable[[str], bool]) -> Records:
    """Only the rooms whose area ``keep`` accepts (rooms with no known area are left out)."""
    rooms = [r for r in records.rooms if r.area_code is not None and keep(r.area_code)]
    ids = {r.room_id for r in rooms}
    return replace(records, rooms=rooms,
                   memberships=[(r, k) for r, k in records.memberships if r in ids])


# -- reading the database -------------------------------------------------------------------


async def load_records(session: AsyncSession) -> Records:
    case_rooms = set(await session.scalars(select(Case.room_id).where(Case.room_id.is_not(None))))
    facts: dict[str, RoomFacts] = {}
    networks: dict[str, str] = {}
    for known in await rooms.active(session):
        if known.network:
            networks[known.room_id] = known.network
        if not known.is_direct and known.room_id not in case_rooms:
            facts[known.room_id] = RoomFacts(known.room_id, known.room_id, False, None, False)
    for t in (await tree.all_rooms(session)).values():
        if t.kind != "space":
            facts[t.room_id] = RoomFacts(t.room_id, t.name, False, t.area_code,
                                         t.kind == "locality")
    for g in await groups.active(session):
        if g.room_id is not None and g.room_id not in case_rooms:
            facts[g.room_id] = RoomFacts(g.room_id, f"{g.ref} {g.name}", True, g.area_code,
                                         g.type in HUB_TYPES)
    for v in await venues.hubs(session):
        # A community hub is an offline node: people meet there and read its notice sheet.
        facts[hub_key(v.id)] = RoomFacts(hub_key(v.id), f"{v.ref} {v.name}", False, v.area_code,
                                         True)
        networks[hub_key(v.id)] = OFFLINE
    deliveries: dict[int, dict[str, datetime]] = defaultdict(dict)
    for d in await session.scalars(select(FundingDelivery)):
        deliveries[d.notice_id][d.room_id] = d.sent_at or d.queued_at
    forwards = [
        Forward(e.notice_id, e.room_id, e.sender_key, e.at)
        for e in await session.scalars(select(FlowEvent).where(FlowEvent.kind == "forward",
                                                               FlowEvent.notice_id.is_not(None)))
        if e.notice_id is not None
    ]
    return Records(
        rooms=sorted(facts.values(), key=lambda r: r.room_id),
        memberships=await flow.memberships(session),
        activity=await flow.room_activity(session),
        deliveries=dict(deliveries),
        forwards=forwards,
        networks=networks,
        introductions=await introductions.accepted_rooms(session),
    )


async def signals(session: AsyncSession, notice_id: int) -> list[RoomSignal]:
    """What each room did with a notice: counts only."""
    from reach.evaluate import RoomSignal

    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in await flow.notice_events(session, notice_id):
        tally[e.room_id][e.kind] += 1
    reads = await flow.receipts(session, notice_id)
    opens = {d.room_id: d.opens for d in await funding.deliveries(session, notice_id)}
    return [
        RoomSignal(room, replies=tally[room]["reply"] + tally[room]["message"],
                   reactions=tally[room]["reaction"], receipts=reads.get(room, 0),
                   forwards=tally[room]["forward"], link_opens=opens.get(room, 0))
        for room in sorted(set(tally) | set(reads) | set(opens))
    ]


def network_of(records: Records, room: str) -> str:
    from reach.traces import MATRIX

    return records.networks.get(room, MATRIX)


def node_networks(net: Network) -> list[str]:
    """Each graph node's network, in graph order (plain Matrix unless bridged)."""
    return [network_of(net.records, key) for key in net.graph.keys]


async def trace_histories(session: AsyncSession) -> dict[int, list[tuple[str, bool]]]:
    """Per notice, (room, left a trace?) for each room it was delivered to: the evidence
    for the per-network trace rates. Traces as in ``signals``."""
    traced: set[tuple[int, str]] = set()
    rows = await session.execute(
        select(FlowEvent.notice_id, FlowEvent.room_id).where(FlowEvent.notice_id.is_not(None)))
    traced |= {(int(n), r) for n, r in rows.tuples() if n is not None}
    reads = await session.execute(select(FlowReceipts.notice_id, FlowReceipts.room_id).where(
        FlowReceipts.count > 0))
    traced |= {(int(n), r) for n, r in reads.tuples()}
    out: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for d in await session.scalars(select(FundingDelivery).order_by(FundingDelivery.id)):
        out[d.notice_id].append((d.room_id, d.opens > 0 or (d.notice_id, d.room_id) in traced))
    return dict(out)


def history_without(histories: dict[int, list[tuple[str, bool]]], notice_id: int
                    ) -> list[tuple[str, bool]]:
    """Every other notice's (room, traced?) pairs: the rates a notice is predicted with."""
    return [pair for n, pairs in histories.items() if n != notice_id for pair in pairs]


def history_before(histories: dict[int, list[tuple[str, bool]]], notice_id: int
                   ) -> list[tuple[str, bool]]:
    """Earlier notices' (room, traced?) pairs: what the model knew when ``notice_id`` went out,
    so checking its interval then is a fair test of a forecast."""
    return [pair for n, pairs in histories.items() if n < notice_id for pair in pairs]


async def trace_history(session: AsyncSession, exclude: int) -> list[tuple[str, bool]]:
    """(room, left a trace?) for each room every other notice was delivered to."""
    return history_without(await trace_histories(session), exclude)


async def funding_by_locality(session: AsyncSession, codes: list[str]
                              ) -> dict[str, tuple[int, float]]:
    """Past grants (360Giving imports) per locality code: (grants, pounds). Grants in other
    currencies are counted but not summed; grants placed only to a district are not here."""
    out: dict[str, tuple[int, float]] = {}
    for g in await funding.grants_in(session, codes):
        if g.area_code is None:
            continue
        n, amount = out.get(g.area_code, (0, 0.0))
        out[g.area_code] = (n + 1, amount + (g.amount if g.currency == "GBP" else 0.0))
    return out


async def collaboration_groups(session: AsyncSession) -> tuple[list[list[int]], dict[int, str]]:
    """Each current collaboration record's group ids, and every group's area code."""
    records = [list(r.group_ids) for r in await collab.current(session)]
    areas = {g: code for g, code in (await collab.group_areas(session)).items() if code}
    return records, areas


async def recent_notices(session: AsyncSession, before: int, limit: int) -> list[int]:
    """The ``limit`` latest notices delivered somewhere, with ids below ``before``."""
    rows = await session.scalars(
        select(FundingDelivery.notice_id).where(FundingDelivery.notice_id < before)
        .group_by(FundingDelivery.notice_id).order_by(FundingDelivery.notice_id.desc())
        .limit(limit))
    return list(rows)


async def delivery_rooms(session: AsyncSession, notice_id: int) -> list[str]:
    return sorted(await funding.delivered_rooms(session, notice_id))
