"""The features: every module in this package is one. Importing it registers its
commands; its optional ``install(app)`` wires hooks and scheduled jobs.

Modules are discovered rather than listed, so adding a feature is adding a file.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.host import Host


def feature_modules() -> list[str]:
    return sorted(
        f"{__name__}.{info.name}"
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    )


def install_all(app: Host) -> None:
    for name in feature_modules():
        install = getattr(import_module(name), "install", None)
        if install is not None:
            install(app)
