"""``ggk-ebms zorgaanbieders``: the register of zorgaanbieders (docs/zorgaanbieders.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.errors import GgkEbmsError


@click.group("zorgaanbieders")
def zorgaanbieders() -> None:
    """The zorgaanbieders: AGB code, name, reachable, and first/last message seen."""


@zorgaanbieders.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_context
def import_register(ctx: click.Context, file: Path) -> None:
    """Read a CSV with the columns agb;naam[;bereikbaar] (added or updated by AGB code)."""
    from ggk_ebms.cli.ops_support import service_context
    from ggk_ebms.services.zorgaanbieders import import_csv

    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        result = import_csv(service_context(settings, database), file.read_bytes())
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    click.echo(
        f"{result.added} toegevoegd, {result.updated} bijgewerkt, {len(result.errors)} regels geweigerd"
    )
    for error in result.errors:
        click.echo(f"  {error}")


@zorgaanbieders.command("list")
@click.option("--json", "as_json", is_flag=True, help="As JSON (default: CSV, semicolon-separated).")
@click.pass_context
def list_register(ctx: click.Context, as_json: bool) -> None:
    """Every AGB code in the register or seen in the traffic, with first and last message."""
    from ggk_ebms.cli.ops_support import emit_csv, emit_json, service_context
    from ggk_ebms.services.zorgaanbieders import register

    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        entries = register(service_context(settings, database))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if as_json:
        emit_json(entries)
        return
    header = ("agb", "naam", "bereikbaar", "in_register", "eerste_bericht", "laatste_bericht", "berichten")
    yes_no = {True: "ja", False: "nee", None: ""}
    emit_csv(
        header,
        (
            (e.agb, e.naam or "", yes_no[e.bereikbaar], yes_no[e.in_register], e.eerste_bericht,
             e.laatste_bericht, e.berichten)
            for e in entries
        ),
    )  # fmt: skip
