"""The cross-signing keys at rest and the warnings check-config gives about them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vodozemac import Ed25519PublicKey, Ed25519Signature

from bot.runtime import cross_signing

REPO = Path(__file__).resolve().parents[2]


def test_the_key_file_opens_only_with_its_secret_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / cross_signing.KEY_FILE
    made = cross_signing.load_or_create(path, "a long random secret")
    again = cross_signing.load_or_create(path, "a long random secret")

    assert [again.public(u) for u in cross_signing.USAGES] == [
        made.public(u) for u in cross_signing.USAGES
    ]
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(cross_signing.SealedKeysUnreadable):
        cross_signing.load_or_create(path, "another secret")
    assert cross_signing.unseal(path.read_bytes(), "a long random secret").public("master") == (
        made.public("master")
    )


def test_sub_keys_carry_a_master_signature_other_clients_accept() -> None:
    identity = cross_signing.Identity.generate()
    obj = cross_signing.key_object(identity, "@bot:example.org", "self_signing")
    master = identity.public("master")
    signature = obj["signatures"]["@bot:example.org"][f"ed25519:{master}"]
    signed_part = {k: v for k, v in obj.items() if k != "signatures"}
    message = json.dumps(signed_part, sort_keys=True, separators=(",", ":")).encode()

    Ed25519PublicKey.from_base64(master).verify_signature(
        message, Ed25519Signature.from_base64(signature)
    )
    assert obj["keys"] == {f"ed25519:{identity.public('self_signing')}":
                           identity.public("self_signing")}


def check_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "grapevine.toml"
    config.write_text('[matrix]\nuser_id = "@bot:example.org"\n')
    base = {"PATH": "/usr/bin:/bin", "GRAPEVINE_PRIVACY__PSEUDONYM_SECRET": "pepper"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", "-c", str(config)],
        cwd=REPO, capture_output=True, text=True, env={**base, **env},
    )


def test_check_config_says_what_to_set_for_cross_signing(tmp_path: Path) -> None:
    missing = check_config(tmp_path, {"GRAPEVINE_MATRIX__PASSWORD": "pw"})
    token_only = check_config(tmp_path, {"GRAPEVINE_MATRIX__ACCESS_TOKEN": "syt_x",
                                         "GRAPEVINE_MATRIX__CROSS_SIGNING_KEY": "k"})
    complete = check_config(tmp_path, {"GRAPEVINE_MATRIX__PASSWORD": "pw",
                                       "GRAPEVINE_MATRIX__CROSS_SIGNING_KEY": "k"})

    assert missing.returncode == token_only.returncode == complete.returncode == 0
    assert missing.stderr.startswith("warning: matrix.cross_signing_key: not set")
    assert "GRAPEVINE_MATRIX__CROSS_SIGNING_KEY" in missing.stderr
    assert token_only.stderr.startswith("warning: matrix.password: only an access token")
    assert "GRAPEVINE_MATRIX__PASSWORD" in token_only.stderr
    assert complete.stderr == ""
