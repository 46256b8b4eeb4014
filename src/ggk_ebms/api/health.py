"""/health/live and /health/ready, and the heartbeat writer behind the worker check.

Ready means this endpoint can do its work now: the database answers, its schema is at the
migration head, every worker (of this process: its task is running; of any process: its
heartbeat is recent) is alive, and no CPA that has ended still has messages waiting to be sent
on it (they would only expire). Each check says why when it fails (docs/api.md, "Health").
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ggk_ebms.clock import Clock
from ggk_ebms.config import Settings
from ggk_ebms.store.db import Database
from ggk_ebms.store.heartbeats import Heartbeat, HeartbeatStore
from ggk_ebms.store.tables import cpa, job, message

log = logging.getLogger(__name__)

_CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def stale_heartbeats(beats: list[Heartbeat], now: datetime, interval: float) -> list[str]:
    """Workers whose last beat is older than three intervals (one missed beat is not death)."""
    limit = timedelta(seconds=3 * interval)
    return [
        f"{b.kind} {b.name}: last beat {int((now - b.beat_at).total_seconds())} s ago"
        for b in beats
        if now - b.beat_at > limit
    ]


def _expired_in_use(database: Database, now: datetime) -> list[str]:
    busy = sa.exists().where(
        job.c.message_pk == message.c.pk,
        job.c.status.in_(("pending", "running")),
        message.c.cpa_id == cpa.c.cpa_id,
    )
    with database.session() as session:
        rows = session.execute(sa.select(cpa.c.cpa_id).where(cpa.c.end_at < now, busy)).scalars().all()
    return [str(r) for r in rows]


def _store_checks(database: Database, settings: Settings, now: datetime) -> list[Check]:
    try:
        database.ping()
    except Exception as exc:
        return [Check("database", False, f"not reachable: {type(exc).__name__}")]
    checks = [Check("database", True, "reachable")]
    try:
        current, head = database.current_revision(), database.head_revision()
        checks.append(
            Check(
                "migrations",
                current == head,
                f"at {current}" + ("" if current == head else f", head is {head}"),
            )
        )
        stale = stale_heartbeats(HeartbeatStore(database).all(), now, settings.api_heartbeat_seconds)
        checks.append(Check("heartbeats", not stale, "; ".join(stale) or "all recent"))
        expired = _expired_in_use(database, now)
        checks.append(
            Check(
                "cpas",
                not expired,
                ("ended CPAs with messages waiting: " + ", ".join(expired))
                if expired
                else "none ended in use",
            )
        )
    except Exception as exc:
        checks.append(Check("database", False, f"query failed: {type(exc).__name__}"))
    return checks


async def readiness(
    database: Database, settings: Settings, now: datetime, workers: list[asyncio.Task[None]]
) -> list[Check]:
    try:
        checks = await asyncio.wait_for(
            asyncio.to_thread(_store_checks, database, settings, now), timeout=_CHECK_TIMEOUT
        )
    except TimeoutError:
        checks = [Check("database", False, f"no answer within {_CHECK_TIMEOUT:.0f} s")]
    dead = [t.get_name() for t in workers if t.done()]
    checks.append(
        Check("workers", not dead, ("stopped: " + ", ".join(dead)) if dead else f"{len(workers)} running")
    )
    return checks


def as_body(checks: list[Check]) -> dict[str, Any]:
    ok = all(c.ok for c in checks)
    return {"status": "ready" if ok else "not ready", "checks": [asdict(c) for c in checks]}


def worker_kind(worker: Callable[..., Any]) -> str:
    return getattr(worker, "__qualname__", "worker").split(".")[0].removesuffix("_task")


def heartbeat_task(
    settings: Settings, clock: Clock, tasks: Callable[[], list[asyncio.Task[None]]]
) -> Callable[[Database], Coroutine[Any, Any, None]]:
    """A background task that beats for every running worker task of this process.

    Named by host and worker kind (not by process id), so a restarted server takes over its
    predecessor's row instead of leaving a dead one behind.
    """
    host = socket.gethostname()

    async def run(database: Database) -> None:
        store = HeartbeatStore(database, clock)
        names: set[str] = set()
        try:
            while True:
                for task in tasks():
                    if task.done():
                        continue
                    name = f"{host}/{task.get_name()}"
                    try:
                        await asyncio.to_thread(store.beat, name, task.get_name())
                        names.add(name)
                    except Exception as exc:
                        log.warning("heartbeat of %s not written: %s", name, type(exc).__name__)
                await asyncio.sleep(settings.api_heartbeat_seconds)
        finally:
            for name in names:
                try:
                    await asyncio.shield(asyncio.to_thread(store.forget, name))
                except Exception:  # shutting down with the database away: the row goes stale
                    log.info("heartbeat row %s left behind", name)

    return run
