"""The theme taxonomy: every theme builds a named capital, and people's words find it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.themes import CAPITALS, ThemeFileError, load_themes, resolve_theme


def test_the_taxonomy_has_twelve_to_sixteen_themes_covering_every_capital() -> None:
    themes = load_themes()
    assert 12 <= len(themes) <= 16
    assert {t.capital for t in themes} == set(CAPITALS)
    assert len({t.key for t in themes}) == len(themes)
    assert all(t.name and t.description for t in themes)


@pytest.mark.parametrize(
    ("key", "capital"),
    [
        ("food", "health"),
        ("health", "health"),
        ("digital", "human"),
        ("youth", "human"),
        ("older-people", "social"),
        ("environment", "environmental"),
        ("employment", "employability"),
        ("advice", "human"),
        ("arts", "cultural"),
        ("sport", "health"),
        ("safety", "social"),
    ],
)
def test_the_themes_the_issue_names_exist_with_their_capital(key: str, capital: str) -> None:
    theme = resolve_theme(key)
    assert theme is not None and (theme.key, theme.capital) == (key, capital)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("mental health", "health"),
        ("Mental Health", "health"),
        ("Health & Wellbeing", "health"),
        ("health and well-being", "health"),
        ("digital", "digital"),
        ("Digital Inclusion", "digital"),
        ("money", "advice"),
        ("Housing and money advice", "advice"),
        ("debt", "advice"),
        ("food banks", "food"),
        ("Foodbank", "food"),
        ("Arts & Culture", "arts"),
        ("arts and culture", "arts"),
        ("art", "arts"),
        ("sports", "sport"),
        ("Older People", "older-people"),
        ("elderly", "older-people"),
        ("families", "families"),
        ("kids", "families"),
        ("jobs", "employment"),
        ("climate", "environment"),
        ("buses", "transport"),
        ("neighbourhood watch", "safety"),
        ("warm spaces", "community"),
        ("envir", "environment"),  # a unique beginning
        ("young", "youth"),
    ],
)
def test_forgiving_matches(typed: str, key: str) -> None:
    theme = resolve_theme(typed)
    assert theme is not None and theme.key == key


@pytest.mark.parametrize("typed", ["", "  ", "zz", "astrophysics", "he", "co"])
def test_unknown_or_too_vague_words_match_nothing(typed: str) -> None:
    assert resolve_theme(typed) is None


def test_a_deployment_can_ship_its_own_taxonomy(tmp_path: Path) -> None:
    path = tmp_path / "themes.toml"
    path.write_text(
        '[[theme]]\nkey = "boats"\nname = "Boating"\ncapital = "social"\n'
        'description = "Canal and river groups."\naliases = ["canals", "rivers"]\n',
        encoding="utf-8",
    )
    themes = load_themes(path)
    assert [t.key for t in themes] == ["boats"]
    canal = resolve_theme("canal", themes)
    assert canal is not None and canal.key == "boats"
    assert resolve_theme("food", themes) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "no [[theme]] tables"),
        ("[[theme]\n", "not valid TOML"),
        ('[[theme]]\nkey = "x"\nname = "X"\ncapital = "social"\n', "description is missing"),
        (
            '[[theme]]\nkey = "x"\nname = "X"\ncapital = "wealth"\ndescription = "d"\n',
            "capital must be one of",
        ),
        (
            '[[theme]]\nkey = "Food Bank"\nname = "X"\ncapital = "social"\ndescription = "d"\n',
            "key must be lowercase",
        ),
        (
            '[[theme]]\nkey = "a"\nname = "A"\ncapital = "social"\ndescription = "d"\n'
            'aliases = ["shared"]\n'
            '[[theme]]\nkey = "b"\nname = "B"\ncapital = "human"\ndescription = "d"\n'
            'aliases = ["Shared"]\n',
            "'Shared' would match both 'a' and 'b'",
        ),
    ],
)
def test_a_bad_theme_file_is_refused_with_the_reason(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "themes.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ThemeFileError, match=re.escape(message)):
        load_themes(path)
