"""The validation's synthetic Cambridgeshire (``bench/reach_validation.py``) is the network the
bot would build and post into: its rooms are the room tree's, and a notice goes to the rooms
the bot's own targeting rule picks. A validation on a sparser posting than the bot's would
judge the model on counts the bot never shows (issue 17)."""

import numpy as np
import pytest

from bench.reach_validation import THEMES, World, build_world, notice_seeds
from bot.features.funding_targeting import GroupFacts, NoticeFacts, plan
from bot.features.tree_plan import LOCALITY, THEME, full_plan
from config.areas import AreaIndex
from config.themes import load_themes
from reach.graph import NODE_KINDS

ROOM, GROUP = NODE_KINDS.index("room"), NODE_KINDS.index("group")


def node(world: World, profile: GroupFacts) -> int:
    """The group's room in the graph (every synthetic group is on chat)."""
    assert profile.room_id is not None
    return world.graph.index[profile.room_id]


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


def test_the_world_has_the_rooms_the_bot_builds_for_the_shipped_areas_and_themes(
        world: World) -> None:
    areas = AreaIndex.load()
    built = full_plan(areas, load_themes())
    localities = {r.area_code for r in built if r.kind == LOCALITY}
    theme_rooms = {(r.area_code, r.theme) for r in built if r.kind == THEME}

    assert {r.area for r in world.tree if r.theme is None} == localities
    assert {(r.area, r.theme) for r in world.tree if r.theme is not None} == theme_rooms
    assert len(localities) == 279
    assert len(theme_rooms) == 6 * len(THEMES) == 90  # six districts, 15 shipped themes
    assert world.hubs.size == len(localities) + len(theme_rooms)


def test_every_group_has_a_profile_targeting_can_read(world: World) -> None:
    g = world.graph
    assert len(world.profiles) == world.groups.size == 2136
    for profile in world.profiles[:50]:
        v = node(world, profile)
        assert g.kind[v] == GROUP
        assert g.localities[g.locality[v]] == profile.area_code
        assert profile.contact  # the default: groups hear of matching notices
        assert len(profile.themes) == 1 and profile.themes[0] in THEMES


def test_a_notice_goes_to_every_room_of_its_district_the_bot_would_post_it_in(
        world: World) -> None:
    g = world.graph
    seeds = notice_seeds(world, np.random.default_rng(3))
    [district] = set(g.district[seeds].tolist())
    code = g.districts[district]
    themes = {p.themes[0] for p in world.profiles if node(world, p) in set(seeds)}
    [theme] = themes  # one theme, one district per notice

    in_district = g.district == district
    locality_rooms = np.flatnonzero(in_district & (g.kind == ROOM) & (g.locality >= 0))
    doing_it = [node(world, p) for p in world.profiles
                if theme in p.themes and world.areas.contains(code, p.area_code)]
    theme_room = world.theme_rooms[(code, THEMES.index(theme))]

    assert set(seeds) == {*locality_rooms.tolist(), *doing_it, theme_room}
    # The same rooms as the bot's rule, not a handful of them.
    bot_rooms = plan(NoticeFacts(areas=(code,), themes=(theme,)), (), world.profiles,
                     world.tree, world.areas.contains).room_ids()
    assert {g.keys[v] for v in seeds} == bot_rooms
    assert len(seeds) >= 20


def test_notices_reach_every_district_and_stay_inside_it(world: World) -> None:
    g = world.graph
    rng = np.random.default_rng(5)
    districts = set()
    for _ in range(60):
        seeds = notice_seeds(world, rng)
        here = set(g.district[seeds].tolist())
        assert len(here) == 1
        districts |= here
    assert districts == set(range(len(g.districts)))
