"""Operator changes to the exchanges, kept per exchange key and setting name.

Only changes are stored: the shipped defaults (``exchanges.model.default_exchanges``) stay in code,
so a new release that adds an exchange needs no data migration, and ``exchanges show`` can tell
which values are an operator's (docs/exchanges.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import sqlalchemy as sa

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.exchanges.model import FIELDS, ExchangeSet, apply_changes, default_exchanges, with_changes
from ggk_ebms.exchanges.rules import Rules
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import exchange_setting

log = logging.getLogger(__name__)


class ExchangeStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def changes(self) -> dict[str, dict[str, str | None]]:
        """Stored changes: exchange key -> setting name -> value as text."""
        with self.db.session() as session:
            rows = session.execute(
                sa.select(exchange_setting.c.exchange_key, exchange_setting.c.name, exchange_setting.c.value)
            ).all()
        result: dict[str, dict[str, str | None]] = {}
        for key, name, value in rows:
            result.setdefault(key, {})[name] = value
        return result

    def current(self) -> tuple[ExchangeSet, list[str]]:
        """The exchanges in force and the problems with stored changes that no longer apply."""
        return with_changes(default_exchanges(), self.changes())

    def set(self, key: str, changes: Mapping[str, str | None]) -> None:
        """Check ``changes`` against the exchange ``key`` (ValueError) and store them in one go."""
        exchanges, _ = self.current()
        exchange = exchanges.get(key)
        if exchange is None:
            raise ValueError(f"no exchange {key!r}; `ggk-ebms exchanges list` shows them")
        apply_changes(exchange, changes)  # refuses a bad value before anything is written
        now = self.clock.now()
        with self.db.session() as session:
            for name, value in changes.items():
                assert name in FIELDS  # apply_changes checked it
                session.execute(
                    sa.delete(exchange_setting).where(
                        exchange_setting.c.exchange_key == exchange.key, exchange_setting.c.name == name
                    )
                )
                session.execute(
                    sa.insert(exchange_setting).values(
                        exchange_key=exchange.key, name=name, value=value, updated_at=now
                    )
                )

    def reset(self, key: str) -> int:
        """Forget every change to exchange ``key``: back to the shipped default. Returns rows removed."""
        exchanges, _ = self.current()
        exchange = exchanges.get(key)
        if exchange is None:
            raise ValueError(f"no exchange {key!r}; `ggk-ebms exchanges list` shows them")
        with self.db.session() as session:
            removed = len(
                session.execute(
                    sa.select(exchange_setting.c.pk).where(exchange_setting.c.exchange_key == exchange.key)
                ).all()
            )
            session.execute(
                sa.delete(exchange_setting).where(exchange_setting.c.exchange_key == exchange.key)
            )
        return removed


def load_rules(settings: Settings, db: Database) -> Rules:
    """The rules in force: stored exchanges plus the gemeentecode settings (logs stale changes)."""
    exchanges, problems = ExchangeStore(db).current()
    for problem in problems:
        log.warning("%s", problem)
    return Rules.of(exchanges, settings.served_gemeentecodes, settings.test_gemeentecodes)
