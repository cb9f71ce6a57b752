"""Who belongs to which bridge, read from the bridges' appservice registration files.

Anyone with enough power can send ``m.bridge`` state, so a bridge is believed
only when its bot is a user that a registered appservice owns exclusively.
Inside such a namespace, a single-user regex (``^@whatsappbot:hs$``) or the
``sender_localpart`` is a bridge bot; wildcard regexes (``^@whatsapp_.*:hs$``)
hold ghosts, who are people like anyone else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridges import known

# Registration files the bot reads: <data_dir>/bridges/*.yaml (only ids and
# namespaces are used; the tokens in them can be blanked out).
REGISTRATIONS_DIR = "bridges"

_META = set(".^$*+?{}[]()|")


class RegistrationError(ValueError):
    """A registration file the bot cannot use; the message names the file and the key."""


def is_single_user(regex: str) -> bool:
    """True for a regex that matches one literal id, such as ``^@whatsappbot:example\\.org$``."""
    body = regex.removeprefix("^").removesuffix("$")
    escaped = False
    for char in body:
        if escaped:
            if char.isalnum():  # \d, \w, \S ... are classes, not literals
                return False
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _META:
            return False
    return not escaped


@dataclass(frozen=True)
class Bridge:
    """One appservice: its id, its own user, the regexes of the users it owns, and the
    network it serves when its registration says or its id is known (bridges.known)."""

    id: str
    sender: str
    bots: tuple[re.Pattern[str], ...]
    ghosts: tuple[re.Pattern[str], ...]
    network: str | None = None
    # False where the bridge never carries the bot's DMs to a ghost (bridges.known).
    takes_dms: bool = True

    def owns(self, user_id: str) -> bool:
        return self.is_bot(user_id) or any(p.match(user_id) for p in self.ghosts)

    def is_bot(self, user_id: str) -> bool:
        return user_id == self.sender or any(p.match(user_id) for p in self.bots)

    def is_ghost(self, user_id: str) -> bool:
        return not self.is_bot(user_id) and any(p.match(user_id) for p in self.ghosts)


@dataclass(frozen=True)
class Namespaces:
    """Every configured bridge; empty when the deployment runs none."""

    bridges: tuple[Bridge, ...] = ()

    def bridge_of(self, user_id: str) -> Bridge | None:
        return next((b for b in self.bridges if b.owns(user_id)), None)

    def is_bridge_bot(self, user_id: str) -> bool:
        return any(b.is_bot(user_id) for b in self.bridges)

    def is_ghost(self, user_id: str) -> bool:
        return any(b.is_ghost(user_id) for b in self.bridges)

    def never_takes_dms(self, user_id: str) -> bool:
        """A ghost whose bridge never carries the bot's direct messages to them."""
        return any(b.is_ghost(user_id) and not b.takes_dms for b in self.bridges)


def parse_registration(data: Mapping[str, Any], server_name: str, source: str = "") -> Bridge:
    """A bridge from one registration's mapping; only exclusive user namespaces count."""
    where = f"{source}: " if source else ""
    service_id, localpart = data.get("id"), data.get("sender_localpart")
    if not isinstance(service_id, str) or not service_id:
        raise RegistrationError(f"{where}id: missing")
    if not isinstance(localpart, str) or not localpart:
        raise RegistrationError(f"{where}sender_localpart: missing")
    entries = ((data.get("namespaces") or {}).get("users")) or []
    bots: list[re.Pattern[str]] = []
    ghosts: list[re.Pattern[str]] = []
    for index, entry in enumerate(entries):
        regex = entry.get("regex") if isinstance(entry, Mapping) else None
        if not isinstance(regex, str):
            raise RegistrationError(f"{where}namespaces.users[{index}].regex: missing")
        if not entry.get("exclusive"):
            continue  # real users may live there too: it proves nothing
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise RegistrationError(
                f"{where}namespaces.users[{index}].regex: not a regex ({exc})"
            ) from None
        (bots if is_single_user(regex) else ghosts).append(pattern)
    bot_names = [_localpart(p.pattern) for p in bots]
    try:
        network = known.network_of(data, bot_names)
    except known.NetworkError as exc:
        raise RegistrationError(f"{where}{exc}") from None
    return Bridge(
        service_id, f"@{localpart}:{server_name}", tuple(bots), tuple(ghosts), network,
        known.takes_dms(data),
    )


def _localpart(regex: str) -> str:
    """``^@whatsappbot:example\\.org$`` -> ``whatsappbot`` (for a single-user regex)."""
    return regex.removeprefix("^").removeprefix("@").partition(":")[0].replace("\\", "")


def load(paths: Iterable[Path], server_name: str) -> Namespaces:
    bridges = []
    for path in paths:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RegistrationError(f"{path}: cannot read ({exc})") from None
        if not isinstance(data, Mapping):
            raise RegistrationError(f"{path}: not a registration (expected a mapping)")
        bridges.append(parse_registration(data, server_name, str(path)))
    return Namespaces(tuple(bridges))


def registration_files(data_dir: Path) -> list[Path]:
    folder = Path(data_dir) / REGISTRATIONS_DIR
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
