"""The command framework as people meet it: help, refusals, questions and choices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from bot.aftercommit import collecting
from bot.commands.context import Context
from bot.commands.registry import CommandError
from storage import state
from storage.engine import in_transaction
from storage.models import RoleGrant
from tests.botworld import BotWorld, bot_world


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path,
        roles={"admins": ["@ada:grapevine.local"], "coordinators": ["@cora:grapevine.local"]},
    ) as bw:
        yield bw


def people(bw: BotWorld) -> tuple[str, str, str]:
    return (
        bw.world.user("ada", "Ada"),
        bw.world.user("cora", "Cora"),
        bw.world.user("mo", "Mo Member"),
    )


async def group_room(bw: BotWorld) -> str:
    ada, cora, mo = people(bw)
    room = bw.world.create_room(ada, name="Wisbech Food Bank", members=[cora, mo])
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


async def test_bot_greets_a_room_once_with_its_privacy_notice(town: BotWorld) -> None:
    room = await group_room(town)
    greeting = town.world.messages(room, sender=town.bot)
    assert len(greeting) == 1
    assert "never what anyone writes" in greeting[0]
    assert len(greeting[0].splitlines()) == 3


async def test_help_shows_only_what_the_sender_may_run(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, mo = people(town)
    # A member's help is longer than a page too (!consult, !feedback): read both pages.
    member_replies = await town.say(mo, room, "!help") + await town.say(mo, room, "!more")
    admin_replies = await town.say(ada, room, "!help") + await town.say(ada, room, "!more")
    assert all(len(reply.splitlines()) <= 12 for reply in member_replies + admin_replies)
    member_help, admin_help = "\n".join(member_replies), "\n".join(admin_replies)
    assert "!about" in member_help and "!roles" in member_help
    assert "!status" not in member_help and "role grant" not in member_help
    assert "!status" in admin_help and "grant" in admin_help


async def test_commands_are_case_insensitive_and_forgive_a_full_stop(town: BotWorld) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    [reply] = await town.say(mo, room, "!About.")
    assert "Grapevine links up community groups" in reply


async def test_a_near_miss_gets_a_suggestion_and_other_words_are_left_alone(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    suggestion = "Did you mean !about? (!help lists what I can do.)"
    assert await town.say(mo, room, "!abuot") == [suggestion]
    assert await town.say(mo, room, "!weather tomorrow") == []


async def test_not_allowed_says_which_role_is_needed_and_changes_nothing(town: BotWorld) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    [reply] = await town.say(mo, room, "!role grant @mo:grapevine.local coordinator")
    assert reply.startswith("!role grant needs the admin role")
    async with town.app.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(RoleGrant)) == 0


async def test_a_relayed_command_counts_as_a_members_whatever_the_relay_bots_power(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    [reply] = await town.say(ada, room, "Bob: !status")
    assert "count as a member's" in reply


async def test_missing_option_is_asked_for_then_answered(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    [question] = await town.say(ada, room, '!role grant "Mo Member" moderator')
    assert question.startswith("Which area will they moderate?")
    [done] = await town.say(ada, room, "Wisbech")
    assert done == "@mo:grapevine.local is now moderator of Wisbech."
    # The member is now a moderator in the database.
    async with town.app.db.transaction() as session:
        grant = await session.scalar(select(RoleGrant))
        assert grant is not None and grant.area_code == "E04001668"


async def test_an_ambiguous_area_gets_a_numbered_choice_not_a_guess(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    [choice] = await town.say(ada, room, "!role grant @mo:grapevine.local moderator area=sutton")
    assert "could be several places" in choice and "1. " in choice and "2. " in choice
    [nudge] = await town.say(ada, room, "the first one")
    assert nudge.startswith("Reply with a number from 1 to")
    [done] = await town.say(ada, room, "2")
    assert done.startswith("@mo:grapevine.local is now moderator of Sutton")


async def test_cancel_stops_a_question_and_nothing_changes(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    await town.say(ada, room, "!role grant @mo:grapevine.local moderator")
    assert await town.say(ada, room, "!cancel") == ["Cancelled; nothing was changed."]
    assert await town.say(ada, room, "Wisbech") == []
    async with town.app.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(RoleGrant)) == 0


async def test_bad_option_value_and_unknown_option_each_get_one_clear_line(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    [bad] = await town.say(ada, room, "!role grant @mo:grapevine.local mayor")
    assert bad.startswith("role: should be one of coordinator, moderator")
    [unknown] = await town.say(ada, room, "!role grant @mo:grapevine.local moderator aera=x")
    assert "aera= is not an option" in unknown and "Did you mean area=?" in unknown
    assert "\n" not in bad and "\n" not in unknown


async def test_config_roles_cannot_be_revoked_by_command(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    [reply] = await town.say(ada, room, "!role revoke @cora:grapevine.local coordinator")
    assert "in the config file" in reply


async def test_roles_lists_config_and_granted_roles(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, mo = people(town)
    await town.say(ada, room, '!role grant "Mo Member" moderator area=fenland')
    [roles] = await town.say(mo, room, "!roles")
    assert "Coordinators: @cora:grapevine.local" in roles
    assert "Moderators of Fenland: @mo:grapevine.local" in roles
    [mods] = await town.say(mo, room, "!moderators wisbech")
    assert "Fenland: @mo:grapevine.local" in mods


async def test_a_failing_handler_apologises_with_a_reference_and_keeps_going(
    town: BotWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    command, _ = town.app.registry.find(["about"]) or (None, 0)
    assert command is not None

    async def broken(ctx: object, args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setitem(
        town.app.registry.commands,
        ("about",),
        type(command)(**{**command.__dict__, "handler": broken}),
    )
    [apology] = await town.say(mo, room, "!about")
    assert apology.startswith("Sorry, something went wrong on my side (reference ")
    [after] = await town.say(mo, room, "!help about")
    assert "!about" in after


def replace_handler(bw: BotWorld, monkeypatch: pytest.MonkeyPatch, words: tuple[str, ...],
                    handler: object) -> None:
    command, _ = bw.app.registry.find(list(words)) or (None, 0)
    assert command is not None
    monkeypatch.setitem(bw.app.registry.commands, words,
                        type(command)(**{**command.__dict__, "handler": handler}))


@pytest.mark.parametrize("failure", ["bad input", "bug"])
async def test_a_handler_that_fails_half_way_leaves_nothing_of_what_it_did(
    town: BotWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    # The handler grants a role and says so, then fails: the person gets only the
    # failure's answer, the grant is not there, and the command counts as answered.
    room = await group_room(town)
    _, _, mo = people(town)
    runs = []

    async def half_way(ctx: Context, args: object) -> None:
        runs.append(ctx.message.event_id)
        ctx.session.add(RoleGrant(user_id=mo, role="coordinator", granted_by=mo,
                                  granted_at=ctx.now))
        await ctx.reply("You are now a coordinator.")
        if failure == "bad input":
            raise CommandError("That area is not one I know: try !areas.")
        raise RuntimeError("boom")

    replace_handler(town, monkeypatch, ("about",), half_way)
    event_id = await town.world.say(mo, room, "!about")
    await town.deliver()
    replies = town.world.messages(room, sender=town.bot)[-1:]
    if failure == "bad input":
        assert replies == ["That area is not one I know: try !areas."]
    else:
        assert replies[0].startswith("Sorry, something went wrong on my side (reference ")
        assert caplog.text.count("Traceback") == 1  # logged once, not per decision
    assert "You are now a coordinator." not in town.world.messages(room, sender=town.bot)
    assert runs == [event_id]  # decided again with the answer, not run again
    async with town.app.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(RoleGrant)) == 0
        assert await state.is_handled(session, event_id)


async def test_an_answer_costs_its_transaction_five_statements(town: BotWorld) -> None:
    # What stands between a person and the answer (bench/latency.py): recording the event,
    # the sender's grants, the room's group, whether the reply waits behind another, the
    # reply itself, inserted already leased to the sender. Nothing else.
    room = await group_room(town)
    _, _, mo = people(town)
    handed: list[str] = []
    town.app.handoff = lambda rows: handed.extend(row.body for row in rows)
    await town.say(mo, room, "!help")  # the first command loads who has a question open
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split()[0])

    engine = town.app.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await town.world.say(mo, room, "!about")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [body[:16] for body in handed[-1:]] == ["Grapevine links "]
    # (BEGIN goes to the driver straight, past the cursor events: one trip, not three.)
    assert statements == ["INSERT", "SELECT", "SELECT", "SELECT", "INSERT"]


async def test_an_answer_handed_straight_to_the_worker_wakes_no_pass(town: BotWorld) -> None:
    # A pass after every reply found nothing to send and ran beside the reply's send,
    # slowing it (bench/latency.py). The other workers still hear of every commit.
    room = await group_room(town)
    _, _, mo = people(town)
    handed: list[str] = []
    town.app.handoff = lambda rows: handed.extend(row.body for row in rows)
    woken: list[str] = []
    town.app.on_queued(lambda: woken.append("outbox"), outbox=True)
    town.app.on_queued(lambda: woken.append("rooms"))
    await town.world.say(mo, room, "!about")
    assert [body[:16] for body in handed] == ["Grapevine links "]
    assert woken == ["rooms"]


async def test_a_reply_not_handed_over_wakes_the_worker_once_after_the_commit(
        town: BotWorld) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    town.app.handoff = None  # as in the shell: every message waits for a pass
    woken: list[bool] = []
    town.app.on_queued(lambda: woken.append(in_transaction()), outbox=True)
    await town.world.say(mo, room, "!about")
    assert woken == [False]  # once, and not while the reply was still uncommitted
    await town.deliver()
    assert town.world.messages(room, sender=town.bot)[-1].startswith("Grapevine links")


async def test_a_wake_asked_for_inside_a_commands_transaction_waits_for_its_commit(
        town: BotWorld) -> None:
    woken: list[str] = []
    town.app.on_queued(lambda: woken.append("outbox"), outbox=True)
    with collecting() as pending:
        async with town.app.db.transaction():
            town.app.queued()
            assert woken == []
        assert pending.wake
    town.app.queued()
    assert woken == ["outbox"]


async def test_the_same_event_is_handled_once(town: BotWorld) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    event_id = await town.world.say(mo, room, "!about")
    await town.deliver()
    incoming = town.world.rooms[room].timeline[-2]
    assert incoming["event_id"] == event_id
    from bot.events import Incoming

    replay = Incoming(event_id, room, mo, "!about", town.clock.now())
    await town.app.on_message(replay)
    await town.deliver()
    answers = [m for m in town.world.messages(room, sender=town.bot) if "Grapevine links" in m]
    assert len(answers) == 1


async def test_rate_limit_answers_once_then_stays_quiet(town: BotWorld) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    replies = []
    for _ in range(13):
        replies += await town.say(mo, room, "!about")
    assert len(replies) == 11
    assert "faster than I can take them" in replies[-1]


async def test_a_long_answer_is_paged_and_more_gives_the_rest(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, _ = people(town)
    for code in ["E04001668", "E04001661", "E04012516", "E04001666", "E04001669", "E04001667",
                 "E04001662", "E04001663", "E04001664", "E04001665", "E04001660", "E04001659"]:
        town.clock.advance(seconds=10)  # stay under the rate limit
        await town.say(ada, room, f"!role grant @m{code[-3:]}:grapevine.local moderator "
                                  f"area={code}")
    [first] = await town.say(ada, room, "!roles")
    rows = first.splitlines()
    assert len(rows) == 12 and rows[-1].endswith("more lines: !more")
    [rest] = await town.say(ada, room, "!more")
    assert "Moderators of" in rest and "!more" not in rest
    assert await town.say(ada, room, "!more") == ["There is nothing more to show."]


async def test_a_command_sent_as_a_reply_names_the_person_replied_to(town: BotWorld) -> None:
    room = await group_room(town)
    ada, _, mo = people(town)
    hello = await town.world.say(mo, room, "Happy to help with the rota")
    [done] = await town.say(ada, room, "!role grant moderator area=Wisbech", reply_to=hello)
    assert done == "@mo:grapevine.local is now moderator of Wisbech."


async def test_a_broken_quote_after_someone_elses_command_word_is_left_alone(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    assert await town.say(mo, room, '!weather "tomorrow') == []
    [told] = await town.say(mo, room, '!directory "food')
    assert "quote" in told


async def test_an_ambiguous_place_in_a_list_is_chosen_and_the_rest_kept(town: BotWorld) -> None:
    from bot.commands.registry import Args, Param, Registry
    from bot.commands.values import AreaValue, ListOf

    seen: list[object] = []
    registry = Registry()

    @registry.command("places", summary="test", params=[Param("areas", ListOf(AreaValue()))])
    async def places(ctx: object, args: Args) -> None:
        seen.append(args.areas)

    town.app.registry = registry
    room = await group_room(town)
    _, _, mo = people(town)
    [choice] = await town.say(mo, room, "!places areas=wisbech,sutton")
    assert "could be several places" in choice
    await town.say(mo, room, "1")
    assert seen and seen[0][0] == "E04001668" and len(seen[0]) == 2


async def test_personal_details_the_bot_cannot_redact_are_pointed_out_by_dm(
    town: BotWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.transport.base import TransportError

    room = await group_room(town)
    _, _, mo = people(town)

    async def refuse(*args: object, **kwargs: object) -> None:
        raise TransportError("M_FORBIDDEN", "not enough power")

    monkeypatch.setattr(town.transport, "redact", refuse)
    await town.say(mo, room, "!volunteer register skills=driving area=Wisbech "
                             "availability=weekends over18=yes")
    # One DM, saying what happened: the welcome with the failure, never "I removed".
    [welcome] = town.dms(mo)
    assert welcome.startswith("Welcome to the volunteer pool")
    assert welcome.endswith("I stored what you sent, but I couldn't remove your message from "
                            "the room (I need moderator power there). Please delete it "
                            "yourself, and send personal details to me here instead.")
    assert "I removed" not in welcome and "still showing" not in welcome


async def test_the_answer_to_personal_details_says_they_were_removed_once_they_were(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    _, _, mo = people(town)
    [said] = await town.say(mo, room, "!volunteer register skills=driving area=Wisbech "
                                      "availability=weekends over18=yes")
    assert "direct message" in said
    [welcome] = town.dms(mo)
    assert welcome.startswith("Welcome to the volunteer pool")
    assert welcome.endswith("!volunteer pause takes a break.\nI removed your message from "
                            "the chat.")
    assert not town.world.messages(room, sender=mo)  # redacted


POST = '!funding post https://example.org/warm title="Warm Spaces" areas=wisbech'


async def notice_count(bw: BotWorld) -> int:
    from storage.funding import FundingNotice

    async with bw.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(FundingNotice)) or 0)


async def test_a_bad_value_is_reported_at_once_with_the_question_for_a_missing_option(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    _, cora, _ = people(town)
    [reply] = await town.say(cora, room, f"{POST} deadline=2026-02-30")
    bad, question = reply.splitlines()
    assert bad == "deadline: There is no 30 February 2026."
    assert question == "Who is the funder? (or !cancel)"
    assert await notice_count(town) == 0
    # Once that is answered, the bad value is asked for again: never used, never dropped.
    [again] = await town.say(cora, room, "Community Fund")
    assert again == "When does it close? (a date, e.g. 5 Dec) (or !cancel)"
    assert await notice_count(town) == 0
    [done] = await town.say(cora, room, "18 Dec")
    assert done.startswith("F1 published")
    assert await notice_count(town) == 1


async def test_a_bad_optional_value_is_asked_for_again_not_dropped(town: BotWorld) -> None:
    room = await group_room(town)
    _, cora, _ = people(town)
    [reply] = await town.say(cora, room, f"{POST} deadline=2026-12-18 amount=lots")
    assert reply.splitlines() == ["amount: should be an amount or a range like 500-5000 "
                                  "(not 'lots').", "Who is the funder? (or !cancel)"]
    [again] = await town.say(cora, room, "Community Fund")
    assert again.startswith("What amount?") and again.endswith("(or !cancel)")
    [done] = await town.say(cora, room, "500-5000")
    assert done.startswith("F1 published")
    async with town.app.db.transaction() as session:
        from storage.funding import FundingNotice

        notice = await session.scalar(select(FundingNotice))
        assert notice is not None and (notice.award_min, notice.award_max) == (500, 5000)


async def test_several_bad_values_are_all_named_in_one_line(town: BotWorld) -> None:
    room = await group_room(town)
    _, cora, _ = people(town)
    [reply] = await town.say(cora, room, f'{POST} funder="Trust" deadline=2026-02-30 '
                                         "amount=lots")
    assert reply.startswith("deadline: There is no 30 February 2026. amount: should be an "
                            "amount or a range")
    assert "\n" not in reply and "Usage: !funding post" in reply
    assert await notice_count(town) == 0
