"""Introductions through the directory: asked, delivered, answered, routes exchanged."""

from __future__ import annotations

from sqlalchemy import select

from bot.features import reach_network
from storage import introductions as intros
from storage.introductions import Introduction
from tests.botworld import BotWorld
from tests.unit.test_groups import (
    ALIAS,
    REGISTER,
    _set_state,
    county,  # noqa: F401  (the fixture)
    group_room,
    registered_room,
)

YOUTH = 'name="Wisby Youth Club" type=club area=Wisby themes=youth size=micro'


async def two_groups(bw: BotWorld, youth_profile: str = YOUTH) -> tuple[str, str, str]:
    food, gail, _ = await group_room(bw, "food")
    await bw.say(gail, food, REGISTER)
    youth = await registered_room(bw, gail, "youth", youth_profile)
    await bw.deliver()
    return food, youth, gail


async def test_an_introduction_is_delivered_accepted_and_both_get_a_route(
    county: BotWorld,  # noqa: F811
) -> None:
    food, youth, gail = await two_groups(county)
    _set_state(county, food, gail, "m.room.canonical_alias", {"alias": ALIAS})
    _set_state(county, youth, gail, "m.room.join_rules", {"join_rule": "public"})
    [asked] = await county.say(gail, food, '!directory contact G2 message="Shall we share a van?"')
    assert asked == "Asked G2 Wisby Youth Club (I1); you hear here when it answers."
    await county.deliver()
    [intro] = county.world.messages(youth, sender=county.bot)[-1:]
    assert intro.startswith('Introduction I1: G1 Wisby Food Bank would like to be in touch: '
                            '"Shall we share a van?"')
    assert "!directory accept I1" in intro
    [accepted] = await county.say(gail, youth, "!directory accept")
    assert accepted == f"Accepted I1: reach G1 Wisby Food Bank at {ALIAS}"
    await county.deliver()
    told = county.world.messages(food, sender=county.bot)[-1]
    assert told.startswith("G2 Wisby Youth Club accepted I1: reach them at https://matrix.to/#/")
    async with county.app.db.transaction() as session:
        [row] = await session.scalars(select(Introduction))
    assert (row.status, row.from_group_id, row.to_group_id) == (intros.ACCEPTED, 1, 2)
    assert "van" not in repr(vars(row))


async def test_an_opted_out_group_is_never_introduced(county: BotWorld) -> None:  # noqa: F811
    food, youth, gail = await two_groups(county, YOUTH + " contact=no")
    before = county.world.messages(youth, sender=county.bot)
    [refused] = await county.say(gail, food, '!directory contact G2 message="Hello"')
    assert refused == "G2 Wisby Youth Club has not opted in to introductions."
    await county.deliver()
    assert county.world.messages(youth, sender=county.bot) == before
    async with county.app.db.transaction() as session:
        assert list(await session.scalars(select(Introduction))) == []
    [listed] = await county.say(gail, food, "!directory youth")
    assert listed.endswith(": not open to contact")


async def test_a_decline_tells_the_asker_and_shares_nothing(county: BotWorld) -> None:  # noqa: F811
    food, youth, gail = await two_groups(county)
    await county.say(gail, food, '!directory contact G2 message="Hello"')
    [declined] = await county.say(gail, youth, "!directory decline I1")
    assert declined.startswith("Declined I1")
    await county.deliver()
    assert county.world.messages(food, sender=county.bot)[-1] == "G2 Wisby Youth Club declined I1."
    [nothing] = await county.say(gail, youth, "!directory accept I1")
    assert nothing == "No introduction is waiting for your group's answer as I1."


async def test_introductions_are_rate_limited_per_room(county: BotWorld) -> None:  # noqa: F811
    food, _, gail = await two_groups(county)
    for n in range(3, 6):
        await registered_room(county, gail, f"g{n}",
                              f'name="Group {n}" type=club area=Wisby themes=youth size=micro')
    for n in (2, 3, 4):
        [ok] = await county.say(gail, food, f'!directory contact G{n} message="Hi"')
        assert ok.startswith("Asked")
    [again] = await county.say(gail, food, '!directory contact G2 message="Hi"')
    assert again == "You already asked G2; it has not answered yet."
    [limited] = await county.say(gail, food, '!directory contact G5 message="Hi"')
    assert limited == "At most 3 introductions a day from one room; try tomorrow."
    county.clock.advance(days=1, minutes=1)
    [ok] = await county.say(gail, food, '!directory contact G5 message="Hi"')
    assert ok.startswith("Asked G5")


async def test_a_group_that_chose_admins_gets_its_introductions_by_dm(
    county: BotWorld,  # noqa: F811
) -> None:
    food, youth, gail = await two_groups(county, YOUTH + " introductions=admins")
    before = county.world.messages(youth, sender=county.bot)
    await county.say(gail, food, '!directory contact G2 message="Hello"')
    await county.deliver()
    assert county.world.messages(youth, sender=county.bot) == before
    dm = await county.app.transport.direct_room(gail)
    assert county.world.messages(dm, sender=county.bot)[-1].startswith("Introduction I1")
    [accepted] = await county.say(gail, dm, "!directory accept")
    assert accepted.startswith("Accepted I1: reach G1 Wisby Food Bank at ")


async def test_an_accepted_introduction_is_a_tie_in_the_reach_graph(
    county: BotWorld,  # noqa: F811
) -> None:
    food, youth, gail = await two_groups(county)

    async def arcs() -> set[tuple[str, str]]:
        async with county.app.db.transaction() as session:
            graph = reach_network.build(await reach_network.load_records(session),
                                        county.app.areas).graph
        return {(graph.keys[int(s)], graph.keys[int(d)])
                for s, d in zip(graph.sources, graph.indices, strict=True)}

    assert (food, youth) not in await arcs()
    await county.say(gail, food, '!directory contact G2 message="Hello"')
    assert (food, youth) not in await arcs()
    await county.say(gail, youth, "!directory accept")
    assert {(food, youth), (youth, food)} <= await arcs()
