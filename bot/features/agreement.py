"""The written agreement of a mediation, as a chat reply, Markdown and PDF.

Pure rendering over plain data, so the wording can be tested without a bot.
The agreement is "not legally binding but a reminder" (community mediation
practice): it says who confirmed each norm for which group, and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Confirmed:
    group: str
    by: str
    at: datetime


@dataclass(frozen=True)
class NormView:
    ref: str
    text: str
    confirmed: tuple[Confirmed, ...] = ()
    waiting_for: tuple[str, ...] = ()  # party names still to confirm

    @property
    def agreed(self) -> bool:
        return not self.waiting_for


@dataclass(frozen=True)
class SessionView:
    number: int
    started_at: datetime
    ended_at: datetime | None
    attendees: tuple[str, ...]


@dataclass(frozen=True)
class ActionView:
    ref: str
    owner: str
    text: str
    due: date
    done_at: datetime | None


@dataclass(frozen=True)
class AgreementView:
    ref: str
    title: str
    parties: tuple[str, ...]  # "Wisbech Food Bank (G3)"
    mediator: str
    opened_at: datetime
    closed_at: datetime | None = None
    outcome: str | None = None
    sessions: tuple[SessionView, ...] = ()
    norms: tuple[NormView, ...] = ()
    actions: tuple[ActionView, ...] = field(default_factory=tuple)


def day(moment: datetime | date, tz: ZoneInfo) -> str:
    if isinstance(moment, datetime):
        moment = moment.astimezone(tz).date()
    return f"{moment.day} {moment:%b %Y}"


def stamp(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{day(local, tz)} {local:%H:%M}"


def _status(view: AgreementView, tz: ZoneInfo) -> str:
    if view.closed_at is None:
        return "open"
    return f"closed {day(view.closed_at, tz)}, outcome: {view.outcome}"


def summary_text(view: AgreementView, tz: ZoneInfo) -> str:
    """The short chat reply: at most about a dozen lines, the files carry the detail."""
    agreed = [n for n in view.norms if n.agreed]
    lines = [
        f"{view.ref} {view.title} ({_status(view, tz)})",
        f"Parties: {', '.join(view.parties)}. Sessions: {len(view.sessions)}.",
    ]
    for norm in view.norms[:6]:
        mark = "agreed" if norm.agreed else "waiting for " + ", ".join(norm.waiting_for)
        lines.append(f"{norm.ref} {_clip(norm.text)} ({mark})")
    if len(view.norms) > 6:
        lines.append(f"... and {len(view.norms) - 6} more in the file.")
    if not view.norms:
        lines.append("No norms proposed yet.")
    open_actions = [a for a in view.actions if a.done_at is None]
    lines.append(f"Agreed: {len(agreed)} of {len(view.norms)} norms. "
                 f"Actions: {len(view.actions) - len(open_actions)} done, "
                 f"{len(open_actions)} open.")
    return "\n".join(lines)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def markdown(view: AgreementView, tz: ZoneInfo) -> str:
    out = [
        f"# Mediation agreement {view.ref}: {view.title}",
        "",
        f"- Parties: {', '.join(view.parties)}",
        f"- Mediator: {view.mediator}",
        f"- Opened: {day(view.opened_at, tz)}; status: {_status(view, tz)}",
        "",
        "This written agreement is not legally binding; it records what the parties "
        "agreed, as a reminder.",
        "",
        "## Shared norms and values",
        "",
    ]
    if not view.norms:
        out.append("None proposed yet.")
    for norm in view.norms:
        state = "agreed by all parties" if norm.agreed else (
            "waiting for " + ", ".join(norm.waiting_for))
        out.append(f"{norm.ref}. {norm.text} ({state})")
        for c in norm.confirmed:
            out.append(f"   - confirmed for {c.group} by {c.by}, {stamp(c.at, tz)}")
    out += ["", "## Actions", ""]
    if not view.actions:
        out.append("None.")
    for a in view.actions:
        state = f"done {day(a.done_at, tz)}" if a.done_at else f"due {day(a.due, tz)}"
        out.append(f"- {a.ref}: {a.text} ({a.owner}; {state})")
    out += ["", "## Sessions", ""]
    if not view.sessions:
        out.append("None yet.")
    for s in view.sessions:
        end = f"{s.ended_at.astimezone(tz):%H:%M}" if s.ended_at else "still running"
        people = ", ".join(s.attendees) or "nobody recorded"
        out.append(f"- Session {s.number}: {stamp(s.started_at, tz)} to {end}; "
                   f"attended: {people}")
    return "\n".join(out) + "\n"


def _font_file() -> Path:
    """DejaVu Sans ships with matplotlib (a dependency): it covers what phones type."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def pdf(view: AgreementView, tz: ZoneInfo) -> bytes:
    """The Markdown text laid out on A4; headings bold-sized, everything else wrapped."""
    from fpdf import FPDF  # imported when a PDF is made, not at start-up

    document = FPDF(format="A4")
    document.set_title(f"Mediation agreement {view.ref}")
    document.set_creator("Grapevine")
    document.add_font("DejaVu", "", str(_font_file()))
    document.add_page()
    width = document.w - document.l_margin - document.r_margin
    for line in markdown(view, tz).splitlines():
        if line.startswith("# "):
            document.set_font("DejaVu", size=15)
            document.multi_cell(width, 8, line[2:], new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("## "):
            document.set_font("DejaVu", size=12.5)
            document.ln(2)
            document.multi_cell(width, 7, line[3:], new_x="LMARGIN", new_y="NEXT")
        else:
            document.set_font("DejaVu", size=10.5)
            document.multi_cell(width, 5.5, line or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())
