"""``ggk-ebms serve``: run the HTTPS ebMS endpoint until SIGTERM or Ctrl-C.

With more than one process (setting ``processes``; 0, the default, is one per CPU core; or
setting ``worker_processes`` above 0), this process prepares the database once (migrations, CPA
auto-import: doing that in several processes at once would race) and then runs that many server
processes on the same port (SO_REUSEPORT), the worker processes if asked for, and the scheduled
work's process. It forwards SIGTERM/SIGINT to them, and when one of them dies it stops the
others, so the service manager sees one unit that is up or down.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
from multiprocessing.process import BaseProcess
from types import FrameType

import click

from ggk_ebms.cli.main import fail, settings_of
from ggk_ebms.clock import SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.logformat import configure_logging
from ggk_ebms.server import loop as event_loop
from ggk_ebms.server.autoimport import import_cpa_dir, import_routes_file
from ggk_ebms.server.queue_process import run_queue_process
from ggk_ebms.server.run import run_child_process, serve_forever
from ggk_ebms.server.scheduled import run_scheduled_process
from ggk_ebms.server.tasks import background_tasks
from ggk_ebms.store.cpa_expiry import log_expiries
from ggk_ebms.store.db import Database

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default=None, help="Bind address (overrides the 'host' setting).")
@click.option("--port", type=int, default=None, help="Port (overrides the 'port' setting).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the ebMS endpoint: HTTPS with mutual TLS on host:port/path."""
    settings = settings_of(ctx)
    changes: dict[str, object] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    settings = settings.replace(**changes)
    _apply_log_level(settings)

    if settings.effective_processes > 1 or settings.effective_worker_processes:
        _serve_processes(settings)
        return
    _serve_one(settings)


def _apply_log_level(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    # Migrations report each step at INFO; one line from our store says where the database is.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _import_cpas(settings: Settings, database: Database) -> None:
    lines = list(import_cpa_dir(settings, database)) if settings.cpa_autoimport else []
    lines += import_routes_file(settings, database)
    for line in lines:
        if settings.log_format == "json":
            log.info("%s", line)  # a log shipper reads JSON lines only
        else:
            click.echo(line, err=True)
    log_expiries(settings, database, SystemClock().now())  # warn ahead of a CPA renewal


def _serve_one(settings: Settings) -> None:
    def on_database(database: Database) -> None:
        _import_cpas(settings, database)

    try:
        # The send and delivery workers and the scheduled work (server/tasks.py).
        workers = background_tasks(settings, scheduled=True)
        # uvloop when installed (server/loop.py).
        event_loop.run(serve_forever(settings, on_database=on_database, workers=workers))
    except GgkEbmsError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")


def _serve_processes(settings: Settings) -> None:
    processes, worker_processes = settings.effective_processes, settings.effective_worker_processes
    if settings.port == 0:
        fail(
            "processes > 1 or worker_processes > 0 needs a fixed port: "
            "the server processes must all bind the same one"
        )
    try:
        database = Database.from_settings(settings)
        try:
            if settings.auto_migrate:
                database.upgrade()
            _import_cpas(settings, database)
        finally:
            database.dispose()
    except GgkEbmsError as exc:
        fail(str(exc))
    # Spawned, not forked: each child starts clean, without this process's engine or threads.
    context = multiprocessing.get_context("spawn")
    child_settings = settings.replace(auto_migrate=False, cpa_autoimport=False, processes=processes)
    # With worker processes the server processes run no send or delivery worker of their own.
    server_settings = child_settings.replace(worker_enabled=settings.worker_enabled and not worker_processes)
    children: list[BaseProcess] = [
        context.Process(
            target=run_child_process,
            # The management API listens in the first process only: it has a port of its own.
            args=(server_settings if n == 0 else server_settings.replace(api_enabled=False), False),
            name=f"ggk-ebms-serve-{n}",
        )
        for n in range(processes)
    ]
    children += [
        context.Process(
            target=run_queue_process,
            args=(child_settings.replace(api_enabled=False),),
            name=f"ggk-ebms-worker-{n}",
        )
        for n in range(worker_processes)
    ]
    # The scheduled work in a process of its own at a lower CPU priority, so it does not take
    # the GIL from a server process's event loop (server/scheduled.py).
    children.append(
        context.Process(
            target=run_scheduled_process,
            args=(child_settings.replace(api_enabled=False),),
            name="ggk-ebms-scheduled",
        )
    )
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: graceful shutdown in the child

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.start()
    workers = f", {worker_processes} for the send and delivery workers" if worker_processes else ""
    click.echo(
        f"serve: {processes} server processes on port {settings.port}{workers}, one for the scheduled work",
        err=True,
    )
    failed = False
    while any(child.is_alive() for child in children):
        for child in children:
            child.join(timeout=0.5)
            if not child.is_alive() and child.exitcode != 0 and not stopping:
                failed = True
                click.echo(f"serve: {child.name} exited with status {child.exitcode}; stopping", err=True)
                stop(signal.SIGTERM, None)
    if failed:
        sys.exit(1)
