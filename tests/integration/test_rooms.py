"""The room tree and group profiles on a real Synapse, as admins, moderators and members see it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from pathlib import Path

import pytest
from botfixture import BotFactory, RunningBot, bring_bot_in
from conftest import PersonFactory
from people import MatrixRequestFailed, Person

from bot.features.tree_build import builder_for
from storage import tree
from tests.small_county import write_test_areas

WISBY = "E04900001"


async def start_bot(bot_factory: BotFactory, tmp_path: Path, admin: Person,
                    moderators: dict[str, list[str]] | None = None) -> tuple[RunningBot, str]:
    """A bot on a small county whose aliases are unique to this test; returns it and the tag."""
    tag = uuid.uuid4().hex[:6]
    areas = write_test_areas(tmp_path / "areas.csv", tag)
    bot = await bot_factory(roles={"admins": [admin.user_id], "moderators": moderators or {}},
                            areas={"file": str(areas)})
    return bot, tag


async def alias_room(person: Person, alias: str) -> str:
    response = await person.client.room_resolve_alias(f"#{alias}:{person.server_name}")
    room_id: str = response.room_id
    return room_id


async def newest_events(bot: RunningBot) -> dict[str, str]:
    """Each tree room's newest event id, as the bot sees it."""
    async with bot.app.db.transaction() as session:
        rows = await tree.all_rooms(session)
    transport = bot.app.transport
    return {row.room_id: (await transport.recent_events(row.room_id, limit=1))[0]["event_id"]
            for row in rows.values()}


async def refused(call: Awaitable[object]) -> str | None:
    """The errcode a person's request was refused with, or None when it went through."""
    try:
        await call
    except MatrixRequestFailed as exc:
        return exc.errcode
    return None


async def test_the_tree_is_built_then_rebuilt_without_a_single_new_event(
    bot_factory: BotFactory, person_factory: PersonFactory, tmp_path: Path,
) -> None:
    ada = await person_factory("Ada", e2e=False)
    bot, tag = await start_bot(bot_factory, tmp_path, ada)
    office = await bring_bot_in(ada, bot, "Council office")
    await ada.send(office, "!rooms setup area=Fenmarsh")
    built = await ada.wait_for_message(office, sender=bot.user_id, contains="Rooms for Fenmarsh",
                                       timeout=90)
    assert "made 20" in built["content"]["body"]

    fenmarsh = await alias_room(ada, f"fenmarsh{tag}")
    wisby = await alias_room(ada, f"fenmarsh{tag}-wisby")
    top = await alias_room(ada, f"testshire{tag}")
    transport = bot.app.transport
    assert (await transport.get_state(fenmarsh, "m.space.child", wisby) or {})["via"] == [
        ada.server_name]
    assert (await transport.get_state(wisby, "m.space.parent", fenmarsh) or {})["via"] == [
        ada.server_name]
    assert (await transport.get_state(top, "m.space.child", fenmarsh) or {})["via"]
    assert (await transport.get_state(wisby, "m.room.join_rules") or {})["allow"] == [
        {"type": "m.room_membership", "room_id": fenmarsh}]

    before = await newest_events(bot)
    await ada.send(office, "!rooms setup area=Fenmarsh")
    again = await ada.wait_for_message(office, sender=bot.user_id, contains="Rooms for Fenmarsh",
                                       timeout=60)
    assert "nothing to change" in again["content"]["body"]
    assert await newest_events(bot) == before


