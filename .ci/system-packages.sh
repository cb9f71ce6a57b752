#!/usr/bin/env sh
# Debian packages the tests need beyond Python: openssl makes the throwaway CA that
# the two federating test homeservers trust (tests/integration/twoservers.py).
# Idempotent: installs only what is missing (as root, as CI runs; otherwise says what to do).
set -eu
if command -v openssl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "The tests need the openssl command: sudo apt-get install -y openssl" >&2
    exit 1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends openssl
