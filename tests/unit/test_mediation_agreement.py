"""The written agreement as the parties read it: chat summary, Markdown file and PDF."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from bot.features.agreement import (
    ActionView,
    AgreementView,
    Confirmed,
    NormView,
    SessionView,
    markdown,
    pdf,
    summary_text,
)

LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # 10:00 in London (summer time)


def a_view(norms: int = 2, closed: bool = False) -> AgreementView:
    return AgreementView(
        ref="M4", title="Shared hall", parties=("Food Bank (G1)", "Youth Club (G2)"),
        mediator="@mia:example.org", opened_at=T0,
        closed_at=T0 + timedelta(days=30) if closed else None,
        outcome="agreement" if closed else None,
        sessions=(SessionView(1, T0, T0 + timedelta(hours=1), ("@ann:example.org",)),),
        norms=tuple(
            NormView(f"N{i}", f"Norm number {i}: “we’ll talk first” — café Ŵ",
                     confirmed=(Confirmed("Food Bank (G1)", "@ann:example.org", T0),),
                     waiting_for=() if i == 1 else ("Youth Club (G2)",))
            for i in range(1, norms + 1)
        ),
        actions=(ActionView("A1", "@ann:example.org", "share the calendar", date(2026, 7, 8),
                            None),),
    )


def test_the_chat_summary_stays_short_however_many_norms() -> None:
    text = summary_text(a_view(norms=20), LONDON)
    assert len(text.splitlines()) <= 12
    assert "... and 14 more in the file." in text
    assert "Agreed: 1 of 20 norms. Actions: 0 done, 1 open." in text


def test_the_markdown_says_who_confirmed_what_for_which_group_and_when() -> None:
    text = markdown(a_view(), LONDON)
    assert text.startswith("# Mediation agreement M4: Shared hall")
    assert "not legally binding" in text
    assert "N1. Norm number 1: “we’ll talk first” — café Ŵ (agreed by all parties)" in text
    assert "N2. Norm number 2" in text and "(waiting for Youth Club (G2))" in text
    assert "confirmed for Food Bank (G1) by @ann:example.org, 1 Jul 2026 10:00" in text
    assert "- A1: share the calendar (@ann:example.org; due 8 Jul 2026)" in text
    assert "- Session 1: 1 Jul 2026 10:00 to 11:00; attended: @ann:example.org" in text


def test_a_closed_case_shows_its_outcome() -> None:
    assert "status: closed 31 Jul 2026, outcome: agreement" in markdown(a_view(closed=True),
                                                                       LONDON)


def test_the_pdf_is_a_real_pdf_carrying_the_text_phones_type() -> None:
    data = pdf(a_view(norms=40), LONDON)
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2  # long agreements flow onto more pages
    assert "Mediation agreement M4: Shared hall" in text
    assert "café Ŵ" in text and "we’ll talk first" in text
