"""The adoption report: the counting rules on plain rows, then !report adoption in chat."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.features import adoption
from bot.features.adoption import (
    ACTIVE,
    COLLABS,
    DELIVERED,
    ENGAGED,
    FILLED,
    INTRODUCTIONS,
    REGISTERED,
    VERIFIED,
    band,
    build,
    months_between,
    render_csv,
    render_text,
    shown,
)
from bot.ratelimit import RateLimiter
from config.areas import AreaIndex
from storage.activity import CommandDay
from storage.adoption import GroupRow, Rows
from storage.groups import Group
from storage.models import OutboxMessage
from tests.botworld import BotWorld, bot_world

AREAS = AreaIndex.load()
LONDON = ZoneInfo("Europe/London")
FENLAND, CAMBRIDGE = "E07000010", "E07000008"
WISBECH, MARCH, ABBEY = "E04001668", "E04001661", "E05013050"  # IMD deciles 3, 4, 4
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
OCT = datetime(2026, 10, 10, 9, tzinfo=UTC)
NOV = datetime(2026, 11, 5, 9, tzinfo=UTC)


def test_counts_under_five_are_never_shown_zero_included() -> None:
    assert [shown(n) for n in (0, 1, 4, 5, 1234)] == ["<5", "<5", "<5", "5", "1,234"]


def test_imd_deciles_fall_into_fifths_and_months_run_over_year_ends() -> None:
    assert [band(d) for d in (1, 2, 3, 10, None)] == ["1-2", "1-2", "3-4", "9-10", "unknown"]
    assert months_between(date(2025, 11, 30), date(2026, 2, 1)) == [
        (2025, 11), (2025, 12), (2026, 1), (2026, 2)]
    assert adoption.default_period(date(2026, 3, 15)) == (date(2025, 4, 1), date(2026, 3, 15))


def rows(n_wisbech: int = 6) -> Rows:
    """``n_wisbech`` groups in Wisbech registered in October (verified in November), one in
    March and one in Cambridge; their rooms ran commands and engaged with notice F1."""
    groups = [GroupRow(i, WISBECH, f"!w{i}", "whatsapp" if i % 2 else None, OCT,
                       NOV if i > 0 else None, None) for i in range(n_wisbech)]
    groups += [GroupRow(100, MARCH, "!m", "telegram", NOV, None, None),
               GroupRow(200, ABBEY, "!a", None, NOV, NOV, None)]
    return Rows(
        groups=groups,
        command_days=[(f"!w{i}", OCT.date(), OCT) for i in range(n_wisbech)]
        + [("!m", NOW.date(), NOW - timedelta(days=1)), ("!dm", NOW.date(), NOW)],
        engagements=[("!w0", 1, NOV), ("!w0", 1, NOV + timedelta(hours=1)), ("!a", 1, NOV)],
        deliveries=[(f"!w{i}", 1, NOV) for i in range(n_wisbech)] + [("!a", 1, NOV)],
        introductions=[(0, NOV), (100, NOV)],
        filled=[(100, NOV)],
        collabs=[((0, 100), NOV), ((0, 1), OCT - timedelta(days=60))],
    )


def report(r: Rows, area: str = "E10000003") -> adoption.Report:
    return build(r, AREAS, area, date(2026, 10, 1), date(2026, 11, 30), NOW, LONDON)


def test_each_thing_counts_once_in_its_month_and_in_its_district_and_band() -> None:
    rep = report(rows())
    oct_, nov = (2026, 10), (2026, 11)
    fen = (FENLAND, "3-4")
    assert rep.totals[(oct_, REGISTERED)] == 6 and rep.totals[(nov, REGISTERED)] == 2
    assert rep.totals[(nov, VERIFIED)] == 6  # five in Wisbech and the Cambridge one
    assert rep.cells[(oct_, fen, REGISTERED)] == 6 and rep.cells[(nov, fen, REGISTERED)] == 1
    assert rep.totals[(oct_, ACTIVE)] == 6  # commands; the DM room belongs to no group
    assert rep.totals[(nov, ACTIVE)] == 3  # !w0 and !a engaged (twice counts once), !m ran one
    assert rep.totals[(nov, DELIVERED)] == 7 and rep.totals[(nov, ENGAGED)] == 2
    assert rep.totals[(nov, INTRODUCTIONS)] == 2 and rep.totals[(nov, FILLED)] == 1
    # The collaboration from August is outside the period; the other counts once.
    assert rep.period_totals[COLLABS] == 1
    # In the 30 days to NOW: March ran a command, !w0 and Cambridge engaged; October is out.
    assert sum(rep.active_recent.values()) == 3


def test_an_area_keeps_only_its_own_groups() -> None:
    rep = report(rows(), area=CAMBRIDGE)
    assert rep.period_totals[REGISTERED] == 1 and rep.places == [(CAMBRIDGE, "3-4")]
    assert rep.period_totals[COLLABS] == 0 and rep.period_totals[INTRODUCTIONS] == 0


def test_the_csv_writes_every_cell_suppressed_so_no_zero_gives_itself_away() -> None:
    rep = report(rows())
    table = list(csv.DictReader(io.StringIO(render_csv(rep, AREAS).decode())))
    monthly = [r for r in table if r["period"] in ("2026-10", "2026-11")]
    assert len(monthly) == 2 * len(adoption.MEASURES) * (1 + len(rep.places))
    assert {r["count"] for r in monthly} == {"<5", "5", "6", "7"}
    total = {(r["period"], r["measure"]): r["count"] for r in monthly if r["district"] == "all"}
    assert total[("2026-10", REGISTERED)] == "6" and total[("2026-11", REGISTERED)] == "<5"
    nets = {r["measure"]: r["count"] for r in table
            if r["period"].startswith("at ") and r["district"] == "all"}
    assert nets == {"group rooms on Matrix": "<5", "group rooms on WhatsApp": "<5",
                    "group rooms on Telegram": "<5"}


def test_the_text_fits_a_chat_and_shows_no_small_count() -> None:
    text = render_text(report(rows(12)), AREAS)
    assert len(text.splitlines()) <= 12
    assert "Groups registered 14, verified 12; rooms active 14." in text
    assert "Group rooms by network: Matrix 7, WhatsApp 6, Telegram <5." in text
    assert "Fenland: registered 13," in text


# -- in chat ---------------------------------------------------------------------------------

ANN, CORA = "@ann:grapevine.local", "@cora:grapevine.local"


@pytest.fixture
async def town(tmp_path: Path) -> AsyncIterator[tuple[BotWorld, str]]:
    async with bot_world(tmp_path, roles={"coordinators": [CORA]}) as bw:
        bw.world.user("ann", "Ann")
        bw.world.user("cora", "Cora")
        bw.app.limiter = RateLimiter(10_000)
        room = bw.world.create_room(ANN, name="Wisbech Food Bank", members=[CORA])
        await bw.world.join(bw.bot, room)
        async with bw.app.db.transaction() as session:
            session.add(Group(room_id=room, name="Wisbech Food Bank", type="charity",
                              area_code=WISBECH, themes=["food"], size="small",
                              registered_by=ANN, registered_at=bw.clock.now()))
        await bw.deliver()
        yield bw, room


async def files(bw: BotWorld) -> list[OutboxMessage]:
    async with bw.app.db.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.file_data.is_not(None)).order_by(OutboxMessage.id)))


async def test_a_command_in_a_group_room_marks_it_active_for_the_day(
        town: tuple[BotWorld, str]) -> None:
    bw, room = town
    await bw.say(ANN, room, "!help")
    await bw.say(ANN, room, "!directory")
    dm = await bw.transport.direct_room(ANN)
    await bw.say(ANN, dm, "!help")
    async with bw.app.db.transaction() as session:
        days = list(await session.scalars(select(CommandDay)))
    assert [(d.room_id, d.day, d.commands) for d in days] == [
        (room, bw.clock.now().astimezone(LONDON).date().isoformat(), 2)]


async def test_a_coordinator_gets_text_a_chart_and_a_csv(town: tuple[BotWorld, str]) -> None:
    bw, room = town
    await bw.say(ANN, room, "!help")
    dm = await bw.transport.direct_room(CORA)
    await bw.world.say(CORA, dm, "!report adoption area=fenland")
    png, data = await files(bw)  # read before sending: a DM's file is blanked once sent
    await bw.deliver()
    text, csv_line = bw.world.messages(dm, sender=bw.bot)[-2:]
    assert text.startswith("Adoption in Fenland")
    assert "Rooms active in the last 30 days: <5." in text
    assert csv_line.startswith("The figures month by month")
    assert png.file_mime == "image/png" and (png.file_data or b"").startswith(b"\x89PNG")
    assert data.file_mime == "text/csv" and data.file_name is not None
    table = list(csv.DictReader(io.StringIO((data.file_data or b"").decode())))
    month = bw.clock.now().astimezone(LONDON).strftime("%Y-%m")
    assert {r["count"] for r in table if r["period"] == month} == {"<5"}
    assert len({r["period"] for r in table}) == 12 + 2


async def test_bad_input_and_non_coordinators_are_refused(town: tuple[BotWorld, str]) -> None:
    bw, room = town
    assert "coordinator" in (await bw.say(ANN, room, "!report adoption"))[0]
    dm = await bw.transport.direct_room(CORA)
    for options, refusal in (
            ("from=2026-06-01 to=2026-01-01", "from= (01 Jun 2026) comes after to= (01 Jan 2026)"),
            ("from=2020-01-01 to=2026-01-01", "At most 36 months"),
            ("area=narnia", "area: 'narnia' is not an area I know")):
        [answer] = await bw.say(CORA, dm, f"!report adoption {options}")
        assert answer.startswith(refusal), answer
    assert await files(bw) == []
