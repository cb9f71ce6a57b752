"""Mediation between two groups, as the people involved meet it in chat (in-process world)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pypdf import PdfReader
from sqlalchemy import func, select

from bot.features import mediation, sealing
from bot.features.case_rooms import case_rooms, provision_rooms
from bot.runtime.outbox_worker import OutboxWorker
from bot.transport.base import RoomSpec, TransportError
from bot.transport.world import WorldTransport
from config.settings import Settings, load_settings
from storage import mediation as cases
from storage.groups import Group
from storage.models import OutboxMessage
from tests.at_rest import stored_bytes
from tests.botworld import BotWorld, bot_world

BOT = "@grapevine:grapevine.local"
KEY = Fernet.generate_key().decode()


@dataclass
class Town:
    bw: BotWorld
    cora: str  # coordinator
    mia: str  # mediator
    ann: str  # admin of the food bank's room
    ben: str  # member of the food bank, not an admin
    yan: str  # admin of the youth club's room
    zoe: str  # member of neither group
    food_room: str
    youth_room: str
    cora_dm: str


async def _group(bw: BotWorld, room_id: str, name: str, by: str) -> int:
    async with bw.app.db.transaction() as session:
        group = Group(room_id=room_id, name=name, type="community-group", area_code="E04001668",
                      themes=[], size="small", registered_by=by,
                      registered_at=bw.clock.now())
        session.add(group)
        await session.flush()
        return group.id


async def make_town(bw: BotWorld) -> Town:
    w = bw.world
    cora, mia, ann, ben, yan, zoe = (w.user(n, n.title()) for n in
                                     ("cora", "mia", "ann", "ben", "yan", "zoe"))
    food = w.create_room(ann, name="Wisbech Food Bank", members=[ben, zoe])
    youth = w.create_room(yan, name="Wisbech Youth Club", members=[zoe])
    for room in (food, youth):
        await w.join(bw.bot, room)
    assert await _group(bw, food, "Wisbech Food Bank", ann) == 1
    assert await _group(bw, youth, "Wisbech Youth Club", yan) == 2
    dm = w.create_room(cora, direct=True, members=[bw.bot])
    await bw.deliver()
    return Town(bw, cora, mia, ann, ben, yan, zoe, food, youth, dm)


def dm_room(bw: BotWorld, user: str) -> str:
    for room in bw.world.rooms.values():
        if room.direct and set(room.members()) == {bw.bot, user}:
            return room.room_id
    return bw.world.create_room(user, direct=True, members=[bw.bot])


def town_settings(tmp_path: Path) -> Settings:
    return load_settings(
        None, bot={"data_dir": str(tmp_path), "commands_per_minute": 1000},
        matrix={"user_id": BOT}, roles={"coordinators": ["@cora:grapevine.local"]},
        privacy={"notes_key": KEY, "notes_retention_days": 90},
    )


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[Town]:
    async with bot_world(tmp_path, settings=town_settings(tmp_path)) as bw:
        yield await make_town(bw)


async def open_case(t: Town) -> tuple[int, str]:
    """Cora opens M1 between the two groups with Mia mediating; everyone invited joins."""
    await t.bw.say(t.cora, t.cora_dm, '!mediation open title="Shared hall" groups=G1,G2 '
                   "mediator=@mia:grapevine.local")
    await rooms_made(t.bw)
    async with t.bw.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.room_id is not None
        room = case.room_id
    for person in (t.mia, t.ann, t.yan):
        await t.bw.world.join(person, room)
    return 1, room


async def rooms_made(bw: BotWorld) -> None:
    """Case rooms are made after the opening command commits; wait for that, then deliver."""
    await case_rooms(bw.app).idle()
    await bw.deliver()


async def count(bw: BotWorld, model: type) -> int:
    async with bw.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_case_from_open_to_close_with_both_parties_confirming(town: Town) -> None:
    t, bw = town, town.bw
    await bw.say(t.cora, t.cora_dm, '!mediation open title="Shared hall" groups=G1,G2 '
                 "mediator=@mia:grapevine.local")
    await rooms_made(bw)
    opened, ready = bw.dms(t.cora)[-2:]
    assert opened.startswith("M1 opened: Shared hall. Parties: Wisbech Food Bank (G1), "
                             "Wisbech Youth Club (G2).")
    assert "will invite @ann:grapevine.local, @mia:grapevine.local, @yan:grapevine.local" \
        in opened
    assert ready.startswith("M1's private room is ready; invited: @ann:grapevine.local, "
                            "@mia:grapevine.local, @yan:grapevine.local.")
    assert "It does not federate" in ready
    async with bw.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.room_id is not None
        room = case.room_id
    state = bw.world.room(room).state
    assert state[("m.room.join_rules", "")]["content"]["join_rule"] == "invite"
    assert set(bw.world.room(room).members("invite")) == {t.ann, t.mia, t.yan}
    # The introduction waits for the first person in, so it reaches their server live.
    assert bw.world.messages(room, sender=bw.bot) == []
    for person in (t.mia, t.ann, t.yan):
        await bw.world.join(person, room)
    await bw.deliver()
    assert "Only the people invited here can join" in bw.world.messages(room, sender=bw.bot)[0]

    [started] = await bw.say(t.mia, room, "!mediation session start")
    assert started.startswith("Session 1 started at 10:00. Present: ")
    [proposed] = await bw.say(t.mia, room, '!mediation agree "We book the hall a month ahead"')
    assert proposed.startswith("N1 proposed: We book the hall a month ahead")
    [first] = await bw.say(t.ann, room, "!mediation confirm N1")
    assert first.startswith("N1 confirmed for Wisbech Food Bank (G1) by @ann:grapevine.local")
    assert first.endswith("Still waiting for: Wisbech Youth Club (G2).")
    bw.clock.advance(minutes=5)
    [second] = await bw.say(t.yan, room, "!mediation confirm n1.")
    assert second.endswith("N1 is now agreed by all parties.")
    [act] = await bw.say(t.mia, room, '!mediation action Ann "share the booking calendar" '
                         "due=2026-11-27")
    assert act.startswith("A1: @ann:grapevine.local will share the booking calendar (due 27 Nov")
    bw.clock.advance(minutes=55)
    [ended] = await bw.say(t.mia, room, "!mediation session end")
    assert ended.startswith("Session 1 ended after 1h 00m.")
    [marked] = await bw.say(t.ann, room, "!mediation done A1")
    assert marked == "A1 done: share the booking calendar."

    text, md_name, pdf_name = await bw.say(t.yan, room, "!mediation summary")
    assert "N1 We book the hall a month ahead (agreed)" in text
    assert "Agreed: 1 of 1 norms. Actions: 1 done, 0 open." in text
    assert (md_name, pdf_name) == ("mediation-M1-agreement.md", "mediation-M1-agreement.pdf")
    async with bw.app.db.transaction() as session:
        files = {r.file_name: r.file_data for r in await session.scalars(
            select(OutboxMessage).where(OutboxMessage.file_name.is_not(None)))}
    markdown = (files["mediation-M1-agreement.md"] or b"").decode()
    assert "confirmed for Wisbech Food Bank (G1) by @ann:grapevine.local, 20 Nov 2026 10:00" \
        in markdown
    assert "confirmed for Wisbech Youth Club (G2) by @yan:grapevine.local, 20 Nov 2026 10:05" \
        in markdown
    pdf_text = PdfReader(io.BytesIO(files["mediation-M1-agreement.pdf"] or b"")).pages[0]
    assert "We book the hall a month ahead" in pdf_text.extract_text()

    [closed] = await bw.say(t.mia, room, "!mediation close outcome=agreement")
    assert closed.startswith("M1 closed: agreement.")
    assert "notes will be deleted on 18 Feb 2027" in closed
    [after] = await bw.say(t.ann, room, '!mediation agree "one more thing"')
    assert after.startswith("M1 is closed (agreement)")
    await bw.say(t.cora, t.cora_dm, "!mediation")
    assert bw.dms(t.cora)[-1] == "M1 Shared hall (closed, agreement)"


async def test_an_outsider_cannot_tell_a_case_from_one_that_does_not_exist(town: Town) -> None:
    t, bw = town, town.bw
    _, room = await open_case(t)
    zoe_dm = dm_room(bw, t.zoe)
    replies = {}
    for command in ("!mediation summary M1", "!mediation summary M99", "!mediation notes M1",
                    "!mediation notes M99", '!mediation note M1 "x"', '!mediation note M99 "x"'):
        await bw.say(t.zoe, zoe_dm, command)
        replies[command] = bw.dms(t.zoe)[-1]
    assert replies["!mediation summary M1"] == replies["!mediation summary M99"].replace(
        "M99", "M1")
    assert replies["!mediation notes M1"] == replies["!mediation notes M99"].replace("M99", "M1")
    assert replies['!mediation note M1 "x"'] == replies['!mediation note M99 "x"'].replace(
        "M99", "M1")
    assert replies["!mediation summary M1"] == (
        "M1 not found. !mediation lists the cases you can see.")
    await bw.say(t.zoe, zoe_dm, "!mediation")
    assert bw.dms(t.zoe)[-1] == "There are no mediation cases you can see."
    # Ben is in the food bank but not an admin: a member, not a representative.
    ben_dm = dm_room(bw, t.ben)
    await bw.say(t.ben, ben_dm, "!mediation summary M1")
    assert bw.dms(t.ben)[-1] == "M1 not found. !mediation lists the cases you can see."
    assert t.zoe not in bw.world.room(room).members("invite")
    assert t.ben not in bw.world.room(room).members("invite")
    # Nothing of the case leaked into the group rooms.
    for group_room in (t.food_room, t.youth_room):
        assert not any("Shared hall" in m for m in bw.world.messages(group_room))


async def test_a_representative_gets_the_agreement_by_dm_when_asking_from_the_group_room(
    town: Town,
) -> None:
    t, bw = town, town.bw
    await open_case(t)
    replies = await bw.say(t.ann, t.food_room, "!mediation summary M1")
    assert replies == ["I've sent you a direct message."]
    assert bw.dms(t.ann)[0].startswith("M1 Shared hall (open)")


async def held_at_rest(bw: BotWorld, marker: str) -> bool:
    return marker.encode() in await stored_bytes(bw.app.db)


class Refusing(WorldTransport):
    """A homeserver that will not take the bot's direct message (the room is gone)."""

    async def send(self, room_id: str, content: object, **kw: object) -> str:
        raise TransportError("M_FORBIDDEN", "You are not in this room")


