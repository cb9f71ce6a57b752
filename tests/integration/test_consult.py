"""A consultation on a real Synapse: put to three groups in two networks (one a WhatsApp
group through the stand-in bridge), answered, changed, closed; the results hide counts
under 5 and the CSV file's cells and sums agree with the answers in the database."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from botfixture import BotFactory
from people import FakeBridge, Person
from sqlalchemy import select
from test_bridges import (
    WAIT,
    ask,
    bot_says,
    download,
    network_of,
    portal_with_bot,
    start_bot,
    until,
)

from storage import consult, groups
from storage.consult import Answer, Poll
from tests.clocks import LONDON, START, london

QUESTION = "Would a shared minibus help?"
ASK = (f'!consult ask question="{QUESTION}" options="Yes|No|Not sure" themes=food '
       "members=yes closes=+14d")


async def own_group(person: Person, bot: Any, name: str, area: str) -> str:
    """A plain Matrix room the person made (so they are its admin), registered as a group."""
    room = await person.create_room(name=name, invite=[bot.user_id])
    await person.wait_for_message(room, sender=bot.user_id, contains="never what", timeout=WAIT)
    await person.send(room, f'!group register name="{name}" type=charity area={area} '
                            "themes=food size=small")
    await person.wait_for_message(room, sender=bot.user_id, contains="Registered G",
                                  timeout=WAIT)
    return room


async def command(person: Person, room: str, bot: Any, text: str, expect: str) -> dict[str, Any]:
    await person.send(room, text)
    return await person.wait_for_message(room, sender=bot.user_id, contains=expect, timeout=WAIT)


async def test_a_consultation_across_whatsapp_and_matrix_from_ask_to_csv(
    bot_factory: BotFactory, whatsapp_bridge: FakeBridge, person_factory: Any, tmp_path: Path,
) -> None:
    fake = whatsapp_bridge
    cora: Person = await person_factory("Cora", e2e=False)
    hana: Person = await person_factory("Hana", e2e=False)
    ian: Person = await person_factory("Ian", e2e=False)
    bot = await start_bot(bot_factory, fake, tmp_path, roles={"coordinators": [cora.user_id]})
    portal, gail, mo = await portal_with_bot(fake, bot)

    async def bridged() -> bool:
        return await network_of(bot, portal) == "whatsapp"

    await until(bridged, "the portal to be known as WhatsApp")
    await ask(fake, gail, portal, bot, '!group register name="Chatteris Food Bank" type=charity '
              "area=Chatteris themes=food size=small", "Registered G")
    wisbech = await own_group(hana, bot, "Wisbech Pantry", "Wisbech")
    ely = await own_group(ian, bot, "Ely Larder", "Ely")
    office = await cora.create_room(name="Office", invite=[bot.user_id])
    await cora.wait_for_message(office, sender=bot.user_id, contains="never what", timeout=WAIT)

    asked = await command(cora, office, bot, ASK, "K1 put to")
    assert asked["content"]["body"].startswith("K1 put to 3 groups.")
    poll = await bot_says(fake, portal, bot, "Consultation K1")
    assert poll["content"]["msgtype"] == "m.text"
    assert f"Consultation K1 from the coordinators: {QUESTION}" in poll["content"]["body"]
    for person, room in ((hana, wisbech), (ian, ely)):
        await person.wait_for_message(room, sender=bot.user_id, contains="Consultation K1",
                                      timeout=WAIT)

    # Gail answers for the WhatsApp group and changes her mind; Mo adds his own view.
    await ask(fake, gail, portal, bot, '!consult answer K1 b comment="We share a van already"',
              "G1's answer to K1: b) No (noted)")
    await ask(fake, gail, portal, bot, "!consult answer K1 a",
              "G1's answer to K1: a) Yes (changed from b) No)")
    await ask(fake, mo, portal, bot, "!consult answer K1 c", "Your own view on K1: c) Not sure")
    await command(hana, wisbech, bot, "!consult answer K1 a", "G2's answer to K1: a) Yes")
    await command(ian, ely, bot, "!consult answer K1 b", "G3's answer to K1: b) No")
    refused = await command(hana, wisbech, bot, "!consult answer K1 z", "not an answer to K1")
    assert refused["content"]["body"] == ("'z' is not an answer to K1: give a, b or c "
                                          "(!consult answer K1 a).")

    # Six more Fenland groups, on Telegram, answered too (through the storage, as plain rows),
    # so one count is large enough to be shown.
    async with bot.app.db.transaction() as session:
        k1 = await consult.poll(session, 1)
        assert k1 is not None
        extra = []
        for i in range(6):
            group = groups.Group(room_id=None, name=f"Fen Group {i}", type="charity",
                                 area_code="E04012516", themes=["food"], size="small",
                                 registered_by=cora.user_id, registered_at=bot.app.clock.now())
            session.add(group)
            await session.flush()
            extra.append(group.id)
            await consult.add_answer(session, poll_id=1, group_id=group.id, option=0 if i else 1,
                                     district="E07000010", network="telegram",
                                     answered_at=bot.app.clock.now(), changed_at=None)
        k1.group_ids = [*k1.group_ids, *extra]

    closed = await command(cora, office, bot, "!consult close K1", "K1 closed.")
    assert "!consult results K1" in closed["content"]["body"]
    late = await ask(fake, gail, portal, bot, "!consult answer K1 b", "it takes no more answers")
    assert late["content"]["body"].startswith("K1 is closed ")

    await cora.send(office, "!consult results K1")
    text = await cora.wait_for_message(office, sender=bot.user_id, contains="groups answered",
                                       timeout=WAIT)
    body = str(text["content"]["body"])
    assert body.startswith(f'K1 "{QUESTION}" (closed ')
    assert "9 of 9 groups answered." in body
    assert "Groups: a 7 · b <5 · c <5" in body
    assert "Members' own views: a <5 · b <5 · c <5" in body
    chart = await cora.wait_for_message(office, sender=bot.user_id, contains="answers by district",
                                        timeout=WAIT)
    assert chart["content"]["msgtype"] == "m.image"
    assert (await download(fake, chart["content"]["url"]))[:4] == b"\x89PNG"
    table = await cora.wait_for_message(office, sender=bot.user_id, contains="as a CSV file",
                                        timeout=WAIT)
    assert table["content"]["msgtype"] == "m.file"
    assert table["content"]["info"]["mimetype"] == "text/csv"
    data = (await download(fake, table["content"]["url"])).decode()
    rows = [r for r in csv.DictReader(io.StringIO(data)) if r["breakdown"] != "comment"]

    # What the CSV must say, counted here straight from the answers in the database.
    async with bot.app.db.transaction() as session:
        answers = list(await session.scalars(select(Answer)))
        stored = await session.get(Poll, 1)
        assert stored is not None and stored.closed_at is not None
    areas = bot.app.areas
    expected: Counter[tuple[str, str, str, str]] = Counter()
    for a in answers:
        kind = "members" if a.voter_key else "groups"
        option = "abc"[a.option]
        expected[(kind, "all", "all", option)] += 1
        expected[(kind, "district", areas.label(a.district), option)] += 1
        expected[(kind, "network", a.network, option)] += 1
    assert {a.network for a in answers} == {"whatsapp", "matrix", "telegram"}
    for row in rows:
        for kind in ("groups", "members"):
            n = expected[(kind, row["breakdown"], row["where"], row["option"][0])]
            assert row[kind] == ("<5" if n < 5 else str(n)), (row, kind, n)
    suppressed = any(r["groups"] == "<5" for r in rows)
    assert suppressed and any(r["groups"] == "7" for r in rows)
    # Every breakdown adds up to the total: the shown counts, plus at most 4 for each hidden one.
    totals = {r["option"]: r for r in rows if r["breakdown"] == "all"}
    for by in ("district", "network"):
        for option, total in totals.items():
            cells = [r["groups"] for r in rows if r["breakdown"] == by and r["option"] == option]
            shown = sum(int(c) for c in cells if c != "<5")
            hidden = sum(1 for c in cells if c == "<5")
            true_total = expected[("groups", "all", "all", option[0])]
            places = {w for (k, b, w, o) in expected if k == "groups" and b == by}
            assert sum(expected[("groups", by, w, option[0])] for w in places) == true_total
            assert shown <= true_total <= shown + 4 * hidden
            if total["groups"] != "<5":
                assert int(total["groups"]) == true_total
    comments = [r for r in csv.DictReader(io.StringIO(data)) if r["breakdown"] == "comment"]
    assert [c["members"] for c in comments] == ["We share a van already"]
    assert gail not in data and "Gail" not in data and "Chatteris Food Bank" not in data


async def test_a_consultation_closes_at_its_closing_time_and_its_asker_hears_once(
    bot_factory: BotFactory, person_factory: Any,
) -> None:
    """The scheduled close on the real Synapse: the bot's clock is moved past ``closes=``;
    the job the bot's scheduler fires closes the poll, its asker hears once by DM, and a
    late answer is refused."""
    cora: Person = await person_factory("Cora", e2e=False)
    hana: Person = await person_factory("Hana", e2e=False)
    bot = await bot_factory(roles={"coordinators": [cora.user_id]})
    wisbech = await own_group(hana, bot, "Wisbech Pantry", "Wisbech")
    office = await cora.create_room(name="Office", invite=[bot.user_id])
    await cora.wait_for_message(office, sender=bot.user_id, contains="never what", timeout=WAIT)
    closes = london(START.astimezone(LONDON).date() + timedelta(days=1), 12)
    await command(cora, office, bot, f'!consult ask question="{QUESTION}" options="Yes|No" '
                  f'closes="{closes.astimezone(LONDON):%Y-%m-%d %H:%M}"', "K1 put to 1 group")
    await command(hana, wisbech, bot, "!consult answer K1 a", "G1's answer to K1: a) Yes")

    bot.advance_to(closes + timedelta(minutes=2))
    # The scheduler looks at the clock again within 30 s (as long as WAIT): told to now.
    assert bot.service is not None and bot.service.scheduler is not None
    bot.service.scheduler.wake()
    dm = await cora.wait_for_invite(timeout=WAIT, joined=True)
    told = await cora.wait_for_message(dm, sender=bot.user_id, contains="has closed",
                                       since=0, timeout=WAIT)
    assert told["content"]["body"] == ("Your consultation K1 has closed at its closing time. "
                                       "!consult results K1 shows the answers.")
    late = await command(hana, wisbech, bot, "!consult answer K1 b", "takes no more answers")
    assert late["content"]["body"].startswith("K1 is closed ")

    # Later runs of the job (the clock moved on, and once more after a restart) say nothing.
    bot.advance_to(closes + timedelta(minutes=10))
    await bot.restart()
    bot.advance_to(closes + timedelta(minutes=20))
    results = await command(cora, office, bot, "!consult results K1", "groups answered")
    assert results["content"]["body"].startswith(f'K1 "{QUESTION}" (closed ')
    await cora.sync()
    closed_dms = [e for e in cora.events if e.get("room_id") == dm
                  and "has closed" in str(e.get("content", {}).get("body"))]
    assert len(closed_dms) == 1
    async with bot.app.db.transaction() as session:
        poll = await consult.poll(session, 1)
        assert poll is not None and poll.closed_at == closes
