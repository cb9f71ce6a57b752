"""Build a county's shipped area file from the shared locality table.

    python -m config.build_areas <localities.csv> <out.csv> [--tiers <tiers.csv>]

The shipped file is one self-contained CSV per county: the whole tree from the
top (here the combined authority) down to the localities that become rooms.
The localities, their districts, points and IMD deciles come from the shared
table; the tiers above the localities (codes, names, parents, points) come from
a small sourced tiers file (see data/areas/ATTRIBUTION.md). Nothing is typed in
here: the script only joins and re-shapes, so the output can be checked against
its inputs row for row.

Two files beside the localities CSV are read as well:
``<stem>_imd_detail.csv`` for each locality's code vintage, and
``raw/ons_imd19_lsoa_lad19_lookup.csv`` (LSOA -> district with the IMD 2019
rank) for the deciles of the tiers above the localities, computed by the same
rule as the localities' (the official band of the unweighted mean LSOA rank).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

COLUMNS = ("code", "name", "kind", "parent_code", "lat", "lon", "imd_decile", "vintage")
DEFAULT_TIERS = Path(__file__).parent / "data" / "areas" / "sources" / "cambridgeshire_tiers.csv"

# Upper IMD 2019 rank of each official decile band (1 = most deprived), of the
# 32,844 LSOAs in England (MHCLG IoD2019 File 7, via PROVENANCE.md).
IMD2019_DECILE_UPPER_RANKS = (3284, 6568, 9853, 13137, 16422, 19706, 22990, 26275, 29559, 32844)

Row = dict[str, str]


class BuildError(ValueError):
    """The inputs disagree with each other; the message names the row."""


def imd_decile(mean_rank: float) -> int:
    """The official IMD 2019 decile band that a (mean) LSOA rank falls in."""
    for decile, upper in enumerate(IMD2019_DECILE_UPPER_RANKS, start=1):
        if mean_rank <= upper:
            return decile
    raise BuildError(f"IMD 2019 rank {mean_rank} is beyond the {upper} LSOAs in England")


def read_rows(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _vintage_token(code_vintage: str) -> str:
    # "PAR19 (Dec 2019)" -> "PAR19": the ONS field prefix is the vintage.
    return code_vintage.split(" ", 1)[0]


def locality_rows(localities: Iterable[Row], details: Iterable[Row]) -> list[Row]:
    vintage = {d["code"]: _vintage_token(d["code_vintage"]) for d in details}
    out = []
    for r in localities:
        if r["code"] not in vintage:
            raise BuildError(f"locality {r['code']} ({r['name']}) is missing from the detail file")
        out.append(
            {
                "code": r["code"],
                "name": r["name"],
                "kind": r["kind"],
                "parent_code": r["district_code"],
                "lat": r["lat"],
                "lon": r["lon"],
                "imd_decile": r["imd_decile"],
                "vintage": vintage[r["code"]],
            }
        )
    return out


def tier_rows(tiers: Sequence[Row], lsoa_ranks: Iterable[Row]) -> list[Row]:
    """The tiers above the localities, each with the decile of the LSOAs inside it."""
    ranks_by_district: dict[str, list[int]] = defaultdict(list)
    for lsoa in lsoa_ranks:
        ranks_by_district[lsoa["LAD19CD"]].append(int(lsoa["IMD19"]))
    children: dict[str, list[str]] = defaultdict(list)
    for t in tiers:
        children[t["parent_code"]].append(t["code"])

    def ranks_under(code: str) -> list[int]:
        found = list(ranks_by_district.get(code, []))
        for child in children.get(code, []):
            found += ranks_under(child)
        return found

    out = []
    for t in tiers:
        ranks = ranks_under(t["code"])
        decile = str(imd_decile(sum(ranks) / len(ranks))) if ranks else ""
        out.append({**{c: t.get(c, "") for c in COLUMNS}, "imd_decile": decile})
    return out


def build(localities_csv: Path, tiers_csv: Path = DEFAULT_TIERS) -> list[Row]:
    """The shipped rows: the tiers top-down, then the localities in source order."""
    localities = read_rows(localities_csv)
    details = read_rows(localities_csv.with_name(localities_csv.stem + "_imd_detail.csv"))
    lsoas = read_rows(localities_csv.parent / "raw" / "ons_imd19_lsoa_lad19_lookup.csv")
    tiers = read_rows(tiers_csv)
    tier_names = {t["code"]: t["name"] for t in tiers}
    for r in localities:
        district = r["district_code"]
        if tier_names.get(district) != r["district_name"]:
            raise BuildError(
                f"locality {r['code']} ({r['name']}): district {district} "
                f"{r['district_name']!r} is not in {tiers_csv.name} under that name"
            )
    return tier_rows(tiers, lsoas) + locality_rows(localities, details)


def write_rows(rows: Iterable[Row], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.build_areas", description=__doc__)
    parser.add_argument("localities", type=Path, help="the shared localities CSV")
    parser.add_argument("out", type=Path, help="the area file to write")
    parser.add_argument(
        "--tiers", type=Path, default=DEFAULT_TIERS, help="the tiers above the localities"
    )
    args = parser.parse_args(argv)
    try:
        rows = build(args.localities, args.tiers)
    except (BuildError, OSError, KeyError) as exc:
        print(f"build_areas: {exc}", file=sys.stderr)
        return 1
    write_rows(rows, args.out)
    print(f"wrote {len(rows)} areas to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
