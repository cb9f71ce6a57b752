"""The pool's storage on SQLite and PostgreSQL: the indexed match agrees with the rules,
places are never oversold under concurrent accepts, and a person can be exported and forgotten."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.features.availability import ALL, parse_slots, window_slots
from bot.features.matching import Need, candidates, rank, skill_bits
from storage import volunteers as store
from storage.engine import Database
from storage.groups import Group
from storage.volunteers import Volunteer, VolunteerOffer, VolunteerRequest

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
START = datetime(2026, 12, 5, 10, tzinfo=LONDON)
END = datetime(2026, 12, 5, 13, tzinfo=LONDON)
TOWNS = [(52.655, 0.161), (52.551, 0.088), (52.331, -0.077), (52.205, 0.119), (52.573, -0.24)]


async def add_group(session: object, name: str, *, verified: bool, share: bool) -> Group:
    group = Group(name=name, type="charity", area_code="E04001668", themes=[], size="small",
                  registered_by="@admin:x", registered_at=NOW, share_volunteers=share,
                  verified_at=NOW if verified else None)
    session.add(group)  # type: ignore[attr-defined]
    await session.flush()  # type: ignore[attr-defined]
    return group


def volunteer(user: str, lat: float, lon: float, **fields: object) -> Volunteer:
    values: dict[str, object] = dict(
        user_id=user, skills=["driving"], area_code="E04001668", lat=lat, lon=lon,
        radius_km=10.0, slots=ALL, dbs_level=0, update_service=False, share=True,
        paused=False, adult_confirmed_at=NOW, availability_confirmed_at=NOW,
        registered_at=NOW, updated_at=NOW,
    )
    values.update(fields)
    values["skill_mask"] = skill_bits(values["skills"])  # type: ignore[arg-type]
    return Volunteer(**values)


async def test_the_indexed_match_finds_exactly_whom_the_rules_allow(database: Database) -> None:
    rng = random.Random(5)
    async with database.transaction() as session:
        verified_sharing = await add_group(session, "Food bank", verified=True, share=True)
        closed = await add_group(session, "Lunch club", verified=True, share=False)
        unverified = await add_group(session, "New choir", verified=False, share=True)
        slot_words = ["weekends", "anytime", "weekday-evenings", "sat-morning", "sat"]
        for i in range(300):
            lat, lon = rng.choice(TOWNS)
            level = rng.choice([0, 1, 2, 3])
            v = volunteer(
                f"@v{i}:x", lat + rng.uniform(-0.1, 0.1), lon + rng.uniform(-0.15, 0.15),
                radius_km=rng.choice([3.0, 10.0, 25.0]), slots=parse_slots(rng.choice(slot_words)),
                dbs_level=level, dbs_checked=date(2025, 1, 1) if level else None,
                dbs_recheck=rng.choice([date(2026, 12, 1), date(2028, 1, 1)]) if level else None,
                share=rng.random() < 0.7, paused=rng.random() < 0.1,
                last_offered_at=rng.choice([None, NOW - timedelta(days=3),
                                            NOW - timedelta(days=10)]),
                skills=rng.choice([["driving"], ["communication"], []]),
            )
            await store.save_profile(session, v)
            for group in rng.sample([verified_sharing, closed, unverified], rng.randint(0, 2)):
                await store.add_group(session, v, group.id)
    async with database.transaction() as session:
        everyone = await store.all_candidates(session)
        for group in (verified_sharing, closed, unverified):
            for (lat, lon), level in zip(TOWNS, [0, 1, 2, 3, 2], strict=True):
                need = Need(group_id=group.id, group_verified=group.verified, starts_at=START,
                            slots=window_slots(START, END), lat=lat, lon=lon, dbs_level=level,
                            skill_mask=skill_bits(["driving"]))
                fast = rank(await candidates(session, need, NOW), need, NOW)
                slow = rank(everyone, need, NOW)
                assert [c.user_id for c in fast] == [c.user_id for c in slow]
                assert fast, "every case should match someone, or the check proves little"
                best = await candidates(session, need, NOW, limit=3)
                assert [c.user_id for c in best] == [c.user_id for c in slow[:3]]


async def make_request(session: object, group: Group, count: int) -> VolunteerRequest:
    req = VolunteerRequest(
        group_id=group.id, room_id="!r:x", created_by="@admin:x", count=count, role="Driver",
        starts_at=START, ends_at=END, slots=window_slots(START, END), area_code="E04001668",
        lat=52.655, lon=0.161, skills=[], dbs_level=0, accepted=0, status="open", created_at=NOW,
    )
    session.add(req)  # type: ignore[attr-defined]
    await session.flush()  # type: ignore[attr-defined]
    return req


async def offers(session: object, req: VolunteerRequest, n: int) -> list[int]:
    rows = [VolunteerOffer(request_id=req.id, user_id=f"@p{i}:x", status="offered",
                           via="offer", offered_at=NOW, expires_at=NOW + timedelta(days=1))
            for i in range(n)]
    session.add_all(rows)  # type: ignore[attr-defined]
    await session.flush()  # type: ignore[attr-defined]
    return [o.id for o in rows]


async def test_more_accepts_than_places_at_once_fill_exactly_the_places(
    database: Database,
) -> None:
    async with database.transaction() as session:
        group = await add_group(session, "Food bank", verified=True, share=False)
        req = await make_request(session, group, count=3)
        ids = await offers(session, req, 8)

    async def accept(offer_id: int) -> str:
        async with database.transaction() as session:
            offer = await store.offer(session, offer_id)
            assert offer is not None
            return await store.take_place(session, offer, NOW)

    results = await asyncio.gather(*(accept(i) for i in ids))
    assert sorted(results) == ["accepted"] * 3 + ["waitlisted"] * 5
    async with database.transaction() as session:
        fill = await store.fill(session, req.id)
        stored = await store.request(session, req.id)
        assert (fill.accepted, fill.waitlisted) == (3, 5)
        assert stored is not None and stored.accepted == 3


async def test_giving_up_a_place_promotes_the_first_on_the_waitlist(database: Database) -> None:
    async with database.transaction() as session:
        group = await add_group(session, "Food bank", verified=True, share=False)
        req = await make_request(session, group, count=1)
        first, second, third = await offers(session, req, 3)
        for i, offer_id in enumerate((first, second, third)):
            offer = await store.offer(session, offer_id)
            assert offer is not None
            await store.take_place(session, offer, NOW + timedelta(minutes=i))
    async with database.transaction() as session:
        leaving = await store.offer(session, first)
        assert leaving is not None
        promoted = await store.give_up_place(session, leaving, store.DECLINED, NOW)
        assert promoted is not None and promoted.id == second
    async with database.transaction() as session:
        fill = await store.fill(session, req.id)
        assert (fill.accepted, fill.waitlisted) == (1, 1)


async def test_export_then_forget_covers_profile_offers_and_hours(database: Database) -> None:
    async with database.transaction() as session:
        group = await add_group(session, "Food bank", verified=True, share=False)
        v = volunteer("@p0:x", 52.655, 0.161, dbs_level=2, dbs_checked=date(2025, 3, 1),
                      dbs_recheck=date(2028, 3, 1))
        await store.save_profile(session, v)
        await store.add_group(session, v, group.id)
        req = await make_request(session, group, count=1)
        [mine, waiting] = await offers(session, req, 2)
        for offer_id in (mine, waiting):
            offer = await store.offer(session, offer_id)
            assert offer is not None
            await store.take_place(session, offer, NOW)
        await store.record_hours(session, req, "@p0:x", 3, "@admin:x", NOW, START.date())
    async with database.transaction() as session:
        exported = await store.export_person(session, "@p0:x")
    assert exported["volunteer_profile"]["dbs_recheck"] == "2028-03-01"
    assert exported["volunteer_profile"]["groups"] == [f"G{group.id}"]
    assert [o["status"] for o in exported["volunteer_offers"]] == ["accepted"]
    assert exported["volunteer_hours"][0]["hours"] == 3
    async with database.transaction() as session:
        assert await store.forget_person(session, "@p0:x", now=NOW) == 3
        assert await store.forget_person(session, "@admin:x", now=NOW) == 1  # as a host
        assert (await store.export_person(session, "@admin:x"))["volunteer_requests_made"] == []
    async with database.transaction() as session:
        assert await store.profile(session, "@p0:x") is None
        assert await session.scalar(select(func.count()).select_from(store.VolunteerReach)) == 0
        assert (await store.export_person(session, "@p0:x"))["volunteer_hours"] == []
        promoted = await store.offer(session, waiting)
        assert promoted is not None and promoted.status == "accepted"
        assert promoted.promoted_at == NOW
