"""The ``grapevine`` command line: run, demo, shell, migrate, check-config, import-grants,
export-directory and import-directory."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from config.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from uuid import UUID

    from config.areas import AreaIndex
    from config.themes import Theme


def _settings(path: Path | None, *, runtime: bool) -> Settings | None:
    """Load and check a config; print every problem, one line each, naming the key."""
    try:
        settings = load_settings(path)
        if runtime:
            settings.require_runtime_secrets()
            from config.areas import AreaFileError, AreaIndex

            try:
                AreaIndex.load(settings.areas.file)
            except AreaFileError as exc:
                raise ConfigError([f"areas.file: {exc}"]) from None
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    return settings


# Libraries that narrate their own workings at INFO (a line per scheduled job, per
# migration step): a deployer sees our one line per event instead; -v shows theirs.
CHATTY = ("apscheduler", "alembic", "aiohttp.access")


def _logging(verbose: bool, quiet: bool = False) -> None:
    """One INFO line per significant event (logged in, running, in sync, joined, a command
    failed, a send retried), the rest at DEBUG; ``-v`` shows everything."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    # nio logs event contents at debug level: keep message text out of logs.
    logging.getLogger("nio").setLevel(logging.ERROR)
    logging.getLogger("peewee").setLevel(logging.WARNING)
    from bot.logfilter import install

    install()  # message bodies and command lines never reach the log


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args.config, runtime=True)
    if settings is None:
        return 2
    for warning in settings.runtime_warnings():
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: ok")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args.config, runtime=False)
    if settings is None:
        return 2

    async def go() -> str:
        from storage.engine import Database
        from storage.migrate import current_heads, upgrade

        db = Database(settings.database_url)
        try:
            await upgrade(db.engine)
            return ", ".join(await current_heads(db.engine))
        finally:
            await db.close()

    print(f"database at revision {asyncio.run(go())}")
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args.config, runtime=True)
    if settings is None:
        return 2
    _logging(args.verbose)
    from bot.runtime.login import LoginFailed
    from bot.service import Service
    from storage.lock import AlreadyRunning

    async def go() -> int:
        service = Service(settings, clock=args.clock)
        try:
            await service.start()
        except AlreadyRunning as exc:
            print(str(exc), file=sys.stderr)
            return 3
        except LoginFailed as exc:
            print(f"matrix: {exc}", file=sys.stderr)
            return 4
        await service.run_forever()
        return 0

    return asyncio.run(go())


def _shell(args: argparse.Namespace) -> int:
    from bot.shell import run_shell

    settings = _settings(args.config, runtime=False) if args.config else None
    if args.config and settings is None:
        return 2
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(run_shell(settings))


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    _logging(args.verbose, quiet=True)  # the story is the output; -v shows the logs
    return asyncio.run(run_demo(args.data_dir, once=args.once))


def _import_grants(args: argparse.Namespace) -> int:
    settings = _settings(args.config, runtime=False)
    if settings is None:
        return 2
    from bot.features.grants_import import import_grants
    from storage.engine import Database
    from storage.migrate import upgrade

    async def go() -> int:
        db = Database(settings.database_url)
        try:
            await upgrade(db.engine)
            return await import_grants(db, args.file)
        finally:
            await db.close()

    try:
        count = asyncio.run(go())
    except (OSError, ValueError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    print(f"imported {count} grants from {args.file}")
    return 0


def _directory_context(settings: Settings) -> tuple[AreaIndex, tuple[Theme, ...], UUID]:
    """The areas, themes and id namespace both directory commands map with."""
    from bot.features.oruk_export import deployment_namespace
    from config.areas import AreaIndex
    from config.themes import load_themes

    return (AreaIndex.load(settings.areas.file), load_themes(),
            deployment_namespace(settings.matrix.server_name))


def _export_directory(args: argparse.Namespace) -> int:
    """Listed groups as Open Referral UK JSON, validated before a byte is written."""
    settings = _settings(args.config, runtime=False)
    if settings is None:
        return 2
    from bot.features.oruk_export import ExportInvalid, build_export, render, write_atomically
    from storage.engine import Database
    from storage.migrate import upgrade

    areas, themes, namespace = _directory_context(settings)

    async def go() -> list[dict[str, Any]]:
        db = Database(settings.database_url)
        try:
            await upgrade(db.engine)
            return await build_export(db, areas, themes, namespace)
        finally:
            await db.close()

    try:
        document = asyncio.run(go())
    except ExportInvalid as exc:
        print(f"export-directory: not valid Open Referral UK, nothing written: {exc}",
              file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(render(document))
    else:
        write_atomically(args.out, render(document))
        print(f"exported {len(document)} listed groups to {args.out}", file=sys.stderr)
    return 0


def _import_directory(args: argparse.Namespace) -> int:
    """An ORUK file into unclaimed listings; a bad file changes nothing and gets one line."""
    settings = _settings(args.config, runtime=False)
    if settings is None:
        return 2
    from bot.clock import SystemClock
    from bot.features.oruk_export import own_service_ids
    from bot.features.oruk_import import (
        DirectoryFileError,
        ImportResult,
        import_listings,
        load_file,
        read_listings,
    )
    from storage.engine import Database
    from storage.migrate import upgrade

    areas, themes, namespace = _directory_context(settings)
    clock = args.clock or SystemClock()

    async def go() -> ImportResult:
        items = read_listings(load_file(args.file), areas, themes)
        db = Database(settings.database_url)
        try:
            await upgrade(db.engine)
            own = await own_service_ids(db, namespace)
            return await import_listings(db, items, args.file.name, clock.now(), own)
        finally:
            await db.close()

    try:
        result = asyncio.run(go())
    except DirectoryFileError as exc:
        print(f"{args.file}: {exc}; nothing was imported.", file=sys.stderr)
        return 2
    print(f"{args.file}: {result.added} new listings, {result.updated} updated, "
          f"{result.unchanged} unchanged"
          + (f", {result.skipped_own} of our own groups skipped" if result.skipped_own else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grapevine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, func: object, config: bool | None = True
                ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        if config is not None:
            p.add_argument("-c", "--config", type=Path, required=config)
        p.add_argument("-v", "--verbose", action="store_true")
        p.set_defaults(func=func)
        return p

    command("run", "run the bot against a homeserver (production)", _run)
    command("migrate", "bring the database schema up to date", _migrate)
    command("check-config", "check a config file and the environment", _check_config)
    command("shell", "type commands as anyone, anywhere, with no homeserver", _shell,
            config=False)
    demo = command("demo", "everything on one machine: embedded Synapse, SQLite, the bot",
                   _demo, config=None)
    demo.add_argument("--data-dir", type=Path, default=Path("demo-data"))
    demo.add_argument("--once", action="store_true", help="exit when the scenario is done")
    grants = command("import-grants", "import past grants (360Giving JSON or CSV)",
                     _import_grants)
    grants.add_argument("file", type=Path)
    export = command("export-directory", "write the listed groups as Open Referral UK JSON",
                     _export_directory)
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    imported = command("import-directory",
                       "read an Open Referral UK file into unclaimed listings (L<n>)",
                       _import_directory)
    imported.add_argument("file", type=Path)
    return parser


def main(argv: list[str] | None = None, *, clock: Clock | None = None) -> int:
    """``clock`` replaces the system clock (tests run ``grapevine run`` on their own clock)."""
    args = build_parser().parse_args(argv)
    args.clock = clock
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
