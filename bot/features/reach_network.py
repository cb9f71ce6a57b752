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
from storage import collab, flow, funding, introductions
from storage.flow import FlowEvent, FlowReceipts
from storage.funding import FundingDelivery
from storage.groups import Group
from storage.mediation import Case
from storage.models import KnownRoom
from storage.tree import TreeRoom
from storage.venues import Venue

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
    """What the model is built from. It crosses to the offload's process (pickled), so it
    holds counts where the model needs only counts, and each room id is one string object
    however often it is named (pickle writes a repeated object once)."""

    rooms: list[RoomFacts]
    # (room, other room, pseudonymous senders active in both), once per pair (room < other).
    shared: list[tuple[str, str, int]]
    activity: dict[str, tuple[int, int]]  # room -> (messages, active senders)
    deliveries: dict[int, dict[str, datetime]]  # notice -> room -> sent at
    forwards: list[Forward] = field(default_factory=list)
    # (room, pseudonymous sender key) for each room where someone who forwarded is active.
    forwarders: list[tuple[str, str]] = field(default_factory=list)
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


def district_of(facts: RoomFacts, areas: AreaIndex) -> str | None:
    """The district code a room's node is placed in (None: no known area)."""
    if facts.area_code is None or facts.area_code not in areas:
        return None
    district_area = areas.district_of(facts.area_code)
    return district_area.code if district_area else None


def node_of(facts: RoomFacts, areas: AreaIndex, members: int) -> RoomNode:
    from reach.graph import RoomNode

    code = facts.area_code if facts.area_code in areas else None
    locality = None
    decile = None
    if code is not None:
        if not areas.children(code):
            locality = code
        decile = areas.get(code).imd_decile
    return RoomNode(facts.room_id, "group" if facts.is_group else "room", locality,
                    district_of(facts, areas), decile, members)


def forward_ties(records: Records) -> list[FlowTie]:
    """A notice named in a room it was not sent to came from a room that got it where the
    same (pseudonymous) person is active; each such pair is one tie."""
    from reach.graph import FlowTie

    active: dict[str, set[str]] = defaultdict(set)
    for room, key in records.forwarders:
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
    from reach.graph import build_graph, hub_ties

    nodes = [node_of(r, areas, records.activity.get(r.room_id, (0, 0))[1]) for r in records.rooms]
    hubs = [r.room_id for r in records.rooms if r.hub]
    graph = build_graph(
        nodes,
        (),
        forward_ties(records),
        [*hub_ties(nodes, hubs), *introduction_ties(records)],
        shared=records.shared,
    )
    calibration = fit_ic(graph, cascades(records, graph))
    labels = {a.code: a.name for a in areas}
    labels.update({r.room_id: r.label for r in records.rooms})
    return Network(graph, calibration.arc_prob, calibration, labels, records.activity,
                   group_rooms(records), records)


def group_rooms(records: Records) -> dict[str, str]:
    """Seeds may be named as people know them: a group (G5) or a community hub (P3)."""
    return {r.label.split(" ", 1)[0]: r.room_id for r in records.rooms
            if r.is_group or r.room_id.startswith("hub:")}


def within(records: Records, keep: Callable[[str], bool]) -> Records:
    """Only the rooms whose area ``keep`` accepts (rooms with no known area are left out)."""
    rooms = [r for r in records.rooms if r.area_code is not None and keep(r.area_code)]
    ids = {r.room_id for r in rooms}
    return replace(records, rooms=rooms,
                   shared=[s for s in records.shared if s[0] in ids and s[1] in ids],
                   forwarders=[(r, k) for r, k in records.forwarders if r in ids])


# -- reading the database -------------------------------------------------------------------


async def load_records(session: AsyncSession) -> Records:
    """The model's records, read in the command's transaction (which holds the database's
    write lock, and the event loop while Python handles the rows): so only the columns
    the model uses, as plain rows (no ORM objects), and who is where as the database's
    counts per pair of rooms (``flow.shared_members``), not a row per person and room."""
    canon: dict[str, str] = {}

    def one(room: str) -> str:
        """The one string object for this room id (pickle writes it once)."""
        return canon.setdefault(room, room)

    case_rooms = set(await session.scalars(select(Case.room_id).where(Case.room_id.is_not(None))))
    facts: dict[str, RoomFacts] = {}
    networks: dict[str, str] = {}
    for room_id, network, is_direct in (await session.execute(
            select(KnownRoom.room_id, KnownRoom.network, KnownRoom.is_direct)
            .where(KnownRoom.left_at.is_(None)))).tuples():
        room_id = one(room_id)
        if network:
            networks[room_id] = network
        if not is_direct and room_id not in case_rooms:
            facts[room_id] = RoomFacts(room_id, room_id, False, None, False)
    for room_id, name, area_code, kind in (await session.execute(
            select(TreeRoom.room_id, TreeRoom.name, TreeRoom.area_code, TreeRoom.kind))).tuples():
        if kind != "space":
            room_id = one(room_id)
            facts[room_id] = RoomFacts(room_id, name, False, area_code, kind == "locality")
    for number, group_room, name, area_code, kind in (await session.execute(
            select(Group.id, Group.room_id, Group.name, Group.area_code, Group.type)
            .where(Group.unregistered_at.is_(None)).order_by(Group.id))).tuples():
        if group_room is not None and group_room not in case_rooms:
            room_id = one(group_room)
            facts[room_id] = RoomFacts(room_id, f"{Group.ref_of(number)} {name}", True,
                                       area_code, kind in HUB_TYPES)
    for number, name, area_code in (await session.execute(
            select(Venue.id, Venue.name, Venue.area_code)
            .where(Venue.removed_at.is_(None), Venue.hub.is_(True))
            .order_by(Venue.id))).tuples():
        # A community hub is an offline node: people meet there and read its notice sheet.
        key = one(hub_key(number))
        facts[key] = RoomFacts(key, f"{Venue.ref_of(number)} {name}", False, area_code, True)
        networks[key] = OFFLINE
    deliveries: dict[int, dict[str, datetime]] = defaultdict(dict)
    for notice_id, room_id, sent_at, queued_at in (await session.execute(
            select(FundingDelivery.notice_id, FundingDelivery.room_id, FundingDelivery.sent_at,
                   FundingDelivery.queued_at))).tuples():
        deliveries[notice_id][one(room_id)] = sent_at or queued_at
    forwards = [
        Forward(notice_id, one(room_id), sender_key, at)
        for notice_id, room_id, sender_key, at in (await session.execute(
            select(FlowEvent.notice_id, FlowEvent.room_id, FlowEvent.sender_key, FlowEvent.at)
            .where(FlowEvent.kind == "forward", FlowEvent.notice_id.is_not(None))
            .order_by(FlowEvent.id))).tuples()
        if notice_id is not None
    ]
    return Records(
        rooms=sorted(facts.values(), key=lambda r: r.room_id),
        shared=[(one(a), one(b), n) for a, b, n in await flow.shared_members(session)],
        activity={one(room): counts for room, counts in
                  (await flow.room_activity(session)).items()},
        deliveries=dict(deliveries),
        forwards=forwards,
        forwarders=[(one(room), key) for room, key in await flow.forwarders(session)],
        networks=networks,
        introductions=[(one(a), one(b))
                       for a, b in await introductions.accepted_rooms(session)],
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
