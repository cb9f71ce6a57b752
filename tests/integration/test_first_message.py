"""A message sent right after inviting the bot, before it joined, is answered (Element sends
at once); one sent before the invite is history. The bot is stopped while people act, so
the invite, the messages and the join land in the order a fast client makes them."""

from __future__ import annotations

from botfixture import BotFactory
from conftest import PersonFactory


async def test_what_is_said_after_the_invite_is_answered_and_nothing_before_it(
    bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    alice = await person_factory("Alice", e2e=False)
    bot = await bot_factory()
    await bot.stop()

    room = await alice.create_room(name="Early birds")
    await alice.send(room, "!about")  # before the bot was invited: history
    await alice.invite(room, bot.user_id)
    await alice.send(room, "!help")
    dm = await alice.create_dm(bot.user_id, encrypted=False)
    await alice.send(dm, "!help")  # Element sends at once, before the bot joins
    await bot.start()

    help_reply = await alice.wait_for_message(dm, sender=bot.user_id, contains="!about:",
                                              timeout=30)
    assert "what this bot does" in help_reply["content"]["body"]
    await alice.wait_for_message(room, sender=bot.user_id, contains="!about:",
                                 timeout=30)
    said = [e["content"].get("body", "") for e in await alice.messages(room)
            if e["sender"] == bot.user_id and e["type"] == "m.room.message"]
    assert not [body for body in said if "Opt out with" in body], said
    dm_said = [e for e in await alice.messages(dm)
               if e["sender"] == bot.user_id and e["type"] == "m.room.message"]
    assert len(dm_said) == 1
