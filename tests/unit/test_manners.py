"""Good manners, whole command path: what phones send means what its canonical form means,
no input crashes the bot, every refusal is one clear line, quiet rooms stay quiet,
encrypted rooms are told once, and logs carry no message text."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.context import Context
from bot.commands.lexer import LexError, tokenize
from bot.commands.registry import REGISTRY, Args, Param, Registry
from bot.commands.values import AreaValue, DateValue, Person, Text, Window, YesNo
from bot.events import Incoming, StateChange
from bot.features import encrypted
from bot.logfilter import REDACTED, RedactBodies, install
from bot.runtime.outbox_worker import MARKER as OUTBOX_MARKER
from config.settings import load_settings
from storage.groups import Group
from tests.botworld import BotWorld, bot_world

ADA = "@ada:grapevine.local"  # made the room: its admin
MO = "@mo:grapevine.local"
CRASH = "something went wrong on my side"


def with_echo() -> Registry:
    """The bot's real commands plus ``!echo``, which shows exactly what it understood."""
    registry = Registry(dict(REGISTRY.commands))

    @registry.command("echo", summary="say back the parsed options", params=[
        Param("title", Text(), ask="What title?"),
        Param("on", DateValue(), required=False),
        Param("when", Window(), required=False),
        Param("ok", YesNo(), required=False),
        Param("area", AreaValue(), required=False),
        Param("who", Person(), required=False),
    ])
    async def echo(ctx: Context, args: Args) -> None:
        parts = [f"{k}={v!s}" for k, v in args.items() if v is not None]
        await ctx.reply("echo " + " ".join(parts))

    return registry


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[BotWorld]:
    bot_id = "@grapevine:grapevine.local"
    config = load_settings(None, bot={"data_dir": str(tmp_path), "commands_per_minute": 100_000},
                           matrix={"user_id": bot_id, "encryption": False})
    async with bot_world(tmp_path, settings=config) as bw:
        bw.app.registry = with_echo()
        yield bw


async def group_room(bw: BotWorld) -> str:
    ada, mo = bw.world.user("ada", "Ada"), bw.world.user("mo", "Mo Member")
    room = bw.world.create_room(ada, name="Wisbech Food Bank", members=[mo])
    await bw.world.join(bw.bot, room)
    await bw.deliver()
    return room


# Friday 20 November 2026, 10:00 in London (the world's clock).
SAME_MEANING = [
    # Command words in any case, a trailing full stop, curly quotes.
    ('!Echo title="Warm spaces"', '!echo title="Warm spaces"'),
    ("!ECHO title=“Warm spaces”.", '!echo title="Warm spaces"'),
    ("!echo title=‘Warm spaces’", '!echo title="Warm spaces"'),
    ('!echo title="Warm spaces" ok=Yes.', '!echo title="Warm spaces" ok=yes'),
    # Dates: UK forms, weekdays and relative words mean their ISO date.
    ("!echo title=x on=5/12", "!echo title=x on=2026-12-05"),
    ("!echo title=x on=“5 Dec”", "!echo title=x on=2026-12-05"),
    ('!echo title=x on="5 December 2026"', "!echo title=x on=2026-12-05"),
    ("!echo title=x on=05.12", "!echo title=x on=2026-12-05"),
    ('!echo title=x on="next friday"', "!echo title=x on=2026-11-27"),
    ("!echo title=x on=sat", "!echo title=x on=2026-11-21"),
    ("!echo title=x on=today", "!echo title=x on=2026-11-20"),
    ("!echo title=x on=tomorrow.", "!echo title=x on=2026-11-21"),
    ("!echo title=x on=+7d", "!echo title=x on=2026-11-27"),
    # Times and windows, with en and em dashes as phones write them.
    ('!echo title=x when="sat 10am-1pm"', '!echo title=x when="2026-11-21 10:00-13:00"'),
    ("!echo title=x when=“sat 10am–1pm”", '!echo title=x when="2026-11-21 10:00-13:00"'),
    ('!echo title=x when="sat 10am—1pm"', '!echo title=x when="2026-11-21 10:00-13:00"'),
    ('!echo title=x when="5/12 2.30pm-4pm"', '!echo title=x when="2026-12-05 14:30-16:00"'),
    # Areas by name, case- and punctuation-insensitive, or GSS code.
    ("!echo title=x area=FENLAND", "!echo title=x area=E07000010"),
    ("!echo title=x area=“St Ives”", "!echo title=x area=E04012036"),
    # People by a display name unique in the room, or their Matrix id.
    ('!echo title=x who="Mo Member"', f"!echo title=x who={MO}"),
    # Real commands, typed carelessly.
    ("!Funding list.", "!funding list"),
    ("!HELP", "!help"),
    ("!About.", "!about"),
    ("!Directory “food”", "!directory food"),
]