async def test_notes_read_back_are_never_in_clear_at_rest_pending_or_failed(
    tmp_path: Path, db_url: str,
) -> None:
    async with bot_world(tmp_path, settings=town_settings(tmp_path), db_url=db_url) as bw:
        t = await make_town(bw)
        await open_case(t)
        mia_dm = dm_room(bw, t.mia)
        await bw.say(t.mia, mia_dm, '!mediation note M1 "Hall keys NOTE-MARKER-5523"')
        await bw.world.say(t.mia, mia_dm, "!mediation notes M1")  # queued, not yet sent
        async with bw.app.db.transaction() as session:
            pending = await session.scalar(select(OutboxMessage).where(
                OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id.desc()))
        assert pending is not None
        assert not await held_at_rest(bw, "NOTE-MARKER-5523")
        assert not await held_at_rest(bw, "Hall keys")
        assert pending.kind == "sealed"

        worker = OutboxWorker(bw.app.db, Refusing(bw.world, bw.bot), bw.clock,
                              opener=sealing.opener(bw.app.settings.privacy.notes_key))
        await worker.drain()
        async with bw.app.db.transaction() as session:
            failed = await session.get(OutboxMessage, pending.id)
            assert failed is not None and failed.failed_at is not None
        assert not await held_at_rest(bw, "NOTE-MARKER-5523")

        # The same read-back, sent: it arrives opened, and only there.
        await bw.say(t.mia, mia_dm, "!mediation notes M1")
        assert "Hall keys NOTE-MARKER-5523" in bw.dms(t.mia)[-1]
        assert not await held_at_rest(bw, "NOTE-MARKER-5523")


