"""``ggk-ebms worker``: drain the send and deliver queues
in a process of its own (docs/sending.md, docs/delivery.md).

Runs the same ``SendWorker`` and delivery worker that ``serve`` runs as tasks (worker_enabled).
Start as many as you like on one PostgreSQL database: jobs are claimed with SKIP LOCKED, so none
is handled twice at once. Stops cleanly on SIGTERM or Ctrl-C; a job in flight is finished first.
"""

from __future__ import annotations

import asyncio

import click

from ggk_ebms import logsafe
from ggk_ebms.api.health import heartbeat_task
from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.config import Settings
from ggk_ebms.delivery.worker import DeliveryWorker, delivery_task
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.logformat import configure_logging
from ggk_ebms.pipeline.worker import SendWorker
from ggk_ebms.runtime import Runtime
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.server import loop as event_loop


def apply_log_level(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    # The workers log partner text (a Fo01's omschrijving): escaped and rate-limited as in
    # ``serve`` (docs/security.md "Logs").
    logsafe.install()
    logsafe.install_rate_limit()


async def _work(runtime: Runtime, once: bool) -> int:
    """Both queues: 'send' and 'deliver' (received messages to their routes)."""
    settings, database = runtime.settings, runtime.database
    worker = SendWorker(settings, database, clock=runtime.clock, agreements=runtime.agreements)
    if once:
        try:
            sent = await worker.run_once()
        finally:
            await worker.close()
        delivery_worker = DeliveryWorker(settings, database, clock=runtime.clock, ids=runtime.ids)
        delivered = await asyncio.to_thread(delivery_worker.run_once)
        return sent + delivered
    stop = event_loop.stop_event()
    delivery = asyncio.create_task(delivery_task(settings)(runtime), name="standalone-delivery")
    sending = asyncio.create_task(worker.run(stop), name="standalone-worker")
    # Heartbeats make these workers visible to /health/ready of the serve processes (docs/api.md).
    beat = heartbeat_task(settings, runtime.clock, lambda: [sending, delivery])
    beating = asyncio.create_task(beat(database))
    try:
        await sending
    finally:
        delivery.cancel()
        beating.cancel()
        await asyncio.gather(delivery, beating, return_exceptions=True)
    return 0


@click.command("worker")
@click.option("--once", is_flag=True, help="Carry out the jobs due now, then stop (no polling).")
@click.pass_context
def worker(ctx: click.Context, once: bool) -> None:
    """Send queued messages and signals, and deliver received ones, until stopped (the workers
    of `serve`, on their own)."""
    settings = settings_of(ctx)
    apply_log_level(settings)
    try:
        client_context_from_settings(settings)  # a bad client certificate stops us here, not per send
    except GgkEbmsError as exc:
        fail(str(exc))
    database = open_database(settings)
    try:
        done = asyncio.run(_work(Runtime.build(settings, database), once))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if once:
        click.echo(f"{done} job(s) carried out")
