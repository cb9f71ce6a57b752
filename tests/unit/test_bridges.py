"""Bridges as plain functions: whose users are whose, which m.bridge events to believe,
and how a reply is cut down for the network on the other side."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bridges import namespaces
from bridges.capabilities import limits_for
from bridges.detect import network_from_state, read_bridge_event
from bridges.namespaces import RegistrationError, is_single_user, parse_registration
from bridges.render import flatten, for_room, shorten

HS = "example.org"
# As mautrix-whatsapp generates it: a random sender_localpart, a literal regex for
# its bot and a wildcard for ghosts.
MAUTRIX = {
    "id": "whatsapp",
    "as_token": "x", "hs_token": "y",
    "sender_localpart": "Hx8eZrJ2bq1vN0rKtq6hN3tVqZc9pL2s",
    "namespaces": {"users": [
        {"regex": r"^@whatsappbot:example\.org$", "exclusive": True},
        {"regex": r"^@whatsapp_.*:example\.org$", "exclusive": True},
    ]},
}
WA_BOT = "@whatsappbot:example.org"
GHOST = "@whatsapp_447700900123:example.org"
INFO = {
    "bridgebot": WA_BOT, "creator": WA_BOT,
    "protocol": {"id": "whatsapp", "displayname": "WhatsApp"},
    "channel": {"id": "1203630@g.us", "displayname": "Chatteris Food Bank"},
}


def known() -> namespaces.Namespaces:
    return namespaces.Namespaces((parse_registration(MAUTRIX, HS),))


def test_a_literal_regex_names_one_bot_and_a_wildcard_names_ghosts() -> None:
    assert is_single_user(r"^@whatsappbot:example\.org$")
    assert not is_single_user(r"^@whatsapp_.*:example\.org$")
    assert not is_single_user(r"@irc_\d+:hs")
    ns = known()
    assert ns.is_bridge_bot(WA_BOT)
    assert ns.is_bridge_bot("@Hx8eZrJ2bq1vN0rKtq6hN3tVqZc9pL2s:example.org")  # sender_localpart
    assert ns.is_ghost(GHOST) and not ns.is_bridge_bot(GHOST)
    assert not ns.is_ghost("@alice:example.org") and ns.bridge_of("@alice:example.org") is None


def test_a_non_exclusive_namespace_proves_nothing() -> None:
    shared = {**MAUTRIX, "namespaces": {"users": [
        {"regex": r"^@.*:example\.org$", "exclusive": False}]}}
    ns = namespaces.Namespaces((parse_registration(shared, HS),))
    assert not ns.is_ghost("@alice:example.org")
    assert read_bridge_event("m.bridge", "@alice:example.org",
                             {**INFO, "bridgebot": "@alice:example.org"}, ns) is None


def test_registration_files_are_read_from_the_data_dir_and_bad_ones_named(tmp_path: Path) -> None:
    folder = tmp_path / "bridges"
    folder.mkdir()
    (folder / "whatsapp.yaml").write_text(yaml.safe_dump(MAUTRIX))
    files = namespaces.registration_files(tmp_path)
    assert namespaces.load(files, HS).is_ghost(GHOST)
    (folder / "broken.yaml").write_text(yaml.safe_dump({"id": "x", "sender_localpart": "b",
                                                        "namespaces": {"users": [{}]}}))
    with pytest.raises(RegistrationError, match=r"broken.yaml: namespaces.users\[0\].regex"):
        namespaces.load(namespaces.registration_files(tmp_path), HS)


def test_a_bridge_event_from_the_bridge_is_believed_and_a_forged_one_is_not() -> None:
    ns = known()
    for kind in ("m.bridge", "uk.half-shot.bridge"):
        info = read_bridge_event(kind, WA_BOT, INFO, ns)
        assert info is not None
        assert (info.network, info.bridge_id, info.channel_name) == (
            "whatsapp", "whatsapp", "Chatteris Food Bank")
    # A room admin copies the event, naming the real bridge bot: still not believed.
    assert read_bridge_event("m.bridge", "@mallory:example.org", INFO, ns) is None
    # The bridge's own user naming a bot outside its namespace: not believed either.
    assert read_bridge_event("m.bridge", WA_BOT, {**INFO, "bridgebot": "@x:evil.org"}, ns) is None
    assert read_bridge_event("m.room.topic", WA_BOT, INFO, ns) is None
    assert read_bridge_event("m.bridge", WA_BOT, {"bridgebot": WA_BOT}, ns) is None


def test_the_network_is_found_among_a_rooms_whole_state() -> None:
    state = [
        {"type": "m.room.create", "sender": "@a:example.org", "content": {}},
        {"type": "m.bridge", "state_key": "x", "sender": "@mallory:example.org",
         "content": {**INFO, "protocol": {"id": "telegram"}}},
        {"type": "uk.half-shot.bridge", "state_key": "y", "sender": WA_BOT, "content": INFO},
    ]
    assert network_from_state(state, known()) == "whatsapp"
    assert network_from_state(state[:2], known()) is None


def test_chat_networks_get_plain_text_and_no_threads_edits_or_reactions() -> None:
    for network in ("whatsapp", "telegram", "signal"):
        limits = limits_for(network)
        assert limits.plain_only and not (limits.threads or limits.edits or limits.reactions)
    assert limits_for("telegram").max_length == 4096
    assert limits_for("irc").max_lines == 3
    assert limits_for(None).html and limits_for(None).threads
    assert limits_for("somethingnew").plain_only


def test_room_features_published_by_the_bridge_override_the_defaults() -> None:
    features = {"formatting": {"bold": 2}, "thread": 0, "edit": 1, "reaction": -1,
                "max_text_length": 500}
    limits = limits_for("whatsapp", features)
    assert limits.html and limits.edits and not limits.threads and not limits.reactions
    assert limits.max_length == 500


def test_markdown_structure_is_flattened_for_chat_apps() -> None:
    text = "## Open funds\n\n\n| ref | fund |\n|---|---|\n| F1 | **Warm Spaces** |\n\n"
    assert flatten(text) == "Open funds\n\nref · fund\nF1 · Warm Spaces"
    assert flatten("see https://example.org/a__b__c and 2**10") == (
        "see https://example.org/a__b__c and 2**10")


def test_a_long_reply_is_cut_at_a_word_with_an_ellipsis() -> None:
    text = "Funding F12: Warm Spaces for everyone in the parish"
    cut = shorten(text, 30)
    assert len(cut) <= 30 and cut.endswith("…") and cut == "Funding F12: Warm Spaces for…"
    assert shorten(text, 200) == text


def test_a_reply_is_sent_unchanged_to_matrix_and_plain_to_whatsapp() -> None:
    body, html = "**F1** Warm Spaces", "<b>F1</b> Warm Spaces"
    assert for_room(body, html, None) == (body, html, [])
    assert for_room(body, html, "whatsapp") == ("F1 Warm Spaces", None, [])
    assert for_room("x" * 5000, None, "telegram")[0].endswith("…")
    assert len(for_room("x " * 3000, None, "telegram")[0]) <= 4096
