"""A printable notice sheet of open funding for one locality, for parish noticeboards.

For the groups that are not online: one A4 page (or more) a clerk can print
and pin up, listing each notice's fund, funder, amount, deadline and web
address. fpdf2's built-in Helvetica needs Latin-1, so text is transliterated
(curly quotes, dashes) rather than shipping a font file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bridges.notices import Summary, open_in_area, summarise
from config.areas import AreaIndex
from storage import funding

_PLAIN = str.maketrans({
    "‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...",
    "·": "-", "\u00a0": " ", "•": "-",
})
MAX_DESCRIPTION = 400


def latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def build_sheet(area_name: str, notices: Sequence[Summary], made_on: date,
                contact: str = "") -> bytes:
    """The PDF bytes: a heading for the area, then one block per notice."""
    from fpdf import FPDF  # imported when a PDF is made, not at start-up

    pdf = FPDF(format="A4")
    pdf.set_title(latin1(f"Funding open to groups in {area_name}"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(width, 10, latin1(f"Funding open to groups in {area_name}"))
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(width, 6, latin1(f"Funding notices still open on {made_on:%d %B %Y}."))
    pdf.ln(4)
    if not notices:
        pdf.set_font("Helvetica", "", 12)
        pdf.multi_cell(width, 7, "No funding notices are open for this area just now.")
    for notice in notices:
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(width, 7, latin1(f"{notice.ref}  {notice.title}"))
        pdf.set_font("Helvetica", "", 11)
        facts = " - ".join(x for x in (notice.funder, notice.amount, notice.closes) if x)
        pdf.multi_cell(width, 6, latin1(facts))
        if notice.description:
            text = notice.description
            if len(text) > MAX_DESCRIPTION:
                text = text[: MAX_DESCRIPTION - 3].rstrip() + "..."
            pdf.set_font("Helvetica", "", 10)
            pdf.multi_cell(width, 5, latin1(text))
        pdf.set_font("Helvetica", "U", 10)
        pdf.multi_cell(width, 5, latin1(notice.url), link=notice.url)
        pdf.ln(4)
    if contact:
        pdf.set_font("Helvetica", "I", 9)
        pdf.multi_cell(width, 5, latin1(contact))
    return bytes(pdf.output())


@dataclass(frozen=True)
class Sheet:
    area_name: str
    count: int  # open notices on it
    file_name: str
    data: bytes


async def area_sheet(session: AsyncSession, areas: AreaIndex, code: str, now: datetime,
                     tz: ZoneInfo) -> Sheet:
    """The sheet of funding open in one area today, named for printing (``!funding sheet``,
    and the sheet a community hub gets for its locality)."""

    def contains(outer: str, inner: str) -> bool:
        return outer in areas and inner in areas and areas.contains(outer, inner)

    notices = open_in_area(await funding.notices(session, funding.PUBLISHED), code, now, contains)
    name = areas.label(code)
    today = now.astimezone(tz).date()
    data = build_sheet(name, [summarise(n, tz) for n in notices], today)
    slug = "-".join(name.lower().replace("(", "").replace(")", "").split())
    return Sheet(name, len(notices), f"funding-{slug}-{today.isoformat()}.pdf", data)
