"""The eligibility rules are stated once in Python (matching.refusal, rank_key) and mirrored
in SQL (matching.sql_rules, sql_order): over random profiles and requests, on SQLite and
PostgreSQL, the database admits exactly the people the functions admit, in the same order."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.features.availability import ALL
from bot.features.matching import Need, candidates, eligible, rank, skill_bits
from storage import volunteers as store
from storage.engine import Database
from storage.groups import Group
from storage.volunteers import Volunteer

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
START = datetime(2026, 12, 5, 10, tzinfo=UTC)
HERE = (52.655, 0.161)  # Wisbech
SKILLS = ["driving", "communication", "cooking", "first-aid", "digital"]
# (verified, shares its volunteers) for the groups a profile may come through.
GROUPS = [(True, True), (True, False), (False, True)]


class _Rollback(Exception):
    """Ends an example's transaction without keeping anything."""


@dataclass(frozen=True)
class Profile:
    dlat: float
    dlon: float
    radius_km: float
    slots: int
    dbs_level: int
    recheck_days: int | None
    paused: bool
    paused_hours: int | None
    share: bool
    groups: frozenset[int]
    skills: tuple[str, ...]
    rested_days: int | None


@dataclass(frozen=True)
class Request:
    group: int
    dlat: float
    dlon: float
    slots: int
    dbs_level: int
    skills: tuple[str, ...]


# Small integer offsets land often on the rules' edges (the re-check day, the pause's end).
profiles = st.builds(
    Profile,
    dlat=st.floats(-0.25, 0.25), dlon=st.floats(-0.4, 0.4),
    radius_km=st.one_of(st.sampled_from([1.0, 5.0, 10.0, 25.0, 50.0]), st.floats(0.5, 50.0)),
    slots=st.one_of(st.just(ALL), st.integers(0, ALL)),
    dbs_level=st.integers(0, 3),
    recheck_days=st.one_of(st.none(), st.integers(-3, 3), st.integers(-400, 400)),
    paused=st.booleans(),
    paused_hours=st.one_of(st.none(), st.integers(-2, 2), st.integers(-500, 500)),
    share=st.booleans(),
    groups=st.frozensets(st.integers(0, len(GROUPS) - 1), max_size=2),
    skills=st.lists(st.sampled_from(SKILLS), max_size=3, unique=True).map(tuple),
    rested_days=st.one_of(st.none(), st.sampled_from([0, 6, 7, 8, 29, 30, 31, 90])),
)
requests = st.builds(
    Request,
    group=st.integers(0, len(GROUPS) - 1),
    dlat=st.floats(-0.05, 0.05), dlon=st.floats(-0.07, 0.07),
    slots=st.one_of(st.integers(1, 7).map(lambda n: (1 << n) - 1),
                    st.integers(1, ALL)),
    dbs_level=st.integers(0, 3),
    skills=st.lists(st.sampled_from(SKILLS), max_size=2, unique=True).map(tuple),
)


def volunteer(i: int, p: Profile) -> Volunteer:
    fields: dict[str, Any] = dict(
        user_id=f"@v{i}:x", skills=list(p.skills), skill_mask=skill_bits(p.skills),
        area_code="E04001668", lat=HERE[0] + p.dlat, lon=HERE[1] + p.dlon,
        radius_km=p.radius_km, slots=p.slots, dbs_level=p.dbs_level,
        dbs_checked=date(2025, 1, 1) if p.dbs_level else None,
        dbs_recheck=(START.date() + timedelta(days=p.recheck_days)
                     if p.recheck_days is not None else None),
        update_service=False, share=p.share, paused=p.paused,
        paused_until=(START + timedelta(hours=p.paused_hours)
                      if p.paused_hours is not None else None),
        adult_confirmed_at=NOW, availability_confirmed_at=NOW, registered_at=NOW,
        updated_at=NOW,
        last_offered_at=NOW - timedelta(days=p.rested_days) if p.rested_days is not None else None,
    )
    return Volunteer(**fields)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(people=st.lists(profiles, min_size=1, max_size=12), request=requests)
async def test_the_sql_admits_and_orders_exactly_as_the_rules(
    database: Database, people: list[Profile], request: Request,
) -> None:
    with contextlib.suppress(_Rollback):
        async with database.transaction() as session:
            groups = []
            for n, (verified, share) in enumerate(GROUPS):
                group = Group(name=f"Group {n}", type="charity", area_code="E04001668",
                              themes=[], size="small", registered_by="@admin:x",
                              registered_at=NOW, share_volunteers=share,
                              verified_at=NOW if verified else None)
                session.add(group)
                groups.append(group)
            await session.flush()
            for i, p in enumerate(people):
                v = volunteer(i, p)
                await store.save_profile(session, v)
                for g in sorted(p.groups):
                    await store.add_group(session, v, groups[g].id)
            asking = groups[request.group]
            need = Need(group_id=asking.id, group_verified=asking.verified, starts_at=START,
                        slots=request.slots, lat=HERE[0] + request.dlat,
                        lon=HERE[1] + request.dlon, dbs_level=request.dbs_level,
                        skill_mask=skill_bits(request.skills))
            everyone = await store.all_candidates(session)
            by_rules = rank(everyone, need, NOW)
            by_sql = await candidates(session, need, NOW)
            assert [c.user_id for c in by_sql] == [c.user_id for c in by_rules]
            assert {c.user_id for c in by_sql} == {
                c.user_id for c in everyone if eligible(c, need)
            }
            best = await candidates(session, need, NOW, limit=2)
            assert [c.user_id for c in best] == [c.user_id for c in by_rules[:2]]
            raise _Rollback
