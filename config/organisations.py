"""Kinds and sizes of organisation: what group profiles say and funding notices target.

Size bands follow NCVO's annual-income bands (micro under £10k, small £10k-£100k,
medium £100k-£1m, large over £1m), the ones UK funders usually state.
"""

from __future__ import annotations

GROUP_TYPES: tuple[str, ...] = (
    "unregistered-group",  # constituted or informal community group, no charity number
    "charity",  # registered charity or CIO
    "cic",  # community interest company
    "parish-council",
    "faith-group",
    "school",
    "social-enterprise",
    "mutual-aid",
    "tenants-association",
    "sports-club",
    "other",
)

# What people type -> the canonical type.
GROUP_TYPE_ALIASES: dict[str, str] = {
    "group": "unregistered-group",
    "community-group": "unregistered-group",
    "unregistered": "unregistered-group",
    "registered-charity": "charity",
    "cio": "charity",
    "parish": "parish-council",
    "town-council": "parish-council",
    "church": "faith-group",
    "mosque": "faith-group",
    "temple": "faith-group",
    "faith": "faith-group",
    "club": "sports-club",
    "residents-association": "tenants-association",
    "mutual-aid-group": "mutual-aid",
}

SIZES: tuple[str, ...] = ("micro", "small", "medium", "large")
REACHES: tuple[str, ...] = ("locality", "district", "county")
