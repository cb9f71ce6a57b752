"""The ``grapevine`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.settings import ConfigError, load_settings


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        settings.require_runtime_secrets()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    print(f"{args.config}: ok")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grapevine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="check a config file and the environment")
    check.add_argument("-c", "--config", type=Path, required=True)
    check.set_defaults(func=_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
