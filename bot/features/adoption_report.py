"""!report adoption: the evidence the council asked for, as text, a chart and a CSV.

Coordinators only. The rows are read in the command's transaction (one read per
table); the counting and the chart (matplotlib, imported only here and only when
asked) run after it commits, in a thread, so no one waits on the database or the
event loop for them (a county's year of rows takes seconds: bench/adoption.py).
"The last 30 days" is the bot's clock, never the machine's.
"""

from __future__ import annotations

import logging

from bot.commands.context import Context
from bot.commands.deferred import Outside
from bot.commands.registry import REGISTRY as commands
from bot.commands.registry import Args, CommandError, Param, Role
from bot.commands.values import AreaValue, DateValue
from bot.features import adoption
from storage import adoption as rows_of
from storage.outbox import Attachment

log = logging.getLogger(__name__)


@commands.command(
    "report adoption",
    summary="groups, rooms, networks, activity and what it changed, month by month, "
            "per district and IMD band, with a chart and a CSV (counts under 5 show as <5)",
    roles=[Role.COORDINATOR],
    params=[Param("area", AreaValue(allow_all=True), required=False,
                  help="a district or locality; the whole county by default"),
            Param("from", DateValue(), required=False, help="first month (default: 11 back)"),
            Param("to", DateValue(), required=False, help="last month (default: this one)")],
)
async def report_adoption(ctx: Context, args: Args) -> None:
    first, last = adoption.default_period(ctx.today)
    first, last = args["from"] or first, args.to or last
    if args["from"] is not None and args.to is None and first > last:
        last = first
    if first > last:
        raise CommandError(f"from= ({first:%d %b %Y}) comes after to= ({last:%d %b %Y}); "
                           "give the earlier date as from=.")
    if len(adoption.months_between(first, last)) > adoption.MAX_MONTHS:
        raise CommandError(f"At most {adoption.MAX_MONTHS} months at a time; narrow from= "
                           "and to=.")
    area = args.area or ctx.app.areas.root.code
    areas = ctx.app.areas
    rows = await rows_of.load(ctx.session)
    now, tz, prefix = ctx.now, ctx.tz, ctx.prefix
    first_month = adoption.label((first.year, first.month))
    last_month = adoption.label((last.year, last.month))
    name = f"adoption-{area}-{first_month}-to-{last_month}"
    log.info("adoption report for %s, %s to %s", area, first_month, last_month)

    def work() -> tuple[str, bytes, bytes]:
        from reach import charts

        report = adoption.build(rows, areas, area, first, last, now, tz)
        months = [adoption.label(m) for m in report.months]
        png = charts.monthly_counts(months, adoption.monthly_series(report),
                                    f"Adoption in {areas.label(area)}")
        return (adoption.render_text(report, areas, prefix), png,
                adoption.render_csv(report, areas))

    async def job(out: Outside) -> None:
        text, png, data = await out.thread(work)
        out.reply(text, attachment=Attachment(f"{name}.png", "image/png", png))
        out.reply("The figures month by month, per district and IMD band:",
                  attachment=Attachment(f"{name}.csv", "text/csv", data))

    ctx.defer(job)