async def test_notes_are_taken_by_dm_sealed_and_read_back_only_by_mediator_and_coordinator(
    town: Town,
) -> None:
    t, bw = town, town.bw
    _, room = await open_case(t)
    mia_dm = dm_room(bw, t.mia)
    await bw.say(t.mia, mia_dm, '!mediation note M1 "Ann worried about keys MARKER-7731"')
    assert bw.dms(t.mia)[-1].startswith("Note 1 on M1 kept, encrypted")
    # The command itself is redacted once stored.
    assert not any("MARKER-7731" in m for m in bw.world.messages(mia_dm))
    async with bw.app.db.transaction() as session:
        [note] = await cases.notes(session, 1)
        assert b"MARKER-7731" not in note.sealed
    await bw.say(t.mia, mia_dm, "!mediation notes M1")
    assert "Ann worried about keys MARKER-7731" in bw.dms(t.mia)[-1]
    await bw.say(t.cora, t.cora_dm, "!mediation notes M1")
    assert "MARKER-7731" in bw.dms(t.cora)[-1]
    # The bot's own copies of what it read back were sealed, and are blanked once sent.
    async with bw.app.db.transaction() as session:
        bodies = await session.scalars(select(OutboxMessage.body))
        assert not any("MARKER-7731" in body for body in bodies)
    database = Path(bw.app.db.url.removeprefix("sqlite+aiosqlite:///"))
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert b"MARKER-7731" not in raw and b"Ann worried" not in raw
    ann_dm = dm_room(bw, t.ann)
    await bw.say(t.ann, ann_dm, "!mediation notes M1")
    assert bw.dms(t.ann)[-1] == "Only M1's mediator and coordinators can read its notes."
    # In the case room a note is refused, removed, and never echoed there.
    before = len(bw.world.messages(room))
    await bw.say(t.mia, room, '!mediation note M1 "SECRET-2"')
    assert not any("SECRET-2" in m for m in bw.world.messages(room))
    assert "only in a direct message" in bw.dms(t.mia)[-1]
    assert len(bw.world.messages(room)) <= before + 1
    async with bw.app.db.transaction() as session:
        assert len(await cases.notes(session, 1)) == 1


