"""``ggk-ebms routes``: import, list and test the routing table (docs/stuf-routing.md, docs/delivery.md).

``import`` validates the whole routes.toml first and reports every error with its line; only a
file without errors replaces the table in force, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.routing.table import DirectoryTarget, EbmsTarget, HttpTarget, RoutingTable, Target
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.services.routeren import RouteChanged
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
        from ggk_ebms.cli.ops_support import service_context
        from ggk_ebms.services.audit import record

        sctx = service_context(settings_of(ctx), database)
        record(sctx, "routes-import", file.name, f"routeringstabel {stored.pk}")
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


# --- one route at a time (docs/operations.md "Routeren") ----------------------------------------


def _changed(ctx: click.Context, run: Callable[[ServiceContext], RouteChanged]) -> None:
    from ggk_ebms.cli.ops_support import service_context

    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        changed = run(service_context(settings, database))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    what = "toegevoegd" if changed.created else "gewijzigd"
    click.echo(f"route {changed.name} {what}; routeringstabel {changed.route_set} is nu van kracht")
    click.echo(changed.after.rstrip())


@routes.command("set")
@click.argument("name")
@click.option("--gemeentecode", default=None, help="4-digit code or '*'.")
@click.option("--berichttype", default=None, help="e.g. WMO305, or '*'.")
@click.option(
    "--target", "target_type", type=click.Choice(["directory", "http", "ebms", "mailbox"]), default=None
)
@click.option("--path", default=None, help="directory target: folder.")
@click.option("--url", default=None, help="http target: URL.")
@click.option("--cpa", "cpa_id", default=None, help="ebms target: CPAId.")
@click.option("--service", default=None, help="ebms target: service.")
@click.option("--action", default=None, help="ebms target: action.")
@click.option("--status", type=click.Choice(["actief", "inactief"]), default=None)
@click.option("--channel", type=click.Choice(["Digikoppeling", "Portaal"]), default=None)
@click.option("--payload-version", default=None, help='e.g. "3.2".')
@click.option("--allowed-sender", "allowed_senders", multiple=True, help="OIN or CPAId; repeat for more.")
@click.pass_context
def set_route_command(
    ctx: click.Context,
    name: str,
    gemeentecode: str | None,
    berichttype: str | None,
    target_type: str | None,
    path: str | None,
    url: str | None,
    cpa_id: str | None,
    service: str | None,
    action: str | None,
    status: str | None,
    channel: str | None,
    payload_version: str | None,
    allowed_senders: tuple[str, ...],
) -> None:
    """Add route NAME or change the fields given; checked like an import, recorded in the audit trail."""
    from ggk_ebms.services.routeren import RouteChange, TargetSpec, set_route

    target = None
    if target_type is not None:
        target = TargetSpec(target_type, path=path, url=url, cpa_id=cpa_id, service=service, action=action)
    change = RouteChange(
        name=name,
        gemeentecode=gemeentecode,
        berichttype=berichttype,
        target=target,
        status=status,
        channel=channel,
        payload_version=payload_version,
        allowed_senders=allowed_senders or None,
    )
    _changed(ctx, lambda sctx: set_route(sctx, change))


@routes.command("disable")
@click.argument("name")
@click.pass_context
def disable_route_command(ctx: click.Context, name: str) -> None:
    """Set route NAME inactief."""
    from ggk_ebms.services.routeren import disable_route

    _changed(ctx, lambda sctx: disable_route(sctx, name))


@routes.command("enable")
@click.argument("name")
@click.pass_context
def enable_route_command(ctx: click.Context, name: str) -> None:
    """Set route NAME actief."""
    from ggk_ebms.services.routeren import enable_route

    _changed(ctx, lambda sctx: enable_route(sctx, name))
