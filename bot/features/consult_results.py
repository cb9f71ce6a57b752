"""A consultation's results: counts per option, by district and by network, as text, CSV, chart.

Plain functions over plain data, so every rule is tested without Matrix or a
database. Every count a person sees goes through ``reach.suppress.count`` (under 5
shows as "<5", 0 included), in the text, the CSV and the chart alike, so no small
group's answer can be read off any of them. Comments are shown without names, in
an order that says nothing about who answered when.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reach.suppress import count

ALL = "all"


@dataclass(frozen=True)
class Vote:
    """One answer as results need it: whose kind, which option, where it counts."""

    option: int
    district: str
    network: str
    member: bool = False
    comment: str | None = None


@dataclass
class Tally:
    options: tuple[str, ...]
    asked: int
    members_may: bool
    groups: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    members: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    comments: list[tuple[int, str]] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(n for (by, _, _), n in self.groups.items() if by == ALL)

    def places(self, by: str) -> list[str]:
        """The districts (or networks) that answered, in name order."""
        found = {where for (kind, where, _) in self.groups | self.members if kind == by}
        return sorted(found)


def letter(index: int) -> str:
    return "abcdefghij"[index]


def label(options: Sequence[str], index: int) -> str:
    return f"{letter(index)}) {options[index]}"


def tally(options: Sequence[str], asked: int, members_may: bool, votes: Iterable[Vote]) -> Tally:
    """Count each vote once overall, once in its district and once in its network."""
    result = Tally(tuple(options), asked, members_may)
    for vote in votes:
        counter = result.members if vote.member else result.groups
        for key in ((ALL, ALL), ("district", vote.district), ("network", vote.network)):
            counter[(*key, vote.option)] += 1
        if vote.comment:
            result.comments.append((vote.option, vote.comment))
    result.comments.sort()
    return result


def _per_option(t: Tally, counter: Counter[tuple[str, str, int]], by: str, where: str,
                shown: Callable[[float], str]) -> str:
    return " · ".join(f"{letter(i)} {shown(counter[(by, where, i)])}"
                      for i in range(len(t.options)))


def render(t: Tally, heading: str, max_comments: int = 10) -> str:
    """The text answer: totals, a line per district and per network, then comments."""
    shown = count
    lines = [f"{heading}: {shown(t.answered)} of {shown(t.asked)} groups answered.",
             "Options: " + " · ".join(label(t.options, i) for i in range(len(t.options))),
             "Groups: " + _per_option(t, t.groups, ALL, ALL, shown)]
    if t.members_may:
        lines.append("Members' own views: " + _per_option(t, t.members, ALL, ALL, shown))
    for by, title in (("district", "By district"), ("network", "By network")):
        lines.append(f"{title}:")
        lines += [f"  {where}: " + _per_option(t, t.groups, by, where, shown)
                  for where in t.places(by)]
    if t.comments:
        lines.append("Comments (no names):")
        lines += [f"  ({letter(i)}) {text}" for i, text in t.comments[:max_comments]]
        if len(t.comments) > max_comments:
            lines.append(f"  ... and {len(t.comments) - max_comments} more in the CSV.")
    return "\n".join(lines)


CSV_HEADER = ("poll", "breakdown", "where", "option", "groups", "members")


def csv_bytes(t: Tally, ref: str) -> bytes:
    """One row per breakdown, place and option (counts under 5 as "<5"), then the comments.

    ``members`` is empty when the poll did not ask for members' own views.
    """
    shown = count
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for by in (ALL, "district", "network"):
        for where in [ALL] if by == ALL else t.places(by):
            for i in range(len(t.options)):
                members = shown(t.members[(by, where, i)]) if t.members_may else ""
                writer.writerow((ref, by, where, label(t.options, i),
                                 shown(t.groups[(by, where, i)]), members))
    for i, text in t.comments:
        writer.writerow((ref, "comment", "", label(t.options, i), "", text))
    return out.getvalue().encode()


def chart_png(t: Tally, title: str) -> bytes:
    """Bars of group answers per option, by district and by network; under 5 in a grey band.

    A small count is drawn at 2.5 inside the band, never at its value. matplotlib is
    imported here, on the Agg canvas, so a bot never asked for results never loads it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    small = 5

    def masked(n: int) -> float:
        return small / 2 if n < small else float(n)

    panels = [(by, t.places(by)) for by in ("district", "network")]
    fig = Figure(figsize=(7, 2.5 + 0.45 * sum(max(len(p), 1) for _, p in panels)))
    FigureCanvasAgg(fig)
    width = 0.8 / max(len(t.options), 1)
    for row, (by, places) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, row)
        ax.axvspan(0, small, color="#eeeeee", zorder=0, label="<5 (not shown exactly)")
        for i in range(len(t.options)):
            ys = [k + i * width for k in range(len(places))]
            ax.barh(ys, [masked(t.groups[(by, p, i)]) for p in places], height=width,
                    label=label(t.options, i))
        ax.set_yticks([k + 0.4 - width / 2 for k in range(len(places))], places)
        ax.set_xlim(left=0)
        ax.set_title(f"{title}: groups' answers by {by}", fontsize="medium")
        if row == 1:
            ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