async def test_without_a_notes_key_note_taking_is_refused_with_what_to_set(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None, bot={"data_dir": str(tmp_path), "commands_per_minute": 1000},
        matrix={"user_id": BOT}, roles={"coordinators": ["@cora:grapevine.local"]},
    )
    async with bot_world(tmp_path, settings=settings) as bw:
        t = await make_town(bw)
        await open_case(t)
        mia_dm = dm_room(bw, t.mia)
        await bw.say(t.mia, mia_dm, '!mediation note M1 "anything"')
        assert "GRAPEVINE_PRIVACY__NOTES_KEY" in bw.dms(t.mia)[-1]
        assert await count(bw, cases.Note) == 0


async def test_retention_deletes_notes_after_close_and_keeps_the_agreement(town: Town) -> None:
    t, bw = town, town.bw
    _, room = await open_case(t)
    mia_dm = dm_room(bw, t.mia)
    await bw.say(t.mia, mia_dm, '!mediation note M1 "private"')
    await bw.say(t.mia, room, '!mediation agree "Be kind"')
    await bw.say(t.mia, room, "!mediation close outcome=no-agreement")
    bw.clock.advance(days=89)
    assert await mediation.purge_notes(bw.app, bw.clock.now()) == 0
    bw.clock.advance(days=1, minutes=1)
    assert await mediation.purge_notes(bw.app, bw.clock.now()) == 1
    assert await count(bw, cases.Note) == 0
    assert await count(bw, cases.Norm) == 1
    await bw.say(t.mia, mia_dm, "!mediation notes M1")
    assert bw.dms(t.mia)[-1].startswith("M1's notes were deleted on 18 Feb 2027")
    [text, _, _] = await bw.say(t.ann, room, "!mediation summary")
    assert "N1 Be kind" in text


