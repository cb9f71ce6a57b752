"""The layering in architecture.ini is enforced: `make test`'s lint step fails on a
forbidden import. Proved on a copy of the source tree, never on the real one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "bridges", "storage", "reach", "config")
VENV = Path(sys.executable).parent.parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("Makefile", "architecture.ini", "pyproject.toml"):
        shutil.copy2(REPO / name, root / name)
    return root


def make_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """The import check exactly as `make lint` (and so `make test`) runs it, on the shared
    venv; ``-o`` keeps make from re-installing that venv for the copied pyproject."""
    stamp = VENV / ".installed-stamp"
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(root), f"VENV={VENV}", "-o", str(stamp),
         "imports"],
        capture_output=True, text=True, timeout=120,
    )


def add_module(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.write_text(source)
    return path


def test_the_real_tree_keeps_every_contract(tree: Path) -> None:
    result = make_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("relative", "source", "refusal"),
    [
        # A feature typing against the router instead of bot.host.Host.
        ("bot/features/sneaky.py",
         "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
         "if TYPE_CHECKING:\n    from bot.app import Grapevine\n",
         "bot.features is not allowed to import bot.app"),
        # Storage deciding with a feature's rules.
        ("storage/sneaky.py", "from bot.features import matching\n",
         "storage is not allowed to import bot"),
        # A bridge reaching up into the bot.
        ("bridges/sneaky.py", "import bot.voice\n", "bridges is not allowed to import bot"),
        # The reach model touching the database.
        ("reach/sneaky.py", "from storage import flow\n",
         "reach is not allowed to import storage"),
        # Config depending on anything of ours.
        ("config/sneaky.py", "from storage.engine import Database\n",
         "config is not allowed to import storage"),
    ],
)
def test_a_forbidden_import_fails_the_lint_step(tree: Path, relative: str, source: str,
                                                refusal: str) -> None:
    added = add_module(tree, relative, source)
    try:
        result = make_imports(tree)
    finally:
        added.unlink()
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert refusal in result.stdout
    assert f"{relative[:-3].replace('/', '.')} -> " in result.stdout


def test_an_import_circle_fails_the_lint_step(tree: Path) -> None:
    added = [add_module(tree, "storage/circle_a.py", "from storage import circle_b\n"),
             add_module(tree, "storage/circle_b.py", "from storage import circle_a\n")]
    try:
        result = make_imports(tree)
    finally:
        for path in added:
            path.unlink()
    assert result.returncode != 0
    assert "No cycles are allowed in storage" in result.stdout
    assert ".circle_a -> .circle_b" in result.stdout or ".circle_b -> .circle_a" in result.stdout


def test_the_command_framework_may_not_type_its_way_back_into_a_circle(tree: Path) -> None:
    """The contract allows no exception (no ``ignore_imports``): a parser naming the
    whole Context again, even for typing only, is the old circle and fails."""
    assert "ignore_imports" not in (tree / "architecture.ini").read_text()
    values = tree / "bot/commands/values.py"
    original = values.read_text()
    values.write_text(original + "\nif TYPE_CHECKING:\n"
                      "    from bot.commands.context import Context  # noqa: F401\n")
    try:
        result = make_imports(tree)
    finally:
        values.write_text(original)
    assert result.returncode != 0
    assert "No cycles are allowed in bot.commands" in result.stdout
