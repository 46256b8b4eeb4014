"""``ggk-ebms serve``: run the HTTPS ebMS endpoint until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging

import click

from ggk_ebms.cli.main import fail, settings_of
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.pipeline.worker import worker_task
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.server.run import serve_forever


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
    logging.getLogger().setLevel(settings.log_level.upper())
    logging.getLogger("ggk_ebms").setLevel(settings.log_level.upper())
    # Migrations report each step at INFO; one line from our store says where the database is.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    def on_database(database: object) -> None:
        if settings.cpa_autoimport:
            for line in import_cpa_dir(settings, database):  # type: ignore[arg-type]
                click.echo(line, err=True)

    try:
        # The sending worker runs as a task of the server (issue 4), unless worker_enabled is off
        # because separate `ggk-ebms worker` processes drain the queue.
        workers = [worker_task(settings)] if settings.worker_enabled else []
        asyncio.run(serve_forever(settings, on_database=on_database, workers=workers))
    except GgkEbmsError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
