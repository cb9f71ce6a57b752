"""Past grants from 360Giving files (JSON or the flattened CSV), for ``!funding history``.

Each grant is keyed by its 360Giving id (re-importing a file updates, never
duplicates), and placed by its beneficiary location's GSS code (else the
recipient's), the most local code first: parish and ward, then district,
then county. Themes come from the grant's classifications and programme.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from config.themes import resolve_theme
from storage import funding
from storage.engine import Database

GSS = re.compile(r"^[ENSW]\d{8}$")
# Most local first: parish, ward, unitary, district, county; anything else last.
_PREFERENCE = ("E04", "E05", "W04", "E06", "E07", "W06", "E10")


class GrantFileError(ValueError):
    """The file is not a 360Giving JSON or CSV file; the message says why."""


def _first(value: Any) -> Mapping[str, Any]:
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], Mapping) else {}
    return value if isinstance(value, Mapping) else {}


def _codes(locations: Any) -> list[str]:
    if isinstance(locations, Mapping):
        locations = [locations]
    codes = []
    for location in locations or []:
        if isinstance(location, Mapping):
            code = str(location.get("geoCode") or "").strip().upper()
            if GSS.match(code):
                codes.append(code)
    return codes


def best_code(codes: list[str]) -> str | None:
    if not codes:
        return None
    return min(codes, key=lambda c: next(
        (i for i, p in enumerate(_PREFERENCE) if c.startswith(p)), len(_PREFERENCE)))


def _themes(grant: Mapping[str, Any]) -> list[str]:
    titles = [c.get("title") for c in grant.get("classifications") or [] if isinstance(c, Mapping)]
    titles += [p.get("title") for p in grant.get("grantProgramme") or [] if isinstance(p, Mapping)]
    found: list[str] = []
    for title in titles:
        theme = resolve_theme(str(title)) if title else None
        if theme is not None and theme.key not in found:
            found.append(theme.key)
    return found


def grant_row(grant: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored fields of one 360Giving grant, or None when it lacks what we key by."""
    funder = _first(grant.get("fundingOrganization"))
    recipient = _first(grant.get("recipientOrganization"))
    try:
        amount = float(str(grant.get("amountAwarded", "")).replace(",", ""))
    except ValueError:
        return None
    grant_id = str(grant.get("id") or "").strip()
    if not grant_id or not funder.get("name") or not recipient.get("id"):
        return None
    code = best_code(_codes(grant.get("beneficiaryLocation"))) or best_code(
        _codes(recipient.get("location")))
    return {
        "grant_id": grant_id[:255],
        "title": str(grant.get("title") or "")[:500],
        "funder_id": str(funder.get("id") or funder.get("name"))[:255],
        "funder_name": str(funder["name"])[:300],
        "recipient_id": str(recipient["id"])[:255],
        "recipient_name": str(recipient.get("name") or recipient["id"])[:300],
        "amount": amount,
        "currency": str(grant.get("currency") or "GBP")[:3].upper(),
        "awarded_on": str(grant.get("awardDate") or "")[:10],
        "area_code": code,
        "themes": _themes(grant),
    }


# -- CSV: 360Giving's flattened columns ("Funding Org:Name", "Beneficiary Location:0:Geographic
# Code") folded back into the JSON shape, so one function reads both.

_CSV_FIELDS = {
    "identifier": ("id",),
    "title": ("title",),
    "currency": ("currency",),
    "amount awarded": ("amountAwarded",),
    "award date": ("awardDate",),
    "funding org:identifier": ("fundingOrganization", "id"),
    "funding org:name": ("fundingOrganization", "name"),
    "recipient org:identifier": ("recipientOrganization", "id"),
    "recipient org:name": ("recipientOrganization", "name"),
    "recipient org:location:geographic code": ("recipientOrganization", "location", "geoCode"),
    "beneficiary location:geographic code": ("beneficiaryLocation", "geoCode"),
    "grant programme:title": ("grantProgramme", "title"),
    "classifications:title": ("classifications", "title"),
}
_LISTS = {"fundingOrganization", "recipientOrganization", "beneficiaryLocation", "location",
          "grantProgramme", "classifications"}
_INDEX = re.compile(r":\d+(?=:|$)")


def _from_csv_row(row: Mapping[str, str]) -> dict[str, Any]:
    grant: dict[str, Any] = {}
    for header, value in row.items():
        if header is None or not value:
            continue
        path = _CSV_FIELDS.get(_INDEX.sub("", header.strip().lower()))
        if path is None:
            continue
        node: dict[str, Any] = grant
        for step in path[:-1]:
            if step in _LISTS:
                items = node.setdefault(step, [{}])
                node = items[0]
            else:
                node = node.setdefault(step, {})
        leaf = path[-1]
        if leaf in node and path[0] in {"beneficiaryLocation", "classifications"}:
            # Several columns of one list: keep each as its own entry.
            node = {}
            grant[path[0]].append(node)
        node[leaf] = value.strip()
    return grant


def read_grants(path: Path) -> Iterator[Mapping[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GrantFileError(f"not valid JSON (line {exc.lineno})") from None
        grants = data.get("grants") if isinstance(data, Mapping) else data
        if not isinstance(grants, list):
            raise GrantFileError("no \"grants\" list; is it a 360Giving file?")
        yield from (g for g in grants if isinstance(g, Mapping))
        return
    reader = csv.DictReader(text.splitlines())
    headers = {_INDEX.sub("", h.strip().lower()) for h in reader.fieldnames or []}
    if "identifier" not in headers or "amount awarded" not in headers:
        raise GrantFileError("no Identifier and Amount Awarded columns; "
                             "is it a 360Giving CSV export?")
    for row in reader:
        yield _from_csv_row(row)


async def import_grants(db: Database, path: Path | str) -> int:
    """Load a 360Giving JSON or CSV file; returns how many grants were stored or updated."""
    rows = {r["grant_id"]: r for r in (grant_row(g) for g in read_grants(Path(path))) if r}
    async with db.transaction() as session:
        await funding.upsert_grants(session, list(rows.values()))
    return len(rows)
