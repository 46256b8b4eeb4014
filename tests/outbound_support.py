"""Helpers for the outbound tests: CPAs on the test's own ports, both sides with workers, waiting.

The CPA of each test is made with ``create_agreement`` so its endpoints point at free loopback
ports and its RetryInterval can be short (PT1S); the worker gets a retry policy without the
30-second floor, so retries happen within a test's time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa.create import AgreementRequest, PartyRequest, create_agreement
from ggk_ebms.cpa.model import Profile
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.pipeline.worker import worker_task
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.server.run import Endpoint, start_endpoint
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, NewPart, StoredMessage
from ggk_ebms.transport.retry import RetryPolicy
from tests.endpoint import DEV, GEMEENTE, RINIS, party_settings
from tests.process import free_port

SERVICE = "ggk:berichtenverkeer:1.0"
GEMEENTE_ACTION = "envelopHeenbericht-ggk_Di01"
FAST_POLICY = RetryPolicy(
    transport_backoff=(timedelta(milliseconds=300), timedelta(milliseconds=600)),
    minimum_retry_interval=timedelta(0),
)
FAST_SIGNAL_RETRIES = (timedelta(milliseconds=300), timedelta(milliseconds=600), timedelta(seconds=1))


def make_cpa(
    gemeente_port: int,
    rinis_port: int,
    *,
    profile: Profile = Profile.OSB_RM,
    retries: int = 3,
    retry_interval: timedelta = timedelta(seconds=1),
    sync_reply: bool = False,
    version: str = "t-1",
) -> tuple[str, bytes]:
    """(CPAId, CPA) between the dev gemeente and dev RINIS on these loopback ports."""

    def side(name: str, oin: str, role: str, port: int, party: str) -> PartyRequest:
        return PartyRequest(
            name=name,
            oin=oin,
            role=role,
            endpoint=f"https://localhost:{port}/ebms",
            server_cert_pem=(DEV / party / "server.pem").read_bytes(),
            client_cert_pem=(DEV / party / "client.pem").read_bytes(),
        )

    data = create_agreement(
        AgreementRequest(
            profile=profile,
            party=side("Gemeente (test)", GEMEENTE, "Gemeente", gemeente_port, "gemeente"),
            partner=side("RINIS (test)", RINIS, "GGk", rinis_port, "rinis"),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2035, 12, 1, tzinfo=UTC),
            retries=retries,
            retry_interval=retry_interval,
            sync_reply=sync_reply,
            cpa_version=version,
        )
    )
    from ggk_ebms.cpa.parse import parse_agreement

    return parse_agreement(data).cpa_id, data


def side_settings(party: str, tmp: Path, db_url: str, cpa: bytes, port: int, **changes: Any) -> Settings:
    """Settings of one side: its own CPA folder holding ``cpa``, the given port, quick polling."""
    folder = tmp / party / "cpa"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.xml").write_bytes(cpa)
    values: dict[str, Any] = {"port": port, "worker_poll_seconds": 0.1, "http_timeout": 10.0}
    values.update(changes)
    return party_settings(party, tmp, db_url, folder, **values)


@asynccontextmanager
async def started(settings: Settings, *, worker: bool = True) -> AsyncIterator[Endpoint]:
    """A real endpoint (and, unless told otherwise, its send worker with fast retries)."""

    def on_database(database: Database) -> None:
        for line in import_cpa_dir(settings, database):
            if "not imported" in line:
                raise AssertionError(line)

    workers = (
        [worker_task(settings, policy=FAST_POLICY, signal_retry_delays=FAST_SIGNAL_RETRIES)] if worker else []
    )
    endpoint = await start_endpoint(settings, on_database=on_database, workers=workers)
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def submit(settings: Settings, database: Database, cpa_id: str, payload: bytes = b"<x/>") -> StoredMessage:
    ids = UuidIdGenerator(host="gemeente.test")
    return submit_message(
        settings,
        database,
        cpa_id=cpa_id,
        service=SERVICE,
        action=GEMEENTE_ACTION,
        parts=[NewPart(f"{ids.uuid()}@test", "application/xml", payload)],
        ids=ids,
        clock=SystemClock(),
    )


async def eventually(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` (run in a thread: it reads the database) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


def status_of(database: Database, pk: int) -> str:
    return MessageStore(database).get(pk).status


def received_ids(database: Database) -> list[str]:
    return [m.message_id for m in MessageStore(database).list(direction="in", kind="business", limit=10_000)]


class WorkerProcess:
    """``ggk-ebms worker`` in a process of its own, as an operator runs it (kill -9 tests)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ggk_ebms", "--config", str(self.config), "worker"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no cleanup runs, as in a crash
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


__all__ = ["free_port"]