async def test_moderators_act_in_their_area_only_and_space_members_may_join(
    bot_factory: BotFactory, person_factory: PersonFactory, tmp_path: Path,
) -> None:
    ada = await person_factory("Ada", e2e=False)
    clerk = await person_factory("Wisby clerk", e2e=False)
    pat = await person_factory("Pat", e2e=False)
    bot, tag = await start_bot(bot_factory, tmp_path, ada, {WISBY: [clerk.user_id]})
    office = await bring_bot_in(ada, bot, "Council office")
    await ada.send(office, "!rooms setup area=Fenmarsh")
    await ada.wait_for_message(office, sender=bot.user_id, contains="Rooms for Fenmarsh",
                               timeout=90)
    wisby = f"#fenmarsh{tag}-wisby:{ada.server_name}"
    march = f"#fenmarsh{tag}-march-end:{ada.server_name}"

    # Not in the district space yet: the restricted room turns Pat away.
    assert await refused(pat.join(wisby)) == "M_FORBIDDEN"
    for person in (clerk, pat):
        await person.join(f"#testshire{tag}:{ada.server_name}")
        await person.join(f"#fenmarsh{tag}:{ada.server_name}")
        await person.join(wisby)
        await person.join(march)
    wisby_id, march_id = await alias_room(pat, f"fenmarsh{tag}-wisby"), await alias_room(
        pat, f"fenmarsh{tag}-march-end")

    # A plain member can neither redact others' messages nor kick.
    clerk_says = await clerk.send(wisby_id, "Parish meeting on Tuesday")
    assert await refused(pat.redact(wisby_id, clerk_says)) == "M_FORBIDDEN"
    assert await refused(pat.kick(wisby_id, clerk.user_id)) == "M_FORBIDDEN"
    # The Wisby clerk moderates Wisby's room ...
    spam = await pat.send(wisby_id, "buy cheap watches")
    assert await refused(clerk.redact(wisby_id, spam)) is None
    assert await refused(clerk.kick(wisby_id, pat.user_id)) is None
    # ... and not March End's.
    spam = await pat.send(march_id, "buy cheap watches")
    assert await refused(clerk.redact(march_id, spam)) == "M_FORBIDDEN"
    assert await refused(clerk.kick(march_id, pat.user_id)) == "M_FORBIDDEN"

    # A moderator granted by command gets power in the area's rooms.
    await ada.send(office, f"!role grant {pat.user_id} moderator area=\"March End\"")
    await ada.wait_for_message(office, sender=bot.user_id, contains="is now moderator")
    await builder_for(bot.app).idle()
    levels = await pat.state(march_id, "m.room.power_levels") or {}
    assert levels["users"].get(pat.user_id) == 50
    assert await refused(pat.kick(march_id, clerk.user_id)) is None


@pytest.mark.parametrize("scenario", ["area", "groups"])
async def test_mistakes_get_one_clear_line_and_ambiguity_a_choice(
    bot_factory: BotFactory, person_factory: PersonFactory, tmp_path: Path, scenario: str,
) -> None:
    ada = await person_factory("Ada", e2e=False)
    bot, _ = await start_bot(bot_factory, tmp_path, ada)
    room = await bring_bot_in(ada, bot, "Wisby Food Bank")

    async def answer(text: str, contains: str) -> str:
        await ada.send(room, text)
        event = await ada.wait_for_message(room, sender=bot.user_id, contains=contains)
        body: str = event["content"]["body"]
        return body

    if scenario == "area":
        choice = await answer("!rooms setup area=Upton", "could be several places")
        assert "1. Upton (Fenmarsh)" in choice and "2. Upton (Hillside)" in choice
        await ada.send(room, "!cancel")
        bad = await answer("!rooms setup area=E04999999", "not an area I know")
        assert len(bad.splitlines()) == 1
        return
    register = ('!group register name="Wisby Food Bank" type=charity area=Wisby themes=food '
                "size=small")
    done = await answer(register, "Registered")
    assert done.startswith("Registered G1 Wisby Food Bank (charity, Wisby), unverified")
    twice = await answer(register, "already")
    assert twice.splitlines() == [twice] and twice.startswith("This room is already G1")
    mo = await person_factory("Mo", e2e=False)
    await ada.invite(room, mo.user_id)
    await mo.join(room)
    await mo.send(room, register)
    refusal = await mo.wait_for_message(room, sender=bot.user_id, contains="group register")
    assert len(refusal["content"]["body"].splitlines()) == 1
    assert "group admin" in refusal["content"]["body"]
