"""The routing table in force, kept as the routes.toml text it was imported from.

The TOML is the one description of the routes (docs/stuf-routing.md); storing its text rather than
a second, relational copy means the table in the database is always one that ``parse_routes``
accepted, with the same line-level errors. Importing inserts a new row in one transaction: the
newest row is the table in force, so an import replaces it atomically and earlier tables stay for
the record.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.routing.load import parse_routes
from ggk_ebms.routing.table import RoutingTable
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import route_set


@dataclass(frozen=True)
class StoredRouteSet:
    pk: int
    source: str
    base_dir: str | None
    text: str
    sha256: str
    route_count: int
    imported_at: datetime

    def table(self) -> RoutingTable:
        """Parse the stored text again (it was accepted when imported)."""
        base = Path(self.base_dir) if self.base_dir else None
        return parse_routes(self.text, source=self.source, base_dir=base)


def _row(row: sa.Row[Any]) -> StoredRouteSet:
    return StoredRouteSet(**dict(row._mapping))


class RouteStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def replace(
        self, text: str, *, source: str, base_dir: Path | None
    ) -> tuple[StoredRouteSet, RoutingTable]:
        """Validate ``text`` (``ConfigError`` with every line-level error) and make it the table in force."""
        table = parse_routes(text, source=source, base_dir=base_dir)
        with self.db.session() as session:
            row = session.execute(
                sa.insert(route_set)
                .values(
                    source=source,
                    base_dir=None if base_dir is None else str(base_dir.resolve()),
                    text=text,
                    sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    route_count=len(table.routes),
                    imported_at=self.clock.now(),
                )
                .returning(*route_set.c)
            ).one()
        return _row(row), table

    def current(self) -> StoredRouteSet | None:
        with self.db.session() as session:
            row = session.execute(sa.select(route_set).order_by(route_set.c.pk.desc()).limit(1)).first()
        return None if row is None else _row(row)

    def history(self, limit: int = 20) -> builtins.list[StoredRouteSet]:
        with self.db.session() as session:
            rows = session.execute(sa.select(route_set).order_by(route_set.c.pk.desc()).limit(limit)).all()
        return [_row(row) for row in rows]
