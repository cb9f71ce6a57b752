"""Run a benchmark: ``python -m bench NAME [args]`` (``make bench ARGS="latency"``).

Benchmarks are never part of the test suite; their figures live in bench/README.md.
"""

from __future__ import annotations

import pkgutil
import runpy
import sys

import bench


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                   if not m.name.startswith("_") and not m.name.endswith("_common"))
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        print("usage: python -m bench NAME [args]\nbenchmarks: " + ", ".join(names))
        return 2
    name = sys.argv.pop(1)
    sys.argv[0] = f"bench.{name}"
    runpy.run_module(f"bench.{name}", run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
