"""Worker heartbeats: each running worker writes its time here; /health/ready reads them."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import worker_heartbeat


@dataclass(frozen=True)
class Heartbeat:
    name: str
    kind: str
    beat_at: datetime


class HeartbeatStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def beat(self, name: str, kind: str) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            updated = session.execute(
                sa.update(worker_heartbeat)
                .where(worker_heartbeat.c.name == name)
                .values(kind=kind, beat_at=now)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.execute(sa.insert(worker_heartbeat).values(name=name, kind=kind, beat_at=now))

    def forget(self, name: str) -> None:
        """A worker that stops on purpose removes its row, so it is not reported as dead."""
        with self.db.session() as session:
            session.execute(sa.delete(worker_heartbeat).where(worker_heartbeat.c.name == name))

    def all(self) -> builtins.list[Heartbeat]:
        with self.db.session() as session:
            rows = session.execute(sa.select(worker_heartbeat).order_by(worker_heartbeat.c.name)).all()
        return [Heartbeat(row.name, row.kind, row.beat_at) for row in rows]
