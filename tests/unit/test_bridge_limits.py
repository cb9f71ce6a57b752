"""Every network's limits, lines and length: which network a bridge serves, and pages
that fit it without cutting a word, a link or an id in half."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.pager import Pager
from bridges import namespaces
from bridges.capabilities import limits_for
from bridges.namespaces import RegistrationError, parse_registration
from bridges.render import compact, more_pointer, paginate
from tests.clocks import ManualClock

HS = "example.org"
# What `heisenbridge -c heisenbridge.yaml --generate` writes (tokens shortened).
HEISENBRIDGE = {
    "id": "heisenbridge", "url": "http://127.0.0.1:9898",
    "as_token": "a", "hs_token": "b", "rate_limited": False,
    "sender_localpart": "heisenbridge",
    "namespaces": {"users": [{"regex": "@irc_.*", "exclusive": True}],
                   "aliases": [], "rooms": []},
}
IRC = limits_for("irc")
HELP = "\n".join(
    f"!command{i} option=value: what the command number {i} does, said in a few words"
    for i in range(20)
)


def test_heisenbridge_is_irc_without_any_bridge_state() -> None:
    bridge = parse_registration(HEISENBRIDGE, HS)
    assert bridge.network == "irc"
    assert bridge.is_bot("@heisenbridge:example.org")
    assert bridge.is_ghost("@irc_libera_alice:example.org")


@pytest.mark.parametrize(("registration", "network"), [
    ({"id": "whatsapp", "sender_localpart": "Hx8eZrJ2bq1v", "users": [
        r"^@whatsappbot:example\.org$", r"^@whatsapp_.*:example\.org$"]}, "whatsapp"),
    # A renamed mautrix-telegram: its bot user still says what it is.
    ({"id": "tg-county", "sender_localpart": "q9", "users": [r"^@telegrambot:example\.org$"]},
     "telegram"),
    ({"id": "d0c4f1", "sender_localpart": "appservice-irc", "users": ["@irc_.*"]}, "irc"),
    ({"id": "d0c4f1", "sender_localpart": "x", "protocols": ["irc"], "users": ["@x_.*"]}, "irc"),
    ({"id": "meta", "sender_localpart": "x", "users": [r"^@instagrambot:example\.org$"]},
     "instagramgo"),
    # The deployer's word wins over the table.
    ({"id": "heisenbridge", "sender_localpart": "heisenbridge", "grapevine_network": "IRC",
      "users": ["@irc_.*"]}, "irc"),
    ({"id": "matrix-email", "sender_localpart": "mail", "grapevine_network": "email",
      "users": ["@mail_.*"]}, "email"),
    ({"id": "mystery", "sender_localpart": "m", "users": ["@m_.*"]}, None),
])
def test_a_registration_names_its_network(registration: dict[str, object],
                                          network: str | None) -> None:
    users = registration.pop("users")
    assert isinstance(users, list)
    data = {**registration, "namespaces": {"users": [
        {"regex": regex, "exclusive": True} for regex in users]}}
    assert parse_registration(data, HS).network == network


def test_a_network_key_that_is_not_a_name_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "irc.yaml"
    path.write_text(yaml.safe_dump({**HEISENBRIDGE, "grapevine_network": ["irc"]}))
    with pytest.raises(RegistrationError, match=r"irc.yaml: grapevine_network: expected"):
        namespaces.load([path], HS)


def _words(text: str) -> list[str]:
    return text.split()


def test_a_long_answer_on_irc_is_three_whole_lines_and_the_rest_waits() -> None:
    page, rest = paginate(HELP, IRC, more_pointer("!"))
    lines = page.splitlines()
    assert len(lines) == 3 and lines[-1] == "... 18 more lines: !more"
    assert all(len(line.encode()) <= 350 for line in lines)
    assert lines[:2] + rest == HELP.splitlines()


def test_a_line_too_long_for_irc_breaks_between_words_and_keeps_links_whole() -> None:
    link = "https://example.org/funding/F12?from=grapevine&utm=" + "x" * 60
    line = " ".join(["Warm Spaces £1,000 to £5,000"] * 40 + [link, "F12"])
    page, rest = paginate(line, IRC, more_pointer("!"))
    shown = page.splitlines()
    assert len(shown) <= 3
    assert all(len(piece.encode()) <= 350 for piece in shown)
    assert _words("\n".join(shown[:-1] + rest)) == _words(line)
    assert any(link in piece.split() for piece in shown[:-1] + rest)


def test_blank_lines_do_not_count_on_irc_but_length_does() -> None:
    assert paginate("one\n\ntwo\n\nthree", IRC, more_pointer("!")) == ("one\ntwo\nthree", [])
    three = "\n".join(["word " * 60] * 3)
    assert paginate(three, limits_for("signal"), more_pointer("!")) == (three, [])
    page, rest = paginate("\n".join(["word " * 60] * 4), IRC, more_pointer("!"))
    assert len(page) <= IRC.max_length and len(page.splitlines()) <= 3 and rest


def test_whatsapp_takes_twelve_lines_before_paging() -> None:
    twelve = "\n".join(f"line {i}" for i in range(12))
    assert paginate(twelve, limits_for("whatsapp"), more_pointer("!")) == (twelve, [])
    page, rest = paginate(twelve + "\nline 12", limits_for("whatsapp"), more_pointer("!"))
    assert page.splitlines()[-1] == "... 2 more lines: !more" and rest == ["line 11", "line 12"]


def test_the_rest_survives_a_short_answer_and_goes_after_ten_minutes() -> None:
    clock = ManualClock()
    pager = Pager(clock)
    first = pager.first_page("!room", "@ann:hs", HELP, IRC, "!")
    assert first.endswith("18 more lines: !more")
    assert pager.first_page("!room", "@ann:hs", "Cancelled; nothing was changed.", IRC, "!") == (
        "Cancelled; nothing was changed.")
    second = pager.more("!room", "@ann:hs", IRC, "!")
    assert second is not None and second.splitlines()[0] == HELP.splitlines()[2]
    clock.advance(minutes=9)
    assert pager.more("!room", "@bob:hs", IRC, "!") is None  # Bob's rest, not Ann's
    clock.advance(minutes=1, seconds=1)
    assert pager.more("!room", "@ann:hs", IRC, "!") is None


def test_the_rest_of_the_bots_own_post_is_there_for_anyone_in_the_room() -> None:
    pager = Pager(ManualClock())
    pager.keep_for_room("!room", ["F12 closes Friday", "https://example.org/f12"])
    assert pager.more("!room", "@ann:hs", IRC, "!") == (
        "F12 closes Friday\nhttps://example.org/f12")
    assert pager.more("!room", "@bob:hs", IRC, "!") is None


def test_short_lines_are_joined_as_sentences_or_with_a_dot_only_where_they_fit() -> None:
    assert compact(["Funding F1: Food Fund", "£500 to £5,000", "Done."], 1, 100, IRC) == [
        "Funding F1: Food Fund · £500 to £5,000 · Done."]
    assert compact(["One sentence.", "Another"], 1, 100, IRC) == ["One sentence. Another"]
    too_long = ["word " * 30, "word " * 30]
    assert compact(too_long, 1, 100, IRC) == too_long
