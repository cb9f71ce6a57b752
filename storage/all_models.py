"""Imports every storage module, so Base.metadata holds every feature's tables.

Modules are discovered rather than listed, so a feature adds tables by adding a file.
"""

import pkgutil
from importlib import import_module

import storage

for _info in sorted(pkgutil.iter_modules(storage.__path__), key=lambda i: i.name):
    if not _info.name.startswith("_") and _info.name not in {"all_models", "revision"}:
        import_module(f"storage.{_info.name}")
