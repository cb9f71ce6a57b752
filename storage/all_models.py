"""Imports every module that defines tables, so Base.metadata is complete.

A feature that adds a models module adds one import line here.
"""

from storage import models  # noqa: F401
