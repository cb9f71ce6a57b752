"""!report adoption: the evidence the council asked for, as text, a chart and a CSV.

Coordinators only. The rows are read and counted in the command's transaction
(one read per table, plain arithmetic); the chart (matplotlib, imported only
here and only when asked) is drawn after it commits, in a thread, so nobody
else waits for it. "The last 30 days" is the bot's clock, never the machine's.
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
    report = adoption.build(await rows_of.load(ctx.session), areas, area, first, last,
                            ctx.now, ctx.tz)
    text = adoption.render_text(report, areas, ctx.prefix)
    data = adoption.render_csv(report, areas)
    series = adoption.monthly_series(report)
    months = [adoption.label(m) for m in report.months]
    name = f"adoption-{area}-{months[0]}-to-{months[-1]}"
    log.info("adoption report for %s, %s to %s", area, months[0], months[-1])

    async def job(out: Outside) -> None:
        from reach import charts

        title = f"Adoption in {areas.label(area)}"
        png = await out.thread(lambda: charts.monthly_counts(months, series, title))
        out.reply(text, attachment=Attachment(f"{name}.png", "image/png", png))
        out.reply("The figures month by month, per district and IMD band:",
                  attachment=Attachment(f"{name}.csv", "text/csv", data))

    ctx.defer(job)
