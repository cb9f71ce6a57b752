"""Imports every module that defines tables, so Base.metadata is complete.

A feature that adds a storage module adds one line to MODULES.
"""

from importlib import import_module

MODULES = (
    "storage.models",
    "storage.groups",
)

for _name in MODULES:
    import_module(_name)