async def test_what_phones_send_means_the_canonical_form(town: BotWorld) -> None:
    room = await group_room(town)
    differ = []
    for typed, canonical in SAME_MEANING:
        expected = await town.say(MO, room, canonical)
        assert expected and not any(CRASH in r for r in expected), canonical
        got = await town.say(MO, room, typed)
        if got != expected:
            differ.append((typed, got, expected))
    assert differ == []


async def test_a_date_that_could_mean_two_things_is_asked_about(town: BotWorld) -> None:
    room = await group_room(town)
    question = await town.say(MO, room, "!echo title=x on=fri")
    assert question == ["Did you mean today (Fri 20 Nov) or Fri 27 Nov?\n"
                        "1. Fri 20 Nov 2026\n2. Fri 27 Nov 2026\n"
                        "Reply with a number (1-2), or !cancel."]
    assert await town.say(MO, room, "2.") == await town.say(MO, room, "!echo title=x on=27/11")


async def test_a_missing_option_is_asked_for_and_the_answer_completes_it(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    assert await town.say(MO, room, "!echo on=5/12") == ["What title? (or !cancel)"]
    assert await town.say(MO, room, "Warm spaces") == ["echo title=Warm spaces on=2026-12-05"]
    assert await town.say(MO, room, "Warm spaces") == []  # the question was answered


async def test_a_quiet_groups_room_hears_the_bot_answer_only_its_admins(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    async with town.app.db.transaction() as session:
        session.add(Group(room_id=room, name="Wisbech Food Bank", type="community-group",
                          area_code="E04001668", themes=[], size="small", registered_by=ADA,
                          registered_at=town.clock.now(), quiet=True))
    assert await town.say(MO, room, "!about") == []
    assert await town.say(MO, room, "!fundng") == []
    assert await town.say(MO, room, "Ada: !about") == []  # a relayed admin is a member
    assert len(await town.say(ADA, room, "!about")) == 1
    mo_dm = town.world.create_room(MO, direct=True)
    await town.world.join(town.bot, mo_dm)
    assert len(await town.say(MO, mo_dm, "!about")) == 1  # a DM still works


async def test_another_grapevines_words_are_never_answered(town: BotWorld) -> None:
    room = await group_room(town)
    other = town.world.user("grapevine2", "Grapevine")
    help_line = Incoming("$other", room, other, "!about: what this bot does\n!cancel: ...",
                         town.clock.now(), content={OUTBOX_MARKER: 7})
    await town.app.on_message(help_line)
    await town.deliver()
    said = [m for m in town.world.messages(room, sender=town.bot) if "never what" not in m]
    assert said == []
    person = Incoming("$mo", room, MO, "!about", town.clock.now(), content={"body": "!about"})
    await town.app.on_message(person)
    await town.deliver()
    assert len(town.world.messages(room, sender=town.bot)) == 2


async def test_an_encrypted_room_is_told_once_that_the_bot_cannot_read_it(
    town: BotWorld,
) -> None:
    room = await group_room(town)
    change = StateChange("$enc", room, ADA, "m.room.encryption", "",
                         {"algorithm": "m.megolm.v1.aes-sha2"}, town.clock.now())
    await town.app.on_state(change)
    await town.app.on_state(change)
    await town.deliver()
    told = [m for m in town.world.messages(room, sender=town.bot) if "can't read" in m]
    assert told == [encrypted.CANNOT_READ]


# -- fuzzing: anything typed after the prefix ---------------------------------------------

_phone_text = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz ABCZ0123456789=,.:/+-_@!?\"'"
                                  "“”‘’–—…é£\t")),
    max_size=60,
)
_words = st.sampled_from(sorted({" ".join(k) for k in with_echo().commands} | {"fundng", "x"}))
_options = st.lists(
    st.tuples(st.sampled_from(["title", "on", "when", "ok", "area", "who", "count", "role",
                               "themes", "max_posts", "quiet", "url", "closes", "amount"]),
              _phone_text),
    max_size=3,
).map(lambda pairs: " ".join(f"{k}={v}" for k, v in pairs))
_first_lines = st.one_of(
    _phone_text.map(lambda t: "!" + t),
    st.tuples(_words, _phone_text, _options).map(lambda t: f"!{t[0]} {t[1]} {t[2]}"),
)


