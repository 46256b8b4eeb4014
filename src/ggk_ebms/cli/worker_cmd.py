"""``ggk-ebms worker``: drain the send queue in a process of its own (issue 4).

Runs the same ``SendWorker`` that ``serve`` runs as a task (worker_enabled). Start as many as
you like on one PostgreSQL database: jobs are claimed with SKIP LOCKED, so none is sent twice
at once. Stops cleanly on SIGTERM or Ctrl-C; a job in flight is finished first.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from ggk_ebms.cli.main import fail, settings_of
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.pipeline.worker import SendWorker
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.store.db import Database


def open_database(settings: Settings) -> Database:
    """The configured database, migrated when auto_migrate is on; failures end the command."""
    try:
        database = Database.from_settings(settings)
        if settings.auto_migrate:
            database.upgrade()
        elif not database.is_current():
            fail(f"database {database.display_url} is not up to date: run `ggk-ebms db upgrade`")
    except GgkEbmsError as exc:
        fail(str(exc))
    return database


def apply_log_level(settings: Settings) -> None:
    logging.getLogger().setLevel(settings.log_level.upper())
    logging.getLogger("ggk_ebms").setLevel(settings.log_level.upper())


async def _work(settings: Settings, database: Database, once: bool) -> int:
    worker = SendWorker(settings, database)
    if once:
        try:
            return await worker.run_once()
        finally:
            await worker.close()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop)
    return 0


@click.command("worker")
@click.option("--once", is_flag=True, help="Carry out the jobs due now, then stop (no polling).")
@click.pass_context
def worker(ctx: click.Context, once: bool) -> None:
    """Send queued messages and signals until stopped (the worker of `serve`, on its own)."""
    settings = settings_of(ctx)
    apply_log_level(settings)
    try:
        client_context_from_settings(settings)  # a bad client certificate stops us here, not per send
    except GgkEbmsError as exc:
        fail(str(exc))
    database = open_database(settings)
    try:
        done = asyncio.run(_work(settings, database, once))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if once:
        click.echo(f"{done} job(s) carried out")
