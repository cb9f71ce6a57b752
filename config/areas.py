"""The area tree (county, districts, parishes and wards) that rooms and notices are keyed on.

One CSV file holds one county's whole tree (see ``data/areas/ATTRIBUTION.md``):
``code,name,kind,parent_code,lat,lon,imd_decile,vintage`` and an optional
``slug`` column to pin a slug. Another county is another such file, passed as
``AreaIndex.load(path)`` (``[areas] file`` in the config).

Costs, for n areas of depth d (n ~ 300, d <= 4 for Cambridgeshire): loading is
O(n); ``get``, ``in``, ``children`` and exact-name ``resolve`` are O(1);
``ancestors``, ``contains`` and ``district_of`` are O(d); ``descendants`` and
``localities(within=...)`` are O(size of the subtree); a ``resolve`` that falls
back to prefix matching is O(log n + matches), to word matching O(n);
``nearest`` is O(n).
"""

from __future__ import annotations

import bisect
import csv
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SHIPPED_AREAS = Path(__file__).parent / "data" / "areas" / "cambridgeshire.csv"

GSS_CODE = re.compile(r"^[EWSNK]\d{8}$")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
DISTRICT_KINDS = frozenset({"district", "unitary", "metropolitan-district", "london-borough"})
LOCALITY_KINDS = frozenset({"parish", "unparished-area", "unparished-ward", "ward", "community"})
KINDS = DISTRICT_KINDS | LOCALITY_KINDS | {"combined-authority", "region", "county"}
REQUIRED_COLUMNS = ("code", "name", "kind", "parent_code", "lat", "lon", "imd_decile", "vintage")

# Words people add that are not part of an area's name ("Fenland District Council").
_GENERIC_SUFFIXES = (
    "city council", "district council", "parish council", "town council",
    "county council", "council", "city", "district", "parish", "town", "ward",
    "unparished area", "village",
)  # fmt: skip
_WORD_SYNONYMS = {"saint": "st", "cambs": "cambridgeshire"}


@dataclass(frozen=True, slots=True)
class Area:
    """One area. ``slug`` is unique within its file and readable in a room alias."""

    code: str
    name: str
    kind: str
    parent_code: str | None
    lat: float | None
    lon: float | None
    imd_decile: int | None
    slug: str
    vintage: str = ""

    @property
    def is_district(self) -> bool:
        return self.kind in DISTRICT_KINDS


class AreaFileError(ValueError):
    """The area file is unusable; the message names the file and the row."""


