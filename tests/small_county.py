"""A small county for tests: two districts, four parishes, an Upton in each district."""

from __future__ import annotations

from pathlib import Path

HEADER = "code,name,kind,parent_code,lat,lon,imd_decile,vintage,slug\n"


def write_test_areas(path: Path, tag: str = "") -> Path:
    """A small county: Fenmarsh (3 parishes) and Hillside (1), with an Upton in each district.

    ``tag`` makes the top slugs (and so every alias) unique on a shared homeserver.
    """
    rows = [
        ("E10900001", "Testshire", "county", "", f"testshire{tag}"),
        ("E07900001", "Fenmarsh", "district", "E10900001", f"fenmarsh{tag}"),
        ("E04900001", "Wisby", "parish", "E07900001", ""),
        ("E04900002", "March End", "parish", "E07900001", ""),
        ("E04900003", "Upton", "parish", "E07900001", ""),
        ("E07900002", "Hillside", "district", "E10900001", f"hillside{tag}"),
        ("E04900004", "Upton", "parish", "E07900002", ""),
    ]
    path.write_text(HEADER + "".join(
        f"{code},{name},{kind},{parent},52.5,0.1,5,TEST,{slug}\n"
        for code, name, kind, parent, slug in rows
    ))
    return path
