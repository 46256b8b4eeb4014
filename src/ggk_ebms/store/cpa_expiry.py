"""Expiry of the stored CPAs and their certificates, for ``config check``, ``cpa list`` and the log.

The rule itself is pure (``cpa.hygiene.expiries``); this adapter reads the stored CPAs and says it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ggk_ebms.config import Settings
from ggk_ebms.cpa.hygiene import ERROR, Expiry, expiries
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database

log = logging.getLogger(__name__)


def stored_expiries(settings: Settings, database: Database, now: datetime) -> list[Expiry]:
    """Every expired or soon-expiring CPA and certificate among the stored CPAs."""
    found: list[Expiry] = []
    for entry in CpaRepository(database).list():
        try:
            agreement = parse_agreement(entry.raw, max_bytes=max(settings.max_cpa_bytes, len(entry.raw)))
        except GgkEbmsError as exc:
            log.warning("CPA %s cannot be read to check its expiry: %s", entry.cpa_id, exc)
            continue
        found.extend(expiries(agreement, now, settings.expiry_warning_days))
    return found


def log_expiries(settings: Settings, database: Database, now: datetime) -> list[Expiry]:
    """Log each expiry (ERROR once passed, WARNING before) and return them."""
    found = stored_expiries(settings, database, now)
    for expiry in found:
        level = logging.ERROR if expiry.level == ERROR else logging.WARNING
        log.log(level, "%s", expiry.describe(now))
    return found
