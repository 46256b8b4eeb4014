"""Compose and run the endpoint process: database, CPA cache, pipeline, HTTPS server, workers.

Shutdown is graceful: on SIGTERM/SIGINT the listener closes, in-flight requests get
``shutdown_grace_seconds`` to finish (their transactions commit or roll back whole), then the
worker threads and the database are closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ggk_ebms import expiry, logsafe
from ggk_ebms.api.health import heartbeat_task, worker_kind
from ggk_ebms.api.server import ApiServer, start_api
from ggk_ebms.config import Settings
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.logformat import configure_logging
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.inbound import InboundPipeline
from ggk_ebms.runtime import Runtime, message_id_host
from ggk_ebms.security.devguard import refuse_public_dev_material
from ggk_ebms.security.revocation import RevocationChecker
from ggk_ebms.security.tls import server_context_from_settings
from ggk_ebms.server import allocator, heap
from ggk_ebms.server import loop as event_loop
from ggk_ebms.server.app import Guards, Handler, create_app
from ggk_ebms.server.gate import IdentityGate
from ggk_ebms.server.limits import ConnectionCheck, ConnectionRegistry, Limits
from ggk_ebms.server.listener import Listener, bind
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore

__all__ = ["Endpoint", "message_id_host", "run_child_process", "serve_forever", "start_endpoint"]

log = logging.getLogger(__name__)


@dataclass
class Endpoint:
    """A running endpoint; ``stop()`` shuts it down gracefully."""

    settings: Settings
    database: Database
    runner: web.AppRunner
    executor: ThreadPoolExecutor
    pipeline: InboundPipeline
    port: int
    background: list[asyncio.Task[None]]
    listener: Listener
    registry: ConnectionRegistry
    api: ApiServer | None = None

    @property
    def url(self) -> str:
        return f"https://{self.settings.host}:{self.port}{self.settings.path}"

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.api is not None:
            await self.api.stop()
        await self.listener.close()
        await self.runner.cleanup()
        self.executor.shutdown(wait=True)
        self.database.dispose()


async def _expiry_task(settings: Settings) -> None:
    """Log our own certificate files that expire within expiry_warning_days (ggk_ebms/expiry.py):
    now, then daily. CPAs and the certificates in them are logged by the CPA expiry check
    (store/cpa_expiry.py, the same expiry_warning_days), so they are left out here."""
    while True:

        def check() -> None:
            items = expiry.collect(settings, [], datetime.now(UTC))
            expiry.log_expiring(i for i in items if i.name in expiry.OWN_CERTIFICATE_SETTINGS)

        try:
            await asyncio.to_thread(check)
        except GgkEbmsError as exc:
            log.warning("expiry check skipped: %s", exc)
        await asyncio.sleep(24 * 3600)


async def _agreements_task(agreements: AgreementCache) -> None:
    """Keep the parsed CPAs confirmed ahead of the requests (pipeline/agreements.py ``refresh``):
    every half ``recheck``, one query for the hashes of every cached CPA, in a thread. A request
    that still finds a stale entry (the database slow or away) loads it itself, as before."""
    while True:
        try:
            await asyncio.to_thread(agreements.refresh)
        except Exception as exc:  # whatever it was, the requests fall back to their own lookup
            log.warning("cached CPAs not confirmed, requests will look them up: %s", type(exc).__name__)
        await asyncio.sleep(agreements.recheck / 2)


def revocation_check(checker: RevocationChecker) -> ConnectionCheck:
    """The post-handshake check of a TLS client certificate (docs/security.md, "Revocation").

    Python's ssl module cannot give one server context a CRL source that is fetched over HTTP and
    refreshed, so the check runs right after the handshake, with reading paused: a revoked
    certificate's connection is closed before a byte of HTTP is parsed (server/limits.py).
    """

    async def check(der: bytes) -> str | None:
        verdict = await asyncio.to_thread(checker.check_der, der, what="TLS client certificate")
        return None if verdict.ok else verdict.reason

    return check


async def start_endpoint(
    settings: Settings,
    *,
    on_database: Callable[[Database], None] | None = None,
    workers: list[Callable[[Runtime], Coroutine[Any, Any, None]]] | None = None,
    connection_check: ConnectionCheck | None = None,
) -> Endpoint:
    logsafe.install()  # partner-controlled values in log lines are escaped from here on
    refuse_public_dev_material(settings)
    allocator.limit_arenas()  # before the worker threads start (server/allocator.py)
    faults = None
    if settings.test_faults:
        # Test-only code (ggk_ebms.testing) is imported only when the test_faults setting asks
        # for it, so a production endpoint never loads it (docs/architecture.md).
        from ggk_ebms.testing.faults import parse_test_faults

        faults = parse_test_faults(settings.test_faults, settings.party_ids)  # refused before any work
    database = Database.from_settings(settings)
    if settings.auto_migrate:
        await asyncio.to_thread(database.upgrade)
    else:
        # Never serve on a schema written by a newer version (docs/operations.md "Upgrade").
        await asyncio.to_thread(database.check_not_newer)
    if on_database is not None:
        await asyncio.to_thread(on_database, database)
    runtime = Runtime.build(settings, database)
    pipeline = InboundPipeline(
        settings,
        MessageStore(database, runtime.clock),
        runtime.agreements,
        clock=runtime.clock,
        ids=runtime.ids,
    )
    handler: Handler = pipeline
    if faults is not None and faults.active:
        from ggk_ebms.testing.faults import FaultyHandler

        # Test-only misbehaviour in front of the pipeline (testing/faults.py), loudly announced.
        log.warning("TEST FAULTS ACTIVE (%s): this endpoint misbehaves on purpose", faults.describe())
        handler = FaultyHandler(
            pipeline,
            faults,
            clock=runtime.clock,
            ids=runtime.ids,
            max_body_bytes=settings.max_body_bytes,
        )
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ebms-inbound")
    repository = CpaRepository(database)

    def stored_agreements() -> list[Agreement]:
        found = (runtime.agreements.get(stored.cpa_id) for stored in repository.list())
        return [agreement for agreement in found if agreement is not None]

    gate = IdentityGate(
        stored_agreements,
        our_party_ids=settings.party_ids,
        mode="strict" if settings.client_cert_mode == "strict" else "cpa-or-oin",
        gateway_oins=settings.gateway_oins,
        fingerprint=repository.digests,
    )
    if connection_check is None and settings.revocation_mode != "off":
        connection_check = revocation_check(RevocationChecker.from_settings(settings))
    registry = ConnectionRegistry(Limits.from_settings(settings), connection_check)
    app = create_app(
        handler,
        path=settings.path,
        max_body_bytes=settings.max_body_bytes,
        executor=executor,
        proxy_client_cert_header=settings.proxy_client_cert_header,
        proxy_allowlist=settings.proxy_allowlist,
        guards=Guards.from_settings(settings, gate=gate, registry=registry),
    )
    context = server_context_from_settings(settings)
    worker_tasks: list[asyncio.Task[None]] = []
    api = None
    if settings.api_enabled:
        # The management API (docs/api.md) on its own listener, up before the ebMS port opens:
        # once a partner (or a test) can reach us, the whole endpoint is running.
        api = await start_api(
            settings,
            database,
            agreements=runtime.agreements,
            clock=runtime.clock,
            ids=runtime.ids,
            workers=lambda: worker_tasks,
        )
    runner = web.AppRunner(
        app,
        shutdown_timeout=settings.shutdown_grace_seconds,
        access_log=None,
        keepalive_timeout=settings.keepalive_timeout,
    )
    await runner.setup()
    # With several server processes on one port (setting 'processes') each binds with
    # SO_REUSEPORT and the kernel spreads incoming connections over them. Our own accept loop
    # (server/listener.py) instead of aiohttp's site: it bounds connections and handshakes.
    sockets = bind(settings.host, settings.port, reuse_port=settings.effective_processes > 1)
    assert runner.server is not None
    listener = Listener(
        sockets, runner.server, context, registry, backoff_max=settings.accept_backoff_max_seconds
    )
    try:
        listener.start()
    except BaseException:
        if api is not None:
            await api.stop()
        raise
    port = sockets[0].getsockname()[1]
    background: list[asyncio.Task[None]] = [
        asyncio.create_task(w(runtime), name=worker_kind(w)) for w in (workers or [])
    ]
    worker_tasks.extend(background)
    if worker_tasks:
        # Heartbeats make this process's workers visible to /health/ready of every process
        # sharing the database (docs/api.md, "Health").
        background.append(
            asyncio.create_task(heartbeat_task(settings, runtime.clock, lambda: worker_tasks)(database))
        )
    background.append(asyncio.create_task(_expiry_task(settings)))
    background.append(asyncio.create_task(_agreements_task(runtime.agreements)))
    return Endpoint(settings, database, runner, executor, pipeline, port, background, listener, registry, api)


async def serve_forever(settings: Settings, **kwargs: object) -> None:
    endpoint = await start_endpoint(settings, **kwargs)  # type: ignore[arg-type]
    logsafe.install_rate_limit()
    # What the endpoint holds for its whole life is never scanned by the collector again
    # (server/heap.py): full collections paused the event loop for up to 90 ms.
    heap.settle()
    log.warning("ggk-ebms listening on %s as party %s", endpoint.url, ", ".join(settings.party_ids))
    if endpoint.api is not None:
        log.warning("management API on %s (docs/api.md)", endpoint.api.url)
    stop = event_loop.stop_event()
    await stop.wait()
    log.warning("shutting down: letting in-flight requests finish")
    await endpoint.stop()


def prepare_child_process(settings: Settings) -> None:
    """What every spawned child of a multi-process ``serve`` does first: its logging as the
    parent's, escaped and rate-limited as a server process's (docs/security.md "Logs": a worker
    logs partner text too, a Fo01's omschrijving for one), and Ctrl-C left to the parent, which
    turns it into one SIGTERM per child."""
    configure_logging(settings.log_format, settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logsafe.install()
    logsafe.install_rate_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_child_process(settings: Settings, scheduled: bool = False) -> None:
    """Entry point of one spawned server process of a multi-process ``serve`` (setting
    'processes'). It lives here, not in the CLI module, so that the child can import it without
    the click command tree. The parent has migrated the database and imported the CPAs already.
    ``scheduled``: this process also runs the once-per-node work (the first one; server/tasks.py).
    """
    import sys

    from ggk_ebms.errors import GgkEbmsError
    from ggk_ebms.server.tasks import background_tasks

    prepare_child_process(settings)
    try:
        # Sending (docs/sending.md) and delivery (docs/delivery.md) in every process; the
        # scheduled work has a process of its own (server/scheduled.py) unless ``scheduled``.
        workers = background_tasks(settings, scheduled=scheduled)
        event_loop.run(serve_forever(settings, workers=workers))  # uvloop when installed
    except GgkEbmsError as exc:
        log.error("%s", exc)
        sys.exit(1)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc.strerror or exc)
        sys.exit(1)
