"""Render Synapse's homeserver.yaml from the template, then start Synapse.

Synapse reads no environment variables in its config file, and it refuses to
start when a listed app service registration file is missing. So, inside the
Synapse container and before the image's own ``/start.py``, this script:

1. replaces ``${VAR}`` in every string of ``homeserver.yaml`` with the
   environment (secrets stay in the .env file, never in the repository), and
   stops with one line per unset variable;
2. copies each bridge's ``registration.yaml`` that exists (a bridge not yet set
   up simply has none) into Synapse's data directory, readable only by Synapse,
   and lists those copies in ``app_service_config_files``.

Runs on the image's Python with only the standard library and PyYAML.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# The user the Synapse image drops to (its start.py defaults to 991:991).
DEFAULT_OWNER = (991, 991)


class MissingVariables(Exception):
    """Names of environment variables the template needs but that are unset or empty."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(", ".join(names))


def substitute(node: Any, env: Mapping[str, str], missing: set[str]) -> Any:
    """Fill ``${VAR}`` in strings (keys included), recording names that are unset."""
    if isinstance(node, str):

        def fill(match: re.Match[str]) -> str:
            value = env.get(match.group(1), "")
            if not value:
                missing.add(match.group(1))
            return value

        return PLACEHOLDER.sub(fill, node)
    if isinstance(node, list):
        return [substitute(item, env, missing) for item in node]
    if isinstance(node, dict):
        return {
            substitute(key, env, missing): substitute(value, env, missing)
            for key, value in node.items()
        }
    return node


def render(template: str, env: Mapping[str, str], appservice_files: list[str]) -> dict[str, Any]:
    """The final config as a dict; raises MissingVariables naming every unset variable."""
    missing: set[str] = set()
    config = substitute(yaml.safe_load(template), env, missing)
    if missing:
        raise MissingVariables(sorted(missing))
    config["app_service_config_files"] = appservice_files
    return dict(config)


def install_registrations(
    bridges_dir: Path, dest_dir: Path, owner: tuple[int, int] | None
) -> list[str]:
    """Copy ``<bridges_dir>/<bridge>/registration.yaml`` to ``<dest_dir>/<bridge>.yaml``.

    Copies, not references: the bridges write theirs mode 0600 as their own user,
    which Synapse's user cannot read.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    installed = []
    for source in sorted(bridges_dir.glob("*/registration.yaml")):
        target = dest_dir / f"{source.parent.name}.yaml"
        shutil.copyfile(source, target)
        target.chmod(0o600)
        if owner is not None:
            os.chown(target, *owner)
        installed.append(str(target))
    return installed


def write_config(config: dict[str, Any], output: Path, owner: tuple[int, int] | None) -> None:
    """Write with mode 0600: the file holds the database password and signing secrets.

    The directory is handed to Synapse's user too: on a fresh volume it belongs to
    root, and Synapse must create its signing key and media store there.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(output.parent, *owner)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Generated from config/deploy/homeserver.yaml at container start.\n")
        handle.write("# Edit the template, not this file: it is overwritten on every start.\n")
        yaml.safe_dump(config, handle, sort_keys=False)
    if owner is not None:
        os.chown(output, *owner)


def synapse_owner(env: Mapping[str, str]) -> tuple[int, int] | None:
    """The uid:gid Synapse will run as, when this script runs as root (as in the image)."""
    if os.geteuid() != 0:
        return None
    uid = int(env.get("UID", DEFAULT_OWNER[0]))
    return uid, int(env.get("GID", DEFAULT_OWNER[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("/deploy/homeserver.yaml"))
    parser.add_argument("--output", type=Path, default=Path("/data/homeserver.yaml"))
    parser.add_argument("--bridges", type=Path, default=Path("/bridges"))
    parser.add_argument("--appservices", type=Path, default=Path("/data/appservices"))
    parser.add_argument("command", nargs=argparse.REMAINDER, help="what to exec afterwards")
    args = parser.parse_args(argv)

    owner = synapse_owner(os.environ)
    registrations = install_registrations(args.bridges, args.appservices, owner)
    try:
        config = render(args.template.read_text(encoding="utf-8"), os.environ, registrations)
    except MissingVariables as exc:
        for name in exc.names:
            print(f"{args.template}: ${{{name}}} is not set in the environment", file=sys.stderr)
        return 2
    write_config(config, args.output, owner)
    print(f"Rendered {args.output} with {len(registrations)} app service(s): {registrations}")
    if args.command:
        sys.stdout.flush()
        os.execvp(args.command[0], args.command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
