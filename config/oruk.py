"""Open Referral UK: where the shipped schemas are, and Grapevine's own vocabularies.

A directory written by one deployment and read by another (or by a council's
directory) must name the themes the same way everywhere, so the theme taxonomy
and the organisation types have fixed vocabulary ids here, and each term's id
is derived from its key: the same theme has the same id in every export.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

SCHEMA_DIR = Path(__file__).parent / "data" / "oruk"
KINDS = ("organization", "service", "service_at_location")

# Vocabulary ids (fixed forever: changing one orphans every export made before).
THEMES_TAXONOMY = "grapevine-themes"
THEMES_TAXONOMY_ID = UUID("6f1f8a52-2a57-5d64-9b57-3a0c6c1e7a01")
TYPES_TAXONOMY = "grapevine-organisation-types"
TYPES_TAXONOMY_ID = UUID("6f1f8a52-2a57-5d64-9b57-3a0c6c1e7a02")
# Where a GSS code names an area as linked data (the ONS statistical geography URIs).
GSS_URI = "http://statistics.data.gov.uk/id/statistical-geography/"
GSS_SCHEME = "GSS"


@lru_cache(maxsize=len(KINDS))
def schema(kind: str) -> dict[str, Any]:
    """The compiled ORUK schema of one record kind (organization, service, ...)."""
    if kind not in KINDS:
        raise KeyError(kind)
    data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{kind}.json").read_text("utf-8"))
    return data


def term_id(taxonomy_id: UUID, key: str) -> str:
    """A term's id in one of our vocabularies: the same key gives the same id everywhere."""
    return str(uuid5(taxonomy_id, key))
