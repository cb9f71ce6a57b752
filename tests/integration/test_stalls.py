"""One person's slow command stalls no one else, on a real Synapse.

``!reach seed`` builds the model and picks seeds after its transaction, off the event
loop (here in a thread; under the service otherwise in a process pool, bot.offload).
The test holds that thread at the seed choice until someone in another room has asked
``!about`` and been answered, then lets it finish: both are answered, once each.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest
from botfixture import BotFactory, bring_bot_in
from people import Person

from bot.homeserver import EmbeddedSynapse, RegisteredUser
from bot.offload import InThread
from reach import seeding
from tests.integration.test_reach_roundtrip import POST, open_dm

WAIT = 30.0


@pytest.fixture
async def ada_and_cora(person_factory: Any, synapse: EmbeddedSynapse,
                       synapse_admin: RegisteredUser) -> tuple[Person, Person]:
    made = []
    for name in ("Ada", "Cora"):
        person: Person = await person_factory(name, e2e=False)
        await synapse.override_ratelimit(person.user_id, synapse_admin.access_token)
        made.append(person)
    return made[0], made[1]


async def test_about_is_answered_while_a_reach_seed_runs_in_another_room(
    bot_factory: BotFactory, ada_and_cora: tuple[Person, Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada, cora = ada_and_cora
    bot = await bot_factory(roles={"coordinators": [cora.user_id]})
    bot.app.working_after = 0.5
    # The hold below is in this process: the seed runs in a thread of it here, not in the
    # service's process pool (bot.offload), which stalls the event loop less, not more.
    bot.app.offload = InThread()
    group = await bring_bot_in(ada, bot, "Wisbech Pantry")
    await bring_bot_in(ada, bot, "Chatteris Larder")
    dm = await open_dm(cora, bot)
    await cora.send(dm, POST)
    await cora.wait_for_message(dm, sender=bot.user_id, contains="F1 published", timeout=WAIT)

    started, release = threading.Event(), threading.Event()
    real = seeding.choose_seeds

    def held_choice(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(WAIT), "the test never let the seed choice finish"
        return real(*args, **kwargs)

    # The command imports the model when it runs, so the hold goes where it looks.
    monkeypatch.setattr(seeding, "choose_seeds", held_choice)
    try:
        await cora.send(dm, "!reach seed F1 k=2")
        await cora.wait_for_message(dm, sender=bot.user_id, contains="Working on it",
                                    timeout=WAIT)
        assert await asyncio.to_thread(started.wait, WAIT)
        question = await ada.send(group, "!about")
        about = await ada.wait_for_message(group, sender=bot.user_id, contains="Grapevine",
                                           timeout=WAIT)
        assert about["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == question
        assert not release.is_set()  # answered while the seed choice was still held
    finally:
        release.set()
    seeds = await cora.wait_for_message(dm, sender=bot.user_id, contains="F1:", timeout=WAIT)
    assert "F1:" in seeds["content"]["body"]
    await asyncio.sleep(0.5)  # anything sent twice would have arrived by now
    dm_said = [m["content"]["body"] for m in await cora.messages(dm)
               if m["sender"] == bot.user_id and m["type"] == "m.room.message"]
    assert sum(body.startswith("F1:") for body in dm_said) == 1
    assert sum("Working on it" in body for body in dm_said) == 1
    group_said = [m for m in await ada.messages(group)
                  if m["sender"] == bot.user_id and m["type"] == "m.room.message"]
    assert sum(m["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
               == question for m in group_said) == 1


async def test_a_reach_seed_is_chosen_in_a_process_of_its_own_that_ends_with_the_bot(
    bot_factory: BotFactory, ada_and_cora: tuple[Person, Person],
) -> None:
    ada, cora = ada_and_cora
    bot = await bot_factory(roles={"coordinators": [cora.user_id]})
    await bring_bot_in(ada, bot, "Wisbech Pantry")
    await bring_bot_in(ada, bot, "Chatteris Larder")
    dm = await open_dm(cora, bot)
    await cora.send(dm, POST)
    await cora.wait_for_message(dm, sender=bot.user_id, contains="F1 published", timeout=WAIT)
    service = bot.service
    assert service is not None and service.offload.processes() == []  # none until asked

    await cora.send(dm, "!reach seed F1 k=2")
    seeds = await cora.wait_for_message(dm, sender=bot.user_id, contains="F1:", timeout=WAIT)
    assert "F1:" in seeds["content"]["body"]
    [worker] = service.offload.processes()
    assert worker.pid != os.getpid()
    await bot.stop()
    assert not worker.is_alive()
