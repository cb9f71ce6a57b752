"""The bot's cross-signing identity on a real Synapse, checked the way a client checks it.

Another user's /keys/query is what Element reads: the bot's master key, its
self-signing key signed by the master key, and the bot's device signed by the
self-signing key. Signatures are checked with vodozemac (an ed25519
implementation other than the one that made them) over independently
written canonical JSON.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from botfixture import BotFactory, RunningBot, bring_bot_in
from conftest import PersonFactory
from people import Person
from vodozemac import Ed25519PublicKey, Ed25519Signature

from bot.homeserver import EmbeddedSynapse
from bot.runtime import cross_signing


def _canonical(obj: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _only_key(obj: dict[str, Any]) -> str:
    (public,) = obj["keys"].values()
    return str(public)


def _signed_by(obj: dict[str, Any], user_id: str, public: str) -> bool:
    signature = (obj.get("signatures") or {}).get(user_id, {}).get(f"ed25519:{public}")
    if signature is None:
        return False
    Ed25519PublicKey.from_base64(public).verify_signature(
        _canonical(obj), Ed25519Signature.from_base64(signature)
    )  # raises if forged
    return True


async def trusted_device(
    synapse: EmbeddedSynapse, viewer: Person, user_id: str, device_id: str
) -> str:
    """The master key if ``device_id`` is cross-signed by its owner as ``viewer`` sees it."""
    keys = await synapse.request(
        "POST", "/_matrix/client/v3/keys/query", token=viewer.user.access_token,
        body={"device_keys": {user_id: []}},
    )
    master = keys["master_keys"][user_id]
    self_signing = keys["self_signing_keys"][user_id]
    device = keys["device_keys"][user_id][device_id]
    assert master["usage"] == ["master"] and self_signing["usage"] == ["self_signing"]
    assert _signed_by(self_signing, user_id, _only_key(master)), "self-signing key unsigned"
    assert _signed_by(device, user_id, _only_key(self_signing)), f"device {device_id} unsigned"
    return _only_key(master)


def device_of(bot: RunningBot) -> str:
    return str(bot.app.transport.client.device_id)  # type: ignore[attr-defined]


async def status_of(alice: Person, room: str) -> str:
    await alice.send(room, "!status")
    reply = await alice.wait_for_message(room, contains="Outbox:")
    return str(reply["content"]["body"])


async def test_a_new_bot_publishes_its_identity_signs_its_device_and_says_so(
    synapse: EmbeddedSynapse, bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    alice = await person_factory("Alice", e2e=False)
    bot = await bot_factory(roles={"admins": [alice.user_id]})
    device = device_of(bot)

    master = await trusted_device(synapse, alice, bot.user_id, device)

    room = await bring_bot_in(alice, bot)
    assert f"Device {device}: cross-signed." in await status_of(alice, room)
    # The private keys at rest open only with the configured secret.
    sealed = cross_signing.key_path(bot.setup.settings()).read_bytes()
    secret = bot.setup.values["matrix"]["cross_signing_key"]
    assert cross_signing.unseal(sealed, secret).public("master") == master
    assert master.encode() not in sealed


async def test_a_lost_crypto_store_gets_a_new_device_signed_by_the_same_identity(
    synapse: EmbeddedSynapse, bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    alice = await person_factory("Alice", e2e=False)
    bot = await bot_factory()
    first = device_of(bot)
    master = await trusted_device(synapse, alice, bot.user_id, first)

    await bot.stop()
    shutil.rmtree(bot.setup.data_dir / "crypto")
    await bot.start()

    second = device_of(bot)
    assert second != first
    assert await trusted_device(synapse, alice, bot.user_id, second) == master


async def test_a_lost_key_file_makes_a_new_identity_with_the_password(
    synapse: EmbeddedSynapse, bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    alice = await person_factory("Alice", e2e=False)
    bot = await bot_factory()
    old = await trusted_device(synapse, alice, bot.user_id, device_of(bot))

    await bot.stop()
    cross_signing.key_path(bot.setup.settings()).unlink()
    await bot.start()  # replacing published keys takes user-interactive auth

    new = await trusted_device(synapse, alice, bot.user_id, device_of(bot))
    assert new != old


async def test_with_only_an_access_token_status_says_what_to_do_and_nothing_breaks(
    synapse: EmbeddedSynapse, bot_factory: BotFactory, person_factory: PersonFactory
) -> None:
    alice = await person_factory("Alice", e2e=False)
    bot = await bot_factory(roles={"admins": [alice.user_id]})
    old = await trusted_device(synapse, alice, bot.user_id, device_of(bot))
    room = await bring_bot_in(alice, bot)

    await bot.stop()
    cross_signing.key_path(bot.setup.settings()).unlink()
    bot.setup.values["matrix"].update(password=None, access_token=bot.setup.user.access_token)
    await bot.start()

    status = await status_of(alice, room)
    assert f"Device {device_of(bot)}: NOT cross-signed" in status
    assert "start it once with GRAPEVINE_MATRIX__PASSWORD set" in status
    keys = await synapse.request(
        "POST", "/_matrix/client/v3/keys/query", token=alice.user.access_token,
        body={"device_keys": {bot.user_id: []}},
    )
    assert _only_key(keys["master_keys"][bot.user_id]) == old  # nothing replaced
