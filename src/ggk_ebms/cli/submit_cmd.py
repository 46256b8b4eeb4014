"""``ggk-ebms submit FILE...``: send payloads or StUF envelopes from a domain application.

Each FILE is a bare iWmo/iJw/iEb payload (wrapped by us in a Di01/Du01) or a ready StUF
envelope (validated, sent unchanged); see ``ggk_ebms.delivery.submit``. The message is queued on
the outbound path; the worker of ``serve`` sends it. Files are handled one by one: a refused
file does not stop the others, and the exit status is 1 when any was refused. A refused file is
recorded as a one-file aanlevering, so the berichtenlog shows it as Geweigerd with its reason
(``services.indienen``, docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

import click

from ggk_ebms.cli.main import fail, settings_of
from ggk_ebms.cli.ops_support import actor
from ggk_ebms.delivery.submit import Submitter
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.runtime import Runtime
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.services.indienen import Indiening, indienen, unreadable
from ggk_ebms.store.db import Database


@click.command("submit")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--cpa", "cpa_id", default=None, help="Send under this CPAId (default: looked up, see docs).")
@click.option(
    "--manual",
    is_flag=True,
    help="A manual aanlevering: also for exchanges via Portaal, which send nothing automatically.",
)
@click.pass_context
def submit(ctx: click.Context, files: tuple[Path, ...], cpa_id: str | None, manual: bool) -> None:
    """Wrap (if needed) and queue FILES for sending to the GGk."""
    settings = settings_of(ctx)
    database = Database.from_settings(settings)
    refused = 0
    try:
        if settings.auto_migrate:
            database.upgrade()
        runtime = Runtime.build(settings, database)
        submitter = Submitter(settings, database, ids=runtime.ids, clock=runtime.clock)
        sctx = ServiceContext(
            database=database, settings=settings, actor=actor(), clock=runtime.clock, ids=runtime.ids
        )
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                result = unreadable(sctx, path.name, f"kan niet worden gelezen ({exc.strerror})")
            else:
                result = indienen(sctx, Indiening(path.name, data, cpa_id, manual), submitter)
            if result.submitted is None:
                refused += 1
                click.secho(
                    f"{path}: refused: {result.reden} "
                    f"(aanlevering {result.batch}, Geweigerd in de berichtenlog)",
                    fg="red",
                    err=True,
                )
                continue
            click.echo(f"{path}: {result.submitted.describe()}")
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if refused:
        fail(f"{refused} of {len(files)} file(s) refused")
