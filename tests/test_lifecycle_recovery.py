"""Recovery: a delivery worker killed with -9 in the middle of a delivery loses its job to
another worker once its heartbeat lease (job_lease_seconds, 20 s by default) has lapsed: well
within 30 s of the kill, where it used to take the whole 10-minute lease.

Real parts: two ``ggk-ebms worker`` processes, a real HTTP target that holds the first request
open (the delivery is in flight when the kill comes), and the database of the test (SQLite and
PostgreSQL). The test waits by polling with a generous deadline, never by sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ggk_ebms.config import Settings
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore
from tests.endpoint import cpa_folder, party_settings
from tests.http_target import BV03_SOAP, LoopbackTarget
from tests.outbound_support import WorkerProcess
from tests.process import write_settings
from tests.test_delivery_worker import envelope, http_routes, receive, use_routes

pytestmark = pytest.mark.slow


class HoldingTarget(LoopbackTarget):
    """An HTTP target that keeps its first request open until the test ends, answers the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.first_arrived = threading.Event()
        self._release: asyncio.Event | None = None

    def prepare(self) -> None:
        self._release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests += 1
        if self.requests == 1:
            self.first_arrived.set()
            assert self._release is not None
            await self._release.wait()  # the worker that sent this is killed meanwhile
        return web.Response(text=BV03_SOAP, content_type="text/xml")

    def __exit__(self, *exc: object) -> None:
        assert self._release is not None
        self._loop.call_soon_threadsafe(self._release.set)
        super().__exit__(*exc)


def _poll(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        threading.Event().wait(0.2)


def test_kill_9_during_delivery_is_taken_over_after_the_lease(tmp_path: Path, db_url: str) -> None:
    settings = party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        worker_poll_seconds=0.2,
        http_timeout=300.0,  # the held request would outlive any lease; only the heartbeat keeps it
    )
    assert settings.job_lease_seconds == Settings().job_lease_seconds == 20.0  # the default
    database = Database(settings.database_url)
    database.upgrade()
    config = write_settings(settings, tmp_path / "worker.toml")
    first = WorkerProcess(config, tmp_path / "first.log")
    second = WorkerProcess(config, tmp_path / "second.log")
    try:
        with HoldingTarget() as target:
            use_routes(database, http_routes(target.url), tmp_path)
            pk = receive(database, envelope())
            first.start()
            assert target.first_arrived.wait(60), "the first worker never started the delivery"
            jobs = JobQueue(database)
            [held] = jobs.jobs_for(pk)
            assert held.status == "running" and held.claimed_by is not None
            first.kill()
            killed_at = time.monotonic()
            second.start()
            taken = _poll(
                lambda: (
                    next((j for j in jobs.jobs_for(pk) if j.claimed_by not in (None, held.claimed_by)), None)
                    or (jobs.jobs_for(pk)[0].status == "done" and jobs.jobs_for(pk)[0])
                ),
                timeout=120,
                what="another worker to take the job over",
            )
            took = time.monotonic() - killed_at
            message = _poll(
                lambda: (m := MessageStore(database).get(pk)).status == "Forwarded" and m,
                timeout=60,
                what="the message to be delivered",
            )
            assert target.requests == 2  # the held copy, then the taken-over one
            assert taken.attempts == 2 or jobs.jobs_for(pk)[0].attempts == 2
            assert message.business_status == "delivered"
            print(f"job taken over {took:.1f} s after kill -9 (lease {settings.job_lease_seconds:g} s)")
    finally:
        first.kill()
        second.stop()
        database.dispose()
