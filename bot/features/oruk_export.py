"""The directory as Open Referral UK JSON, for councils' and others' directories.

Each listed group is one ORUK organization with one service (what the group does):
its themes as terms of Grapevine's theme vocabulary, its organisation type as a
term of a second vocabulary, the area it reaches as the service area, and its
locality as the location (the locality's centre, never premises or a person).
Only groups that chose to be listed are written; no person's id, no room id, and
no email unless the group's source directory had already published that address.

Ids are UUIDs derived from the deployment and the group, so exporting twice gives
the same ids and a consumer updates rather than duplicates; a group claimed from an
imported listing keeps that listing's ids, so the source directory recognises it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from jsonschema import Draft202012Validator, FormatChecker

from config.areas import AreaIndex
from config.oruk import (
    GSS_SCHEME,
    GSS_URI,
    THEMES_TAXONOMY,
    THEMES_TAXONOMY_ID,
    TYPES_TAXONOMY,
    TYPES_TAXONOMY_ID,
    schema,
    term_id,
)
from config.themes import Theme
from storage import groups, listings
from storage.engine import Database
from storage.groups import Group
from storage.listings import Listing


class ExportInvalid(ValueError):
    """What we would write does not match the ORUK schema (a bug of ours: nothing is written)."""


def deployment_namespace(server_name: str) -> UUID:
    """The root of this deployment's ids: two deployments never mint the same id."""
    return uuid5(UUID("6f1f8a52-2a57-5d64-9b57-3a0c6c1e7a00"), server_name)


def _id(namespace: UUID, *parts: object) -> str:
    return str(uuid5(namespace, "/".join(str(p) for p in parts)))


def _uuid_or(value: str | None, fallback: str) -> str:
    """The source's id when it is a UUID (ORUK requires one), else ours."""
    try:
        return str(UUID(value)) if value else fallback
    except ValueError:
        return fallback


def theme_term(theme: Theme) -> dict[str, Any]:
    return {
        "id": term_id(THEMES_TAXONOMY_ID, theme.key),
        "name": theme.name,
        "description": f"{theme.description} (builds {theme.capital} capital)",
        "taxonomy": THEMES_TAXONOMY,
        "taxonomy_id": str(THEMES_TAXONOMY_ID),
        "term": theme.key,
    }


def type_term(kind: str) -> dict[str, Any]:
    return {
        "id": term_id(TYPES_TAXONOMY_ID, kind),
        "name": kind.replace("-", " "),
        "description": f"Organisation type: {kind}",
        "taxonomy": TYPES_TAXONOMY,
        "taxonomy_id": str(TYPES_TAXONOMY_ID),
        "term": kind,
    }


def _attribute(owner_id: str, link_type: str, term: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid5(UUID(owner_id), term["id"])), "link_id": owner_id,
            "link_type": link_type, "taxonomy_term_id": term["id"], "taxonomy_term": term}


def _reach_area(areas: AreaIndex, group: Group) -> str:
    """The area the group serves: its locality, or the district or county it reaches."""
    if group.area_code not in areas:
        return group.area_code
    if group.reach == "district":
        district = areas.district_of(group.area_code)
        return district.code if district is not None else group.area_code
    if group.reach == "county":
        return areas.root.code
    return group.area_code


def organization_of(group: Group, areas: AreaIndex, themes: Sequence[Theme],
                    namespace: UUID, listing: Listing | None = None) -> dict[str, Any]:
    """One listed group as an ORUK organization with its one service."""
    org_id = _uuid_or(listing.oruk_organization_id if listing else None,
                      _id(namespace, "group", group.id, "organization"))
    service_id = _uuid_or(listing.oruk_id if listing else None,
                          _id(namespace, "group", group.id, "service"))
    by_key = {t.key: t for t in themes}
    known = group.area_code in areas
    place = areas.label(group.area_code) if known else group.area_code
    served = _reach_area(areas, group)
    served_name = areas.label(served) if served in areas else served
    theme_names = [by_key[k].name for k in group.themes if k in by_key]
    description = (listing.description if listing and listing.description else
                   f"A {group.type.replace('-', ' ')} in {place}"
                   + (f": {', '.join(theme_names).lower()}." if theme_names else "."))
    location: dict[str, Any] = {
        "id": _id(namespace, "area", group.area_code),
        "location_type": "physical",
        "name": place,
        "description": f"The locality {group.name} works in (its centre, not an address).",
        "external_identifier": group.area_code,
        "external_identifier_type": GSS_SCHEME,
    }
    area = areas.get(group.area_code) if known else None
    if area is not None and area.lat is not None and area.lon is not None:
        location["latitude"], location["longitude"] = area.lat, area.lon
    service: dict[str, Any] = {
        "id": service_id,
        "organization_id": org_id,
        "name": group.name,
        "description": description,
        "status": "active",
        "last_modified": group.registered_at.isoformat(),
        "service_areas": [{
            "id": _id(namespace, "service-area", group.id, served),
            "service_id": service_id,
            "name": served_name,
            "service_area": f"{served_name} ({group.reach})",
            "extent_type": "text",
            "extent": served_name,
            "uri": f"{GSS_URI}{served}",
        }],
        "service_at_locations": [{
            "id": _id(namespace, "service-at-location", group.id, group.area_code),
            "service_id": service_id,
            "location_id": location["id"],
            "location": location,
        }],
        "attributes": [_attribute(service_id, "service", theme_term(by_key[k]))
                       for k in group.themes if k in by_key],
    }
    organization: dict[str, Any] = {
        "id": org_id,
        "name": group.name,
        "description": description,
        "attributes": [_attribute(org_id, "organization", type_term(group.type))],
        "services": [service],
    }
    published = listing.email if listing else None
    if published and group.email == published:  # an address its source made public
        organization["email"] = service["email"] = published
    if listing and listing.url:
        organization["website"] = listing.url
    return organization


def validate(document: list[dict[str, Any]]) -> None:
    """Check every organization against the published ORUK schema, formats included."""
    validator = Draft202012Validator(schema("organization"), format_checker=FormatChecker())
    for n, organization in enumerate(document):
        error = next(iter(validator.iter_errors(organization)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(the record)"
            raise ExportInvalid(f"organization {n} ({organization.get('name')}): {where}: "
                                f"{error.message}")


async def build_export(db: Database, areas: AreaIndex, themes: Sequence[Theme],
                       namespace: UUID) -> list[dict[str, Any]]:
    """Every listed group as ORUK organizations, validated."""
    async with db.transaction() as session:
        shown = await groups.listed(session)
        claimed = await listings.of_groups(session, [g.id for g in shown])
    document = [organization_of(g, areas, themes, namespace, claimed.get(g.id))
                for g in sorted(shown, key=lambda g: g.id)]
    validate(document)
    return document


def render(document: list[dict[str, Any]]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """A reader (or a crash) never sees half a file."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


async def own_service_ids(db: Database, namespace: UUID) -> frozenset[str]:
    """The service ids this deployment's export gives its groups (listed or not)."""
    async with db.transaction() as session:
        every = await groups.active(session)
    return frozenset(_id(namespace, "group", g.id, "service") for g in every)
