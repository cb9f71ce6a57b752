"""Unclaimed listings in ``!directory``: imported groups nobody has claimed yet.

They are shown beside registered groups, marked unclaimed, with only the route
their source published (a website or an address) and how a room claims them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.commands.context import Context
from config.areas import AreaIndex, name_key
from storage.listings import Listing


def matching(found: Sequence[Listing], areas: AreaIndex, area: str | None, theme: str | None,
             kind: str | None, words: Sequence[str]) -> list[Listing]:
    """The listings a directory search selects, by the same rules as groups."""
    return [
        listing for listing in found
        if (area is None or (listing.area_code is not None and listing.area_code in areas
                             and areas.contains(area, listing.area_code)))
        and (theme is None or theme in listing.themes)
        and (kind is None or listing.org_type == kind)
        and all(word in name_key(listing.name) for word in words)
    ]


def place(ctx: Context, listing: Listing) -> str:
    areas = ctx.app.areas
    if listing.area_code is not None and listing.area_code in areas:
        return areas.label(listing.area_code)
    return listing.area_text or "area unknown"


def line(ctx: Context, listing: Listing) -> str:
    """L3 Wisby Fridge (Wisby) unclaimed; food: https://... ; its room claims it: ..."""
    kind = f"{listing.org_type}, " if listing.org_type else ""
    about = ", ".join(listing.themes or listing.terms[:3]) or "no themes"
    route = listing.url or (f"email {listing.email}" if listing.email else "no route published")
    return (f"{listing.ref} {listing.name} ({kind}{place(ctx, listing)}) unclaimed; {about}: "
            f"{route}; its room's admin claims it with {ctx.prefix}group claim {listing.ref}")