async def test_action_reminders_go_once_before_and_once_after_the_due_date(town: Town) -> None:
    t, bw = town, town.bw
    _, room = await open_case(t)
    await bw.say(t.mia, room, '!mediation action @yan:grapevine.local "send the keys" due=+3d')
    assert await mediation.remind(bw.app, bw.clock.now()) == 0
    bw.clock.advance(days=1, hours=20)  # 06:00 the day before: people are asleep
    assert await mediation.remind(bw.app, bw.clock.now()) == 0
    bw.clock.advance(hours=4)
    assert await mediation.remind(bw.app, bw.clock.now()) == 1
    assert await mediation.remind(bw.app, bw.clock.now()) == 0  # a second sweep: nothing new
    await bw.deliver()
    assert bw.world.messages(room)[-1].startswith(
        "Reminder: A1 (M1) for @yan:grapevine.local is due tomorrow: send the keys.")
    # The bot was down over the due date: the sweep catches up with one overdue notice.
    bw.clock.advance(days=5)
    assert await mediation.remind(bw.app, bw.clock.now()) == 1
    assert await mediation.remind(bw.app, bw.clock.now()) == 0
    await bw.deliver()
    assert "was due on 23 Nov 2026 and isn't marked done" in bw.world.messages(room)[-1]
    ids = {job.id for job in mediation.jobs(bw.app)}
    assert ids == {"mediation-reminders", "mediation-notes-retention", "mediation-rooms"}


@pytest.mark.parametrize(("who", "command", "expected"), [
    ("cora", '!mediation open title="X" groups=G1 mediator=@mia:grapevine.local',
     "A case needs at least two groups: groups=G3,G7."),
    ("cora", '!mediation open title="X" groups=G1,G9 mediator=@mia:grapevine.local',
     "There is no group G9; nothing was opened."),
    ("zoe", '!mediation open title="X" groups=G1,G2 mediator=@mia:grapevine.local',
     "!mediation open needs"),
])
async def test_bad_openings_get_a_clear_reply_and_open_nothing(
    town: Town, who: str, command: str, expected: str,
) -> None:
    bw = town.bw
    user = getattr(town, who)
    dm = dm_room(bw, user)
    rooms_before = len(bw.world.rooms)
    await bw.say(user, dm, command)
    assert bw.dms(user)[-1].startswith(expected)
    assert await count(bw, cases.Case) == 0
    assert len(bw.world.rooms) == rooms_before  # no case room was made


async def test_bad_inputs_in_the_case_room_get_a_clear_reply_and_change_nothing(
    town: Town,
) -> None:
    t, bw = town, town.bw
    _, room = await open_case(t)
    await bw.say(t.mia, room, '!mediation agree "Be kind"')
    checks = [
        (t.ann, "!mediation confirm N7", "M1 has no N7; !mediation summary lists its norms."),
        (t.mia, "!mediation confirm N1", "Only an admin of G1 or G2's own room can confirm"),
        (t.ann, "!mediation session start",
         "Only M1's mediator (@mia:grapevine.local) or a coordinator can start a session."),
        (t.mia, "!mediation session end", "No session is running"),
        (t.mia, '!mediation action Ann "x" due=2026-11-01', "due=2026-11-01 is in the past"),
        (t.mia, "!mediation done A4", "M1 has no A4"),
        (t.ann, "!mediation close outcome=agreement", "Only M1's mediator"),
        (t.mia, "!mediation close outcome=maybe", "outcome: should be one of agreement"),
    ]
    for person, command, expected in checks:
        [reply] = await bw.say(person, room, command)
        assert reply.startswith(expected), (command, reply)
    await bw.say(t.ann, room, "!mediation confirm N1")
    [again] = await bw.say(t.ann, room, "!mediation confirm N1")
    assert again == "N1 was already confirmed for Wisbech Food Bank; nothing changed."
    async with bw.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.is_open
        assert len(await cases.confirmations(session, 1)) == 1
        assert await cases.actions(session, 1) == []
        assert await cases.sessions(session, 1) == []
    [elsewhere] = await bw.say(t.ann, t.food_room, "!mediation agree \"x\"")
    assert elsewhere.startswith("This isn't a mediation case room.")