REFUSAL_MARKS = ("Usage:", "needs the", "Did you mean", "I didn't expect", "is not an option",
                 "needs one of", "takes no", "Run !", "give ", "not found")


def addressed_to_someone_else(first_line: str, registry: Registry) -> bool:
    """A !word that is neither a command nor a near miss of one: another bot's.

    Lines the lexer refuses (an unclosed quote) are left out: the app answers those
    whoever the command word belongs to (reported to the lead).
    """
    try:
        words = tokenize(first_line[1:]).words
    except LexError:
        return False
    word = words[0].lower() if words else ""
    return word not in registry.top_words() and registry.near_miss(word) is None


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first_line=_first_lines, sender=st.sampled_from([ADA, MO]))
async def test_no_input_crashes_the_bot_and_every_refusal_is_one_line(
    town: BotWorld, first_line: str, sender: str,
) -> None:
    rooms = [r for r in town.world.rooms if town.bot in town.world.room(r).members()]
    room = rooms[0] if rooms else await group_room(town)
    replies = await town.say(sender, room, first_line)
    await town.say(sender, room, "!cancel")  # leave no question open for the next example
    if addressed_to_someone_else(first_line, town.app.registry):
        assert replies == [], first_line
    for reply in replies:
        assert CRASH not in reply, first_line
        assert reply.strip() and len(reply.splitlines()) <= 12, first_line
        if any(mark in reply for mark in REFUSAL_MARKS) or reply.endswith("!cancel)"):
            # One line says what was wrong; a bad value beside a missing option is reported
            # at once, so the question for that option may follow it, as the second line.
            _refusal, *question = reply.splitlines()
            assert len(question) <= 1, (first_line, reply)
            assert all(q.endswith("(or !cancel)") for q in question), (first_line, reply)


# -- logs ------------------------------------------------------------------------------------


def test_log_records_lose_message_bodies_and_command_lines_but_keep_ids() -> None:
    logger = logging.getLogger("test.manners")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    keep.addFilter(RedactBodies())
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("event %s", {"event_id": "$e1", "content": {
            "body": "!volunteer register dbs_checked=2025-01-10 SECRET-1", "msgtype": "m.text"}})
        logger.info("in %s got %s", "!abc:grapevine.local", "!mediation note M1 \"SECRET-2\"")
        try:
            raise ValueError("body='SECRET-3 in a traceback'")
        except ValueError:
            logger.exception("handler failed for $e2")
    finally:
        logger.removeHandler(keep)
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in records)
    assert "SECRET" not in text and "2025-01-10" not in text
    assert "$e1" in text and "!abc:grapevine.local" in text and "$e2" in text
    assert f"!mediation {REDACTED}" in text and "ValueError" in text


def test_installing_the_filter_covers_every_handler_once() -> None:
    logger = logging.getLogger("test.manners.install")
    handlers = [logging.NullHandler(), logging.NullHandler()]
    for handler in handlers:
        logger.addHandler(handler)
    try:
        first = install(logger=logger)
        assert install(logger=logger) is first
        assert all(h.filters == [first] for h in handlers)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
