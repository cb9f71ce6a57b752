"""Mediation notes sealed at rest with Fernet (AES-CBC + HMAC, from ``cryptography``).

The key comes from config (GRAPEVINE_PRIVACY__NOTES_KEY), never the database,
so a copy of the database file alone reveals nothing of what a note says. Notes
read back to a mediator go through the outbox sealed too (``seal_text``); only
the outbox worker opens them (``opener``), in memory, as it sends.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

KEY_HELP = (
    "Mediation notes are switched off: the bot's admin must set a notes key first "
    "(GRAPEVINE_PRIVACY__NOTES_KEY, made with "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
)


class NoKey(Exception):
    """No usable notes key is configured; str(e) tells the admin what to set."""


def cipher(key: SecretStr | None) -> Fernet:
    if key is None:
        raise NoKey(KEY_HELP)
    try:
        return Fernet(key.get_secret_value().encode())
    except (ValueError, TypeError):
        raise NoKey("The notes key in config is not a Fernet key. " + KEY_HELP) from None


def seal(key: SecretStr | None, text: str) -> bytes:
    return cipher(key).encrypt(text.encode("utf-8"))


def unseal(key: SecretStr | None, sealed: bytes) -> str | None:
    """The note's text, or None when it was sealed with another key (rotated or lost)."""
    try:
        return cipher(key).decrypt(sealed).decode("utf-8")
    except InvalidToken:
        return None


def seal_text(key: SecretStr | None, text: str) -> str:
    """Sealed text as ASCII (Fernet tokens are URL-safe base64), for a text column."""
    return seal(key, text).decode("ascii")


def opener(key: SecretStr | None) -> Callable[[str], str | None]:
    """Opens what :func:`seal_text` sealed; None when it cannot (no key, another key)."""
    def open_text(sealed: str) -> str | None:
        try:
            return unseal(key, sealed.encode("ascii"))
        except NoKey:
            return None

    return open_text
