"""``ggk-ebms routes``: import, list and test the routing table (docs/stuf-routing.md, docs/delivery.md).

``import`` validates the whole routes.toml first and reports every error with its line; only a
file without errors replaces the table in force, in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.routing.table import DirectoryTarget, EbmsTarget, HttpTarget, RoutingTable, Target
from ggk_ebms.store.db import Database
from ggk_ebms.store.routes import RouteStore


def _database(ctx: click.Context) -> Database:
    return open_database(settings_of(ctx))


def _current(database: Database) -> RoutingTable:
    stored = RouteStore(database).current()
    if stored is None:
        fail("no routing table imported yet; run `ggk-ebms routes import FILE`")
    return stored.table()


def describe_target(target: Target) -> str:
    if isinstance(target, DirectoryTarget):
        extras = [
            name
            for name, on in (("envelope", target.write_envelope), ("metadata", target.write_metadata))
            if on
        ]
        return f"directory {target.path}" + (f" (+{', '.join(extras)})" if extras else "")
    if isinstance(target, HttpTarget):
        return f"http {target.url}" + (" (mutual TLS)" if target.client_cert else "")
    if isinstance(target, EbmsTarget):
        return f"ebms CPA {target.cpa_id} {target.service}/{target.action}"
    return "mailbox"


@click.group("routes")
def routes() -> None:
    """The routing table: (gemeentecode, berichttype) -> target."""


@routes.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_context
def import_routes(ctx: click.Context, file: Path) -> None:
    """Validate FILE (TOML) and make it the routing table in force."""
    database = _database(ctx)
    try:
        text = file.read_text(encoding="utf-8")
        stored, table = RouteStore(database).replace(text, source=file.name, base_dir=file.parent)
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    click.echo(
        f"imported {file.name}: {stored.route_count} route(s) for gemeentecode(s) "
        f"{', '.join(sorted(table.served_gemeentecodes))}; routing table {stored.pk} is now in force"
    )


@routes.command("list")
@click.pass_context
def list_routes(ctx: click.Context) -> None:
    """Show the routes in force, most specific first."""
    database = _database(ctx)
    try:
        stored = RouteStore(database).current()
        if stored is None:
            fail("no routing table imported yet; run `ggk-ebms routes import FILE`")
        table = stored.table()
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    click.echo(
        f"routing table {stored.pk} from {stored.source}, "
        f"imported {stored.imported_at:%Y-%m-%d %H:%M:%S} UTC; "
        f"serves {', '.join(sorted(table.served_gemeentecodes))}"
    )
    grid = Table()
    for column in (
        "name",
        "gemeentecode",
        "berichttype",
        "status",
        "channel",
        "versions",
        "senders",
        "target",
    ):
        grid.add_column(column, overflow="fold")
    for route in sorted(table.routes, key=lambda r: (-r.specificity, r.gemeentecode, r.berichttype, r.name)):
        grid.add_row(
            route.name,
            route.gemeentecode,
            route.berichttype,
            route.status.value,
            route.channel.value,
            f"StUF {route.stuf_version}, payload {route.payload_version or 'any'}",
            ", ".join(route.allowed_senders) or "by scope",
            describe_target(route.target),
        )
    Console().print(grid)


@routes.command("test")
@click.option("--gemeentecode", required=True, help="ontvanger/organisatie, e.g. 0363.")
@click.option("--berichttype", required=True, help="StUF functie, e.g. WMO301.")
@click.option("--sender", default=None, help="OIN or CPAId of the sending party, to check authorisation too.")
@click.pass_context
def test_route(ctx: click.Context, gemeentecode: str, berichttype: str, sender: str | None) -> None:
    """Show which route would take a message and why (exit 1 when none would)."""
    database = _database(ctx)
    try:
        table = _current(database)
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    match = table.match(gemeentecode, berichttype)
    click.echo(match.explain())
    if match.route is None:
        code = f"{match.code} " if match.code else ""
        ggk = f"(cf. {match.ggk_code})" if match.ggk_code else ""
        fail(f"not routed: {code}{ggk}".strip())
    click.echo(f"target: {describe_target(match.route.target)}")
    if sender is not None:
        verdict = table.authorize(sender, gemeentecode, match.route)
        click.echo(f"authorisation: {verdict.reason}")
        if not verdict.allowed:
            fail(f"sender refused: {verdict.code} (cf. {verdict.ggk_code})")