async def test_a_failed_room_creation_is_told_honestly_and_retried(
    town: Town, monkeypatch: pytest.MonkeyPatch,
) -> None:
    t, bw = town, town.bw
    real = bw.transport.create_room

    async def refuse(spec: object) -> str:
        raise TransportError("M_LIMIT_EXCEEDED", "slow down", status=429)

    monkeypatch.setattr(bw.transport, "create_room", refuse)
    await bw.say(t.cora, t.cora_dm, '!mediation open title="Hall" groups=G1,G2 '
                 "mediator=@mia:grapevine.local")
    await rooms_made(bw)
    assert bw.dms(t.cora)[-1].startswith(
        "I couldn't create M1's private room yet (M_LIMIT_EXCEEDED). I'll keep trying")
    await bw.say(t.cora, t.cora_dm, "!mediation")
    assert bw.dms(t.cora)[-1] == "M1 Hall (open, room not made yet)"
    monkeypatch.setattr(bw.transport, "create_room", real)
    # The sweep leaves a refused case alone for a while, then makes its room once.
    assert await provision_rooms(bw.app) == 0
    bw.clock.advance(minutes=11)
    assert await provision_rooms(bw.app) == 1
    assert await provision_rooms(bw.app) == 0
    async with bw.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.room_id is not None
    assert set(bw.world.room(case.room_id).members("invite")) == {t.ann, t.mia, t.yan}


async def test_a_room_made_before_a_crash_is_found_again_and_the_missing_invited(
    town: Town,
) -> None:
    t, bw = town, town.bw
    await bw.say(t.cora, t.cora_dm, '!mediation open title="Hall" groups=G1,G2 '
                 "mediator=@mia:grapevine.local")
    await rooms_made(bw)
    async with bw.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.room_id is not None
        made, everyone = case.room_id, sorted(case.to_invite)
        # As if the bot died after making the room, before recording it or any invite.
        case.room_id, case.invited = None, []
    await bw.app.transport.kick(made, t.yan)  # and Yan's invite never went, in effect
    room = bw.world.room(made)
    assert t.yan not in room.members("invite")
    rooms_before = len(bw.world.rooms)

    assert await provision_rooms(bw.app, force=True) == 1
    assert len(bw.world.rooms) == rooms_before  # found again, not made twice
    assert t.yan in room.members("invite")  # the missing party is invited, alone:
    invites = [e for e in room.timeline if e["type"] == "m.room.member"
               and e["content"].get("membership") == "invite"]
    assert sorted(e["state_key"] for e in invites) == sorted([*everyone, t.yan])
    async with bw.app.db.transaction() as session:
        case = await cases.get(session, 1)
        assert case is not None and case.room_id == made
        assert sorted(case.invited) == everyone and case.pending == []


@pytest.mark.parametrize("greeting_sent_first", [False, True])
async def test_the_message_flow_greeting_never_stays_in_a_case_room(
    town: Town, monkeypatch: pytest.MonkeyPatch, greeting_sent_first: bool,
) -> None:
    t, bw = town, town.bw
    real = bw.transport.create_room

    async def create_and_hear_the_join_first(spec: RoomSpec) -> str:
        room_id = await real(spec)
        await bw.app.on_joined(room_id, is_direct=False)  # sync won the race
        if greeting_sent_first:
            await bw.deliver()
        return room_id

    monkeypatch.setattr(bw.transport, "create_room", create_and_hear_the_join_first)
    _, room = await open_case(t)
    await bw.deliver()
    said = bw.world.messages(room, sender=bw.bot)
    assert not any("never what anyone writes" in m for m in said)
    assert said[0].startswith("M1: Shared hall.")


async def test_a_bridge_bot_holding_power_in_a_group_room_is_no_representative(
    town: Town,
) -> None:
    t, bw = town, town.bw
    bridge = bw.world.user("whatsappbot", "WhatsApp bridge")
    await bw.world.join(bridge, t.food_room)
    levels = bw.world.room(t.food_room).state[("m.room.power_levels", "")]["content"]
    levels["users"][bridge] = 100  # a portal room: the bridge bot runs it
    bw.app.ignore_checks.append(lambda user: user == bridge)
    _, room = await open_case(t)
    assert set(bw.world.room(room).members("invite")) | set(bw.world.room(room).members()) == {
        bw.bot, t.ann, t.mia, t.yan}


async def test_a_case_room_is_known_as_one_and_a_group_room_is_not(town: Town) -> None:
    _, room = await open_case(town)
    async with town.bw.app.db.transaction() as session:
        assert await cases.is_case_room(session, room)
        assert not await cases.is_case_room(session, town.food_room)

