#!/usr/bin/env bash
# The real IRC bridge and IRC server that tests/integration/test_irc.py runs:
# ngircd from Debian, heisenbridge from PyPI in its own virtualenv (its
# dependencies, mautrix among them, stay out of the project's). Pinned and
# idempotent: a second run changes nothing and takes a moment.
set -euo pipefail
cd "$(dirname "$0")/../.."

NGIRCD_VERSION="26.1-1+deb12u1"
HEISENBRIDGE_VERSION="1.15.4"
VENV="${GRAPEVINE_HEISENBRIDGE_VENV:-.venv-heisenbridge}"
PYTHON="${PYTHON:-python3}"

if [ "$(dpkg-query -W -f='${Version}' ngircd 2>/dev/null || true)" != "$NGIRCD_VERSION" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "ngircd=$NGIRCD_VERSION"
fi

if [ "$("$VENV/bin/python" -m heisenbridge --version 2>/dev/null || true)" != "$HEISENBRIDGE_VERSION" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "heisenbridge==$HEISENBRIDGE_VERSION"
fi
