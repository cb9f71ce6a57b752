"""What a bridged room can show, so replies read well on the far side of the bridge.

Defaults per network come from what the mautrix bridges and appservice-irc
do (notes/matrix.md 1.4); a room's ``com.beeper.room_features`` state, where
a bridgev2 bridge publishes it, overrides them. Feature levels there are
-2 rejected, -1 dropped, 0 unsupported, 1 partial, 2 full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

ROOM_FEATURES = "com.beeper.room_features"


@dataclass(frozen=True)
class Limits:
    """How to write for one room. ``html`` False means send only the plain body."""

    max_length: int = 20_000
    max_lines: int = 12
    # Where the far side splits a long line into several (IRC: one message is one line
    # of at most 512 bytes with its envelope), the longest line in UTF-8 bytes; None: no cap.
    max_line_bytes: int | None = None
    # False where blank lines vanish on the far side (heisenbridge drops them).
    blank_lines: bool = True
    html: bool = True
    threads: bool = True
    edits: bool = True
    reactions: bool = True
    # False where a file message may be lost whole on the far side: heisenbridge (1.15)
    # relays a file as a link only when its deployer gave it a media URL, and without
    # one drops the message, words and all. There the words go as text, the file after.
    files: bool = True

    @property
    def plain_only(self) -> bool:
        return not self.html


MATRIX = Limits()
# Chat networks: no threads for remote people, edits within limits, one reaction each
# and none through a relay: nothing may depend on them.
_CHAT = Limits(html=False, threads=False, edits=False, reactions=False)
NETWORKS: dict[str, Limits] = {
    "whatsapp": replace(_CHAT, max_length=65_536),
    "telegram": replace(_CHAT, max_length=4_096),
    "signal": replace(_CHAT, max_length=2_000),
    "slackgo": replace(_CHAT, max_length=4_000, threads=True),
    "facebookgo": replace(_CHAT, max_length=2_000),
    "instagramgo": replace(_CHAT, max_length=1_000),
    "discordgo": replace(_CHAT, max_length=2_000, threads=True),
    # appservice-irc turns more than 3 lines into a pastebin link; heisenbridge sends each
    # line as a PRIVMSG, first prefixed "<Grapevine> ", and splits one longer than the
    # 512-byte IRC line (heisenbridge/private_room.py split_long), so 350 bytes stay whole.
    "irc": replace(_CHAT, max_length=1_000, max_lines=3, max_line_bytes=350, blank_lines=False,
                   files=False),
}
# An unknown bridge: assume the least.
UNKNOWN_BRIDGE = replace(_CHAT, max_length=2_000)


def _level(features: Mapping[str, Any], key: str) -> int | None:
    value = features.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def limits_for(network: str | None, features: Mapping[str, Any] | None = None) -> Limits:
    """The limits for a room bridged to ``network`` (None: plain Matrix)."""
    limits = MATRIX if network is None else NETWORKS.get(network.lower(), UNKNOWN_BRIDGE)
    if not features:
        return limits
    changes: dict[str, Any] = {}
    for key, attr in (("thread", "threads"), ("edit", "edits"), ("reaction", "reactions")):
        level = _level(features, key)
        if level is not None:
            changes[attr] = level >= 1
    length = _level(features, "max_text_length")
    if length is not None and length > 0:
        changes["max_length"] = length
    formatting = features.get("formatting")
    if isinstance(formatting, Mapping):
        bold = formatting.get("bold")
        if isinstance(bold, int):
            changes["html"] = bold >= 1
    return replace(limits, **changes)
