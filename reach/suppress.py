"""The project's one small-count rule: any count under 5 is shown as "<5".

Kept apart from :mod:`reach.report` so that anything showing counts (consultations,
adoption figures, reach reports) applies the same rule without importing the model
and numpy with it.
"""

from __future__ import annotations

SMALL = 5


def count(n: float) -> str:
    """A count as shown to people: rounded, with thousands separators, "<5" under 5."""
    r = round(float(n))
    return "<5" if r < SMALL else f"{r:,}"


def share(part: float, whole: float) -> str:
    """A percentage, suppressed to "<5" when the part is a count under 5."""
    if round(part) < SMALL:
        return "<5"
    return f"{100.0 * part / whole:.0f}%" if whole else "-"