def name_key(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a name.

    "St. Ives", "ST IVES" and "saint ives" give "st ives"; "&" reads as "and";
    apostrophes (straight or curly) vanish, so "King’s Hedges" = "kings hedges".
    """
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = text.casefold().replace("&", " and ")
    text = re.sub(r"['`]", "", text)
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(_WORD_SYNONYMS.get(w, w) for w in words)


def slugify(text: str) -> str:
    return name_key(text).replace(" ", "-")


def _strip_generic_suffix(key: str) -> str | None:
    for suffix in _GENERIC_SUFFIXES:
        if key.endswith(" " + suffix):
            return key[: -len(suffix) - 1]
    return None


class AreaIndex:
    """An immutable, validated area tree with name resolution."""

    def __init__(self, areas: Iterable[Area], source: str = "<memory>") -> None:
        self.source = source
        self._by_code: dict[str, Area] = {}
        self._children: dict[str, list[str]] = {}
        for area in areas:
            self._by_code[area.code] = area
            self._children.setdefault(area.code, [])
        roots = [a for a in self._by_code.values() if a.parent_code is None]
        if len(roots) != 1:
            names = ", ".join(a.code for a in roots) or "none"
            raise AreaFileError(f"{source}: expected exactly one top area, found {names}")
        self._root = roots[0]
        for area in self._by_code.values():
            if area.parent_code is not None:
                self._children[area.parent_code].append(area.code)
        self._by_name: dict[str, list[Area]] = {}
        for area in self._by_code.values():
            for key in {name_key(area.name), name_key(area.slug)}:
                self._by_name.setdefault(key, []).append(area)
        self._sorted_keys = sorted(self._by_name)

    # -- loading -------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> AreaIndex:
        """Read and validate an area file (default: the shipped Cambridgeshire one)."""
        path = SHIPPED_AREAS if path is None else Path(path)
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
                if missing:
                    raise AreaFileError(f"{path}: missing columns: {', '.join(missing)}")
                rows = [(reader.line_num, row) for row in reader]
        except OSError as exc:
            raise AreaFileError(f"cannot read area file {path}: {exc.strerror}") from exc
        return cls(_areas_from_rows(rows, str(path)), source=str(path))

    # -- lookups ---------------------------------------------------------------

    @property
    def root(self) -> Area:
        return self._root

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.upper() in self._by_code

    def __iter__(self) -> Iterator[Area]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Area:
        """The area with this GSS code (any case); KeyError if there is none."""
        try:
            return self._by_code[code.strip().upper()]
        except KeyError:
            raise KeyError(f"no area with code {code!r} in {self.source}") from None

    def children(self, code: str) -> list[Area]:
        return [self._by_code[c] for c in self._children[self.get(code).code]]

    def descendants(self, code: str, include_self: bool = True) -> list[Area]:
        """The subtree under ``code``, depth-first in file order."""
        start = self.get(code)
        out = [start] if include_self else []
        stack = list(reversed(self._children[start.code]))
        while stack:
            area = self._by_code[stack.pop()]
            out.append(area)
            stack.extend(reversed(self._children[area.code]))
        return out

    def ancestors(self, code: str) -> list[Area]:
        """From the parent up to the root."""
        out = []
        area = self.get(code)
        while area.parent_code is not None:
            area = self._by_code[area.parent_code]
            out.append(area)
        return out

    def contains(self, outer_code: str, inner_code: str) -> bool:
        """True when ``inner`` is ``outer`` or lies inside it (an area includes itself)."""
        outer = self.get(outer_code).code
        area: Area | None = self.get(inner_code)
        while area is not None:
            if area.code == outer:
                return True
            area = self._by_code[area.parent_code] if area.parent_code else None
        return False

    def districts(self) -> list[Area]:
        """Districts and unitary authorities, in file order."""
        return [a for a in self._by_code.values() if a.is_district]

    def localities(self, within: str | None = None) -> list[Area]:
        """The leaves (the areas that get a locality room), optionally under one area."""
        pool = self._by_code.values() if within is None else self.descendants(within)
        return [a for a in pool if not self._children[a.code]]

    def district_of(self, code: str) -> Area | None:
        """The district or unitary the area is in (itself if it is one); None above them."""
        area = self.get(code)
        for candidate in (area, *self.ancestors(code)):
            if candidate.is_district:
                return candidate
        return None

    # -- names -----------------------------------------------------------------

    def resolve(self, text: str) -> list[Area]:
        """Areas a person may mean by ``text``: a GSS code or a name.

        One area: a unique match. Several: ambiguous, let the person choose.
        None: unknown. Tried in order, the first tier with a hit wins:
        GSS code; the exact name or slug (ignoring case, punctuation, "&"/"and",
        "St"/"Saint"); the same without a trailing "council", "district",
        "parish", "ward", ...; names starting with the text (3+ characters);
        names containing the text as whole words. So "Cambridge" is the city
        district, not Cambridgeshire, and "Sutton" lists both Suttons.
        """
        text = text.strip().strip("\"'“”‘’").strip()
        if GSS_CODE.match(text.upper()):
            code = text.upper()
            return [self._by_code[code]] if code in self._by_code else []
        key = name_key(text)
        if not key:
            return []
        if key in self._by_name:
            return self._ordered(self._by_name[key])
        shorter = _strip_generic_suffix(key)
        if shorter and shorter in self._by_name:
            return self._ordered(self._by_name[shorter])
        if len(key) >= 3:
            start = bisect.bisect_left(self._sorted_keys, key)
            hits: dict[str, Area] = {}
            for k in self._sorted_keys[start:]:
                if not k.startswith(key):
                    break
                hits.update((a.code, a) for a in self._by_name[k])
            if hits:
                return self._ordered(hits.values())
            padded = f" {key} "
            words = {a.code: a for k, v in self._by_name.items() if padded in f" {k} " for a in v}
            return self._ordered(words.values())
        return []

    def _ordered(self, areas: Iterable[Area]) -> list[Area]:
        # Bigger areas first, then by name and district, for a stable numbered choice.
        unique = {a.code: a for a in areas}.values()
        return sorted(unique, key=lambda a: (self._depth(a), a.name, a.parent_code or ""))

    def _depth(self, area: Area) -> int:
        return len(self.ancestors(area.code))

    def label(self, code: str) -> str:
        """A name a person can tell apart: "Sutton (East Cambridgeshire)" when names repeat."""
        area = self.get(code)
        if len(self._by_name.get(name_key(area.name), ())) > 1 and area.parent_code:
            return f"{area.name} ({self._by_code[area.parent_code].name})"
        return area.name

    def nearest(self, lat: float, lon: float, within: str | None = None) -> Area | None:
        """The locality whose point is nearest (great-circle), or None if none has a point."""
        best: tuple[float, Area] | None = None
        for area in self.localities(within):
            if area.lat is None or area.lon is None:
                continue
            d = _haversine_km(lat, lon, area.lat, area.lon)
            if best is None or d < best[0]:
                best = (d, area)
        return best[1] if best else None


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _areas_from_rows(rows: Sequence[tuple[int, Mapping[str, str]]], source: str) -> list[Area]:
    """Validate rows and give each a unique slug (name, else name-parent, else name-code)."""
    parsed: list[tuple[dict[str, str], str]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        where = f"{source}, line {line}"
        fields = {k: (row.get(k) or "").strip() for k in (*REQUIRED_COLUMNS, "slug")}
        code = fields["code"]
        if not GSS_CODE.match(code):
            raise AreaFileError(f"{where}: {code!r} is not a GSS code (like E04001668)")
        where = f"{where} ({code})"
        if code in seen:
            raise AreaFileError(f"{where}: duplicate code, first on line {seen[code]}")
        seen[code] = line
        if not fields["name"]:
            raise AreaFileError(f"{where}: empty name")
        if fields["kind"] not in KINDS:
            known = ", ".join(sorted(KINDS))
            raise AreaFileError(f"{where}: unknown kind {fields['kind']!r} (one of {known})")
        if fields["slug"] and not SLUG.match(fields["slug"]):
            raise AreaFileError(f"{where}: slug {fields['slug']!r} is not lowercase-with-hyphens")
        parsed.append((fields, where))

    for fields, where in parsed:
        parent = fields["parent_code"]
        if parent and parent not in seen:
            raise AreaFileError(f"{where}: unknown parent_code {parent!r}")
    _check_no_cycles(parsed)

    slugs = _slugs(parsed)
    areas = []
    for fields, where in parsed:
        lat = _number(fields["lat"], -90, 90, "lat", where)
        lon = _number(fields["lon"], -180, 180, "lon", where)
        if (lat is None) != (lon is None):
            raise AreaFileError(f"{where}: give both lat and lon, or neither")
        decile = _number(fields["imd_decile"], 1, 10, "imd_decile", where)
        if decile is not None and decile != int(decile):
            raise AreaFileError(f"{where}: imd_decile must be a whole number 1-10")
        areas.append(
            Area(
                code=fields["code"],
                name=fields["name"],
                kind=fields["kind"],
                parent_code=fields["parent_code"] or None,
                lat=lat,
                lon=lon,
                imd_decile=None if decile is None else int(decile),
                slug=slugs[fields["code"]],
                vintage=fields["vintage"],
            )
        )
    return areas


def _check_no_cycles(parsed: list[tuple[dict[str, str], str]]) -> None:
    parent_of = {f["code"]: f["parent_code"] for f, _ in parsed}
    where_of = {f["code"]: w for f, w in parsed}
    settled: set[str] = set()
    for start in parent_of:
        path: list[str] = []
        code = start
        while code and code not in settled:
            if code in path:
                raise AreaFileError(f"{where_of[code]}: parent_code loops back to itself")
            path.append(code)
            code = parent_of[code]
        settled.update(path)


def _number(text: str, low: float, high: float, column: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise AreaFileError(f"{where}: {column} {text!r} is not a number") from None
    if not low <= value <= high or math.isnan(value):
        raise AreaFileError(f"{where}: {column} {text!r} is outside {low:g}..{high:g}")
    return value


def _slugs(parsed: list[tuple[dict[str, str], str]]) -> dict[str, str]:
    """code -> slug. A repeated name gets its parent's slug appended; a pinned slug is kept."""
    plain = {f["code"]: f["slug"] or slugify(f["name"]) for f, _ in parsed}
    counts: dict[str, int] = {}
    for f, _ in parsed:
        if not f["slug"]:
            counts[plain[f["code"]]] = counts.get(plain[f["code"]], 0) + 1
    out: dict[str, str] = {}
    taken: set[str] = set()
    for f, _ in parsed:
        code, slug = f["code"], plain[f["code"]]
        if not f["slug"] and counts[slug] > 1 and f["parent_code"]:
            slug = f"{slug}-{plain[f['parent_code']]}"
        if slug in taken:
            slug = f"{slug}-{code.lower()}"
        taken.add(slug)
        out[code] = slug
    return out
