"""The theme taxonomy for function rooms, groups and funding notices.

Each theme is mapped to the one kind of capital it mainly builds, so reports
can sum activity by capital. The taxonomy lives in ``data/themes.toml``; a
deployment may ship its own file with the same shape.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SHIPPED_THEMES = Path(__file__).parent / "data" / "themes.toml"
CAPITALS = ("social", "cultural", "human", "health", "environmental", "employability")
THEME_KEY = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_STOPWORDS = frozenset({"and", "the", "of", "for", "a", "an"})
_MIN_PREFIX = 3


@dataclass(frozen=True, slots=True)
class Theme:
    key: str
    name: str
    capital: str
    description: str
    aliases: tuple[str, ...] = ()


class ThemeFileError(ValueError):
    """The theme file is unusable; the message names the theme."""


def _singular(word: str) -> str:
    if len(word) <= 3:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "uses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def theme_key(text: str) -> str:
    """Matching form: no case, accents, punctuation, "&"/"and", spaces or plurals.

    "Health & Well-being", "health and wellbeing" and "healths wellbeing" all
    give "healthwellbeing".
    """
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"['`]", "", text.casefold().replace("&", " and "))
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return "".join(_singular(w) for w in words if w not in _STOPWORDS)


def load_themes(path: Path | None = None) -> tuple[Theme, ...]:
    """Read and validate a theme file (default: the shipped taxonomy)."""
    if path is None:
        return _shipped_themes()
    return _read_themes(Path(path))


@lru_cache(maxsize=1)
def _shipped_themes() -> tuple[Theme, ...]:
    return _read_themes(SHIPPED_THEMES)


def _read_themes(path: Path) -> tuple[Theme, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"cannot read theme file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{path}: not valid TOML: {exc}") from exc
    entries = data.get("theme")
    if not isinstance(entries, list) or not entries:
        raise ThemeFileError(f"{path}: no [[theme]] tables")
    themes = []
    for n, entry in enumerate(entries, start=1):
        where = f"{path}, theme {n} ({entry.get('key', '?')!r})"
        for field in ("key", "name", "capital", "description"):
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise ThemeFileError(f"{where}: {field} is missing or empty")
        if not THEME_KEY.match(entry["key"]):
            raise ThemeFileError(f"{where}: key must be lowercase words joined by hyphens")
        if entry["capital"] not in CAPITALS:
            raise ThemeFileError(f"{where}: capital must be one of {', '.join(CAPITALS)}")
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ThemeFileError(f"{where}: aliases must be a list of strings")
        themes.append(
            Theme(
                key=entry["key"],
                name=entry["name"].strip(),
                capital=entry["capital"],
                description=entry["description"].strip(),
                aliases=tuple(a.strip() for a in aliases if a.strip()),
            )
        )
    result = tuple(themes)
    try:
        _lookup(result)
    except ThemeFileError as exc:
        raise ThemeFileError(f"{path}: {exc}") from None
    return result


@lru_cache(maxsize=8)
def _lookup(themes: tuple[Theme, ...]) -> dict[str, Theme]:
    """Matching form of every key, name and alias -> its theme."""
    table: dict[str, Theme] = {}
    for theme in themes:
        for text in (theme.key, theme.name, *theme.aliases):
            k = theme_key(text)
            other = table.setdefault(k, theme)
            if other.key != theme.key:
                raise ThemeFileError(f"{text!r} would match both {other.key!r} and {theme.key!r}")
    return table


def resolve_theme(text: str, themes: tuple[Theme, ...] | None = None) -> Theme | None:
    """The theme a person means, or None.

    Exact match on key, name or alias first (forgiving case, plurals, "&"/"and"
    and punctuation: "Mental health", "digital", "money", "arts & culture");
    else a unique theme among words starting with the text ("envir"). None
    when nothing or more than one theme fits; the caller then lists themes.
    Cost: O(1), or O(number of aliases) for the prefix fallback.
    """
    table = _lookup(load_themes() if themes is None else themes)
    k = theme_key(text)
    if not k:
        return None
    if k in table:
        return table[k]
    if len(k) < _MIN_PREFIX:
        return None
    hits = {t.key: t for word, t in table.items() if word.startswith(k)}
    return next(iter(hits.values())) if len(hits) == 1 else None


def themes_for_capital(capital: str, themes: tuple[Theme, ...] | None = None) -> list[Theme]:
    return [t for t in (load_themes() if themes is None else themes) if t.capital == capital]
