"""!volunteer: a pool of ready-to-go volunteers shared between groups, matched by command.

Profiles live only in DMs (the profile commands are ``personal``: redacted once
stored, answered by DM). Groups ask in their own room; offers go by DM with an
expiry; places are taken atomically (storage.volunteers.take_place). A host
learns a volunteer's Matrix id only when they accept, and about DBS only that
they "meet the DBS requirement". Reminders are sweeps over rows, keyed by an
outbox dedupe key, so a sweep run twice or late sends each reminder once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Imported in this order so the commands register (and !help lists them) as they always have.
# isort: off
from bot.features.volunteers import profiles
from bot.features.volunteers import requests
from bot.features.volunteers import offers
from bot.features.volunteers import certificate
from bot.features.volunteers import sweeps
# isort: on
from bot.features.volunteers.sweeps import jobs, sweep

if TYPE_CHECKING:
    from bot.host import Host

__all__ = ["certificate", "install", "jobs", "offers", "profiles", "requests", "sweep", "sweeps"]


def install(app: Host) -> None:
    """Schedule the sweep: offers expire and reminders go out only because it runs."""
    for job in jobs(app):
        app.add_job(job)  # ignored where nothing is scheduled (shell, fast tests)
