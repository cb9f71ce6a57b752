"""The command lexer: what people type on phones splits like what they would type on a keyboard."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands.lexer import LexError, Tokens, normalise, split_list, tokenize


def tokens(*words: str, **options: str) -> Tokens:
    return Tokens(words, options, tuple(options))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("funding list", tokens("funding", "list")),
        (
            'funding post title="Warm spaces" deadline=5/12',
            tokens("funding", "post", title="Warm spaces", deadline="5/12"),
        ),
        ('directory "St Ives"', tokens("directory", "St Ives")),
        ("directory 'St Ives'", tokens("directory", "St Ives")),
        ("directory St John's", tokens("directory", "St", "John's")),
        (
            'group register name="St John\'s Hall"',
            tokens("group", "register", name="St John's Hall"),
        ),
        ("group set name='A \"quoted\" word'", tokens("group", "set", name='A "quoted" word')),
        ('mediation agree "we = equals"', tokens("mediation", "agree", "we = equals")),
        ('x note="a = b"', tokens("x", note="a = b")),
        (
            "x url=https://example.org/apply?id=3&x=y",
            tokens("x", url="https://example.org/apply?id=3&x=y"),
        ),
        ("group set email=", tokens("group", "set", email="")),
        ('funding reject F3 reason=""', tokens("funding", "reject", "F3", reason="")),
        ("x themes=food,digital", tokens("x", themes="food,digital")),
        ("x Title=Hi DBS-Workforce=adult", tokens("x", title="Hi", dbs_workforce="adult")),
        ("x --title=Hi", tokens("x", title="Hi")),
        ("x title='90s", tokens("x", title="'90s")),
        ("", tokens()),
        ("   ", tokens()),
        ("volunteer need 3 role=Driver", tokens("volunteer", "need", "3", role="Driver")),
    ],
)
def test_a_typed_line_splits_into_words_and_options(line: str, expected: Tokens) -> None:
    assert tokenize(line) == expected


@pytest.mark.parametrize(
    ("phone", "typed"),
    [
        ("funding post title=“Warm spaces”", 'funding post title="Warm spaces"'),
        ("funding post title=„Warm spaces“", 'funding post title="Warm spaces"'),
        ("funding post title=«Warm spaces»", 'funding post title="Warm spaces"'),
        ("directory ‘St Ives’", "directory 'St Ives'"),
        ("directory St John’s", "directory St John's"),
        ("funding list.", "funding list"),
        ("funding list!", "funding list"),
        ("funding show F12?", "funding show F12"),
        ("funding list...", "funding list"),
        ("funding list…", "funding list"),
        ("funding list .", "funding list"),
        ('funding post title="Warm spaces".', 'funding post title="Warm spaces"'),
        ("funding post amount=500–1000", "funding post amount=500-1000"),
        ("funding post amount=500—1000", "funding post amount=500-1000"),
        ("funding post amount=500−1000", "funding post amount=500-1000"),
        ("funding post —title=Hi", "funding post title=Hi"),
        ("volunteer need when=sat\u00a010am–1pm", "volunteer need when=sat 10am-1pm"),
        ("volunteer need when=“sat 10am – 1pm”", 'volunteer need when="sat 10am - 1pm"'),
        ("funding\u200b list", "funding list"),
        ("\ufefffunding list", "funding list"),
        ("funding  post   title = “Warm spaces”", 'funding post title="Warm spaces"'),
        ("funding post title =Hi", "funding post title=Hi"),
        ("funding\tpost\u202ftitle=Hi", "funding post title=Hi"),
        ("group register name=Café", "group register name=Café"),
    ],
)
def test_phone_text_splits_like_the_typed_form(phone: str, typed: str) -> None:
    assert tokenize(phone) == tokenize(typed)


def test_values_and_words_keep_their_case() -> None:
    result = tokenize('Funding Post Title="Warm Spaces" URL=https://Example.org/A')
    assert result.words == ("Funding", "Post")
    assert dict(result.options) == {"title": "Warm Spaces", "url": "https://Example.org/A"}


def test_full_stops_inside_a_url_or_a_value_stay() -> None:
    result = tokenize("funding post https://example.org/grants.v2/apply.html deadline=5.12.26.")
    assert result.words == ("funding", "post", "https://example.org/grants.v2/apply.html")
    assert result.options["deadline"] == "5.12.26"


def test_options_are_listed_in_the_order_given() -> None:
    assert tokenize("x b=1 a=2 c=3").option_order == ("b", "a", "c")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('funding post title="Warm spaces', 'closing "'),
        ("funding post title=“Warm spaces", 'closing "'),
        ("funding post themes=food themes=digital", "themes= was given twice"),
        ("funding post Title=a title=b", "title= was given twice"),
        ("= x", 'before "="'),
        ('directory "St Ives" =x', 'before "="'),
    ],
)
def test_a_line_that_cannot_be_split_is_refused_with_the_fix(line: str, says: str) -> None:
    with pytest.raises(LexError, match=says):
        tokenize(line)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“a” ‘b’ „c‟ «d» ″e″ ′f′", '"a" \'b\' "c" "d" "e" \'f\''),
        ("1–2—3−4‒5", "1-2-3-4-5"),
        ("a\u00a0b\u202fc\u2009d", "a b c d"),
        ("a\u200bb\u200dc\ufeffd\u2060e", "abcde"),
        ("a   b", "a   b"),
        ("Café Zoë naïve", "Café Zoë naïve"),
    ],
)
def test_normalise_maps_phone_punctuation_to_ascii(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("food, digital,,youth", ["food", "digital", "youth"]),
        ("food;digital", ["food", "digital"]),
        ("G1,G2,G1", ["G1", "G2"]),
        ("Arts and crafts, food", ["Arts and crafts", "food"]),
        (" , ", []),
        ("", []),
    ],
)
def test_split_list(value: str, expected: list[str]) -> None:
    assert split_list(value) == expected


def test_a_long_line_of_apostrophes_splits_in_linear_time() -> None:
    started = time.perf_counter()
    result = tokenize("'x'y " * 5000)
    assert len(result.words) == 5000
    assert time.perf_counter() - started < 1.0  # was cubic: seconds for 10 kB


def _one_clear_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message and len(message) < 200, message


@given(st.text())
def test_no_text_crashes_the_lexer(line: str) -> None:
    try:
        result = tokenize(line)
    except LexError as error:
        _one_clear_line(error)
    else:
        assert len(result.options) == len(result.option_order)


_word = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:,", min_size=1)
_value = (
    st.text(
        st.characters(blacklist_characters='"', blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        max_size=30,
    )
    .map(normalise)
    .filter(lambda v: '"' not in v)
)
_key = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@given(st.lists(_word, max_size=4), st.dictionaries(_key, _value, max_size=4))
def test_quoted_options_come_back_exactly(words: list[str], options: dict[str, str]) -> None:
    line = " ".join(words + [f'{key}="{value}"' for key, value in options.items()])
    result = tokenize(line)
    assert result.words == tuple(words)
    assert dict(result.options) == options
