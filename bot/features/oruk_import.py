"""Open Referral UK files (a council's directory, another deployment's export) as listings.

Groups will not be typed in one by one: a directory that exists already is read
into unclaimed listings (``L<n>``), which a group's room then claims. The file may
be a list of organizations (with their services), of services, of services at
locations, one of those records alone, or an ORUK API page (``{"contents": [...]}``).

Each service becomes a listing keyed by its ORUK id (an organization with no service
becomes one itself), so importing the same directory again updates what changed and
duplicates nothing. Taxonomy terms become themes where they match (Grapevine's own
vocabulary by key, any other by name) and are kept as text otherwise; the area is
found from a GSS code (location identifier, service-area URI) or else a place name
that names exactly one area. ORUK contacts (named people) are never read.

A file that is not ORUK JSON, or a record that breaks the published schema, stops
the whole import with one line naming the record: nothing is half-imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from config.areas import AreaIndex
from config.organisations import GROUP_TYPES
from config.oruk import GSS_SCHEME, THEMES_TAXONOMY, THEMES_TAXONOMY_ID, TYPES_TAXONOMY, schema
from config.themes import Theme, resolve_theme
from storage import listings
from storage.engine import Database
from storage.listings import Listing

GSS = re.compile(r"[ENSW]\d{8}")
# Column sizes of storage.listings: longer text is cut, never refused.
LIMITS = {"oruk_id": 255, "oruk_organization_id": 255, "organization": 300, "name": 300,
          "email": 320, "url": 500, "area_text": 500, "source": 255}


class DirectoryFileError(ValueError):
    """The file cannot be imported; the message is the one line a deployer reads."""


@dataclass
class ListingData:
    """What one imported record says, before it is stored."""

    oruk_id: str
    name: str
    oruk_organization_id: str | None = None
    organization: str | None = None
    description: str | None = None
    email: str | None = None
    url: str | None = None
    area_code: str | None = None
    area_text: str | None = None
    themes: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    org_type: str | None = None

    def stored(self) -> dict[str, Any]:
        values = {k: v for k, v in vars(self).items()}
        for key, limit in LIMITS.items():
            if isinstance(values.get(key), str):
                values[key] = values[key][:limit]
        return values


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    skipped_own: int = 0


# -- reading records ---------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _records(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and isinstance(data.get("contents"), list):
        data = data["contents"]  # an ORUK API page
    items = data if isinstance(data, list) else [data]
    if not items:
        raise DirectoryFileError("the file holds no organizations or services")
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise DirectoryFileError(f"record {n}: not a JSON object (an ORUK organization "
                                     "or service)")
    return items


def kind_of(record: Mapping[str, Any]) -> str:
    """organization, service or service_at_location, from the fields it carries."""
    if isinstance(record.get("location"), Mapping) and isinstance(record.get("service"), Mapping):
        return "service_at_location"
    if "status" in record or "service_areas" in record or "organization_id" in record:
        return "service"
    return "organization"


def _check(record: Mapping[str, Any], kind: str, where: str) -> None:
    """The record against the published schema of its kind (formats are not enforced:
    real directories use ids that are not UUIDs, and we key by them as given)."""
    error = next(iter(Draft202012Validator(schema(kind)).iter_errors(record)), None)
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path)
        raise DirectoryFileError(f"{where} ({kind}{', ' + path if path else ''}): "
                                 f"{error.message}")


def _terms(*owners: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    for owner in owners:
        for attribute in (owner or {}).get("attributes") or []:
            term = attribute.get("taxonomy_term") if isinstance(attribute, Mapping) else None
            if isinstance(term, Mapping):
                yield term


def map_terms(terms: Sequence[Mapping[str, Any]], themes: Sequence[Theme]
              ) -> tuple[list[str], list[str], str | None]:
    """(themes, other terms as text, organisation type) from taxonomy terms."""
    keys = {t.key for t in themes}
    found: list[str] = []
    others: list[str] = []
    org_type = None
    for term in terms:
        vocabulary = {str(term.get("taxonomy") or ""), str(term.get("taxonomy_id") or "")}
        key = _text(term.get("term"))
        name = _text(term.get("name")) or key
        if vocabulary & {TYPES_TAXONOMY} and key in GROUP_TYPES:
            org_type = key
            continue
        theme: Theme | None = None
        if vocabulary & {THEMES_TAXONOMY, str(THEMES_TAXONOMY_ID)} and key in keys:
            theme = next(t for t in themes if t.key == key)
        elif name is not None:
            theme = resolve_theme(name, tuple(themes))
        if theme is not None:
            if theme.key not in found:
                found.append(theme.key)
        elif name is not None and name not in others:
            others.append(name)
    return found, others, org_type


def _places(service: Mapping[str, Any], locations: Sequence[Mapping[str, Any]]
            ) -> tuple[list[str], list[str]]:
    """(GSS codes, place names) the records give, the most specific first."""
    codes: list[str] = []
    names: list[str] = []
    for location in locations:
        ident = _text(location.get("external_identifier"))
        scheme = str(location.get("external_identifier_type") or "").upper()
        if ident and (scheme == GSS_SCHEME or GSS.fullmatch(ident)):
            codes.append(ident.upper())
        for address in location.get("addresses") or []:
            if isinstance(address, Mapping) and _text(address.get("city")):
                names.append(str(address["city"]).strip())
        if _text(location.get("name")):
            names.append(str(location["name"]).strip())
    for area in service.get("service_areas") or []:
        if not isinstance(area, Mapping):
            continue
        uri = _text(area.get("uri")) or ""
        tail = uri.rstrip("/").rsplit("/", 1)[-1].upper()
        if GSS.fullmatch(tail):
            codes.append(tail)
        for key in ("name", "extent") if area.get("extent_type") == "text" else ("name",):
            if _text(area.get(key)):
                names.append(str(area[key]).strip())
    return codes, names


def locate(codes: Sequence[str], names: Sequence[str], areas: AreaIndex) -> str | None:
    """Our area for these: a known GSS code first, else a name that means exactly one area."""
    for code in codes:
        if code in areas:
            return code
    for name in names:
        found = areas.resolve(name)
        if len(found) == 1:
            return found[0].code
    return None


def _listing(service: Mapping[str, Any], organization: Mapping[str, Any] | None,
             extra_locations: Sequence[Mapping[str, Any]], areas: AreaIndex,
             themes: Sequence[Theme]) -> ListingData:
    organization = organization or (service.get("organization")
                                    if isinstance(service.get("organization"), Mapping) else None)
    locations = [*extra_locations, *(
        sal["location"] for sal in service.get("service_at_locations") or []
        if isinstance(sal, Mapping) and isinstance(sal.get("location"), Mapping))]
    found, others, org_type = map_terms(list(_terms(service, organization)), themes)
    codes, names = _places(service, locations)
    org = organization or {}
    return ListingData(
        oruk_id=str(service["id"]),
        name=str(service["name"]).strip(),
        oruk_organization_id=_text(org.get("id")) or _text(service.get("organization_id")),
        organization=_text(org.get("name")),
        description=_text(service.get("description")) or _text(org.get("description")),
        email=_text(service.get("email")) or _text(org.get("email")),
        url=_text(service.get("url")) or _text(org.get("website")),
        area_code=locate(codes, names, areas),
        area_text="; ".join(dict.fromkeys(names)) or None,
        themes=found, terms=others, org_type=org_type,
    )


def read_listings(data: Any, areas: AreaIndex, themes: Sequence[Theme]) -> list[ListingData]:
    """Every listing an ORUK document holds, checked against the schema; later wins on an id."""
    found: dict[str, ListingData] = {}
    for n, record in enumerate(_records(data)):
        kind = kind_of(record)
        _check(record, kind, f"record {n}")
        if kind == "organization":
            services = [s for s in record.get("services") or [] if isinstance(s, Mapping)]
            for service in services or [{**record, "attributes": []}]:
                item = _listing(service, record, [], areas, themes)
                found[item.oruk_id] = item
        elif kind == "service_at_location":
            item = _listing(record["service"], None, [record["location"]], areas, themes)
            found[item.oruk_id] = item
        else:
            item = _listing(record, None, [], areas, themes)
            found[item.oruk_id] = item
    return list(found.values())


def load_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DirectoryFileError(f"cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DirectoryFileError("not UTF-8 text (an ORUK file is JSON)") from None
    except json.JSONDecodeError as exc:
        raise DirectoryFileError(f"not JSON (line {exc.lineno}: {exc.msg})") from None


# -- storing -----------------------------------------------------------------------------


async def import_listings(db: Database, items: Sequence[ListingData], source: str,
                          now: datetime, own_ids: frozenset[str] = frozenset()) -> ImportResult:
    """Add new listings and update known ones by ORUK id, all in one transaction.

    ``own_ids`` are the ids this deployment's own export gives its groups: reading our
    own export back never turns a group into a listing of itself.
    """
    added = updated = unchanged = own = 0
    async with db.transaction() as session:
        known = await listings.by_oruk_ids(session, [i.oruk_id for i in items])
        for item in items:
            if item.oruk_id in own_ids:
                own += 1
                continue
            values = item.stored()
            listing = known.get(item.oruk_id)
            if listing is None:
                session.add(Listing(**values, source=source[:255], imported_at=now,
                                    updated_at=now))
                added += 1
                continue
            changed = {k: v for k, v in values.items() if getattr(listing, k) != v}
            if not changed:
                unchanged += 1
                continue
            for key, value in changed.items():
                setattr(listing, key, value)
            listing.source, listing.updated_at = source[:255], now
            updated += 1
    return ImportResult(added, updated, unchanged, own)
