"""The features. Importing a module registers its commands; ``install`` wires its hooks."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import Grapevine

MODULES = ("bot.features.general", "bot.features.roles")


def install_all(app: Grapevine) -> None:
    for name in MODULES:
        module = import_module(name)
        install = getattr(module, "install", None)
        if install is not None:
            install(app)
