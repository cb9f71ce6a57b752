"""Only the bot's clock reads the wall clock: every other part asks it.

A part that read the wall clock itself would disagree with a moved clock, and the
tests that move it (tests/clocks.py) would pass only at some hours of the day.
Monotonic timers (``time.monotonic()``, the event loop's ``loop.time()``: timeouts,
backoff, rate of progress) are not wall-clock time and are allowed anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "bridges", "storage", "reach", "config")
# module: why it may read the wall clock.
ALLOWED = {
    "bot/clock.py": "SystemClock is the one place production time comes from",
    "bot/demo.py": "the demo's stand-in funder dates its feed, and picks a daytime zone, "
                   "by the real time it is shown at",
}
# (object, attribute) calls that read the wall clock.
WALL = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
        ("date", "today"), ("time", "time"), ("time", "time_ns"), ("time", "localtime"),
        ("time", "gmtime"), ("time", "ctime")}


def wall_clock_reads(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else \
                owner.id if isinstance(owner, ast.Name) else ""
            if (name, node.func.attr) in WALL:
                lines.append(node.lineno)
    return lines


def test_the_check_finds_each_way_of_reading_the_wall_clock() -> None:
    source = ("datetime.now(UTC)\ndatetime.datetime.utcnow()\ndate.today()\ntime.time()\n"
              "asyncio.get_running_loop().time()\nloop.time()\ntime.monotonic()\n"
              "self.clock.now()\n")
    assert wall_clock_reads(ast.parse(source)) == [1, 2, 3, 4]


def test_nothing_but_the_clock_reads_the_wall_clock() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            if module in ALLOWED:
                continue
            found += [f"{module}:{line}"
                      for line in wall_clock_reads(ast.parse(path.read_text()))]
    assert found == [], "read the injected clock (app.clock / ctx.now) instead"


def test_every_allowed_module_still_exists() -> None:
    assert all((ROOT / module).is_file() for module in ALLOWED)
