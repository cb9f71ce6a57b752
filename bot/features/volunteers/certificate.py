"""!volunteer certificate: a person's hours and groups for a year, as a PDF.
"""

from __future__ import annotations

from bot.commands.context import Context
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Where
from bot.commands.values import Integer
from storage import volunteers as store
from storage.outbox import Attachment


def certificate_pdf(person: str, year: int, rows: list[tuple[str, float, int]]) -> bytes:
    """A one-page certificate; core PDF fonts are Latin-1, so other characters become '?'."""
    from fpdf import FPDF

    def latin(text: str) -> str:
        return text.encode("latin-1", "replace").decode("latin-1")

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 14, latin(f"Volunteering certificate {year}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=12)
    total = sum(h for _, h, _ in rows)
    pdf.multi_cell(0, 8, latin(f"{person} gave {total:g} hours as a volunteer in {year}, "
                               "confirmed by the groups below."), new_x="LMARGIN", new_y="NEXT")
    for name, h, shifts in rows:
        pdf.cell(0, 8, latin(f"{name}: {h:g} hours ({shifts} shifts)"),
                 new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@commands.command("volunteer certificate", summary="your hours and groups for a year",
                  where=Where.DM,
                  params=[Param("year", Integer(minimum=2000, maximum=2100), required=False,
                                positional=True)])
async def certificate(ctx: Context, args: Args) -> None:
    year = args.year or ctx.today.year
    rows = await store.hours_in_year(ctx.session, ctx.sender.user_id, year)
    if not rows:
        raise CommandError(f"No confirmed hours in {year} yet; the group's admin confirms them "
                           f"with {ctx.prefix}volunteer hours.")
    total = sum(h for _, h, _ in rows)
    lines = [f"{ctx.sender.user_id}: {total:g} hours volunteering in {year}"]
    lines += [f"{name}: {h:g} hours ({n} shift{'s' if n != 1 else ''})" for name, h, n in rows]
    pdf = certificate_pdf(ctx.sender.user_id, year, rows)
    await ctx.reply("\n".join(lines[:11]) + "\nThe certificate is attached as a PDF.",
                    attachment=Attachment(f"volunteering-{year}.pdf", "application/pdf", pdf))
