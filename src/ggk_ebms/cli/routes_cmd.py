"""``ggk-ebms routes``: import, list and test the routing table (docs/stuf-routing.md, docs/delivery.md).

``import`` validates the whole routes.toml first and reports every error with its line; only a
file without errors replaces the table in force, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.output import Column, dumps, echo_table, emit, json_option
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.routing.table import DirectoryTarget, EbmsTarget, HttpTarget, Route, RoutingTable, Target
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


def target_record(target: Target) -> dict[str, Any]:
    """A route's target as JSON (docs/cli.md): its kind and that kind's fields."""
    if isinstance(target, DirectoryTarget):
        return {
            "kind": "directory",
            "path": target.path,
            "write_envelope": target.write_envelope,
            "write_metadata": target.write_metadata,
        }
    if isinstance(target, HttpTarget):
        return {"kind": "http", "url": target.url, "mutual_tls": bool(target.client_cert)}
    if isinstance(target, EbmsTarget):
        return {"kind": "ebms", "cpa_id": target.cpa_id, "service": target.service, "action": target.action}
    return {"kind": "mailbox"}


def route_record(route: Route) -> dict[str, Any]:
    return {
        "name": route.name,
        "gemeentecode": route.gemeentecode,
        "berichttype": route.berichttype,
        "status": route.status.value,
        "channel": route.channel.value,
        "stuf_version": route.stuf_version,
        "payload_version": route.payload_version,
        "allowed_senders": list(route.allowed_senders),
        "target": target_record(route.target),
        "target_text": describe_target(route.target),
    }


ROUTE_COLUMNS = [
    Column("name", "name"),
    Column("gemeentecode", "gemeentecode"),
    Column("berichttype", "berichttype"),
    Column("status", "status"),
    Column("channel", "channel"),
    Column("versions", "versions"),
    Column("senders", "senders"),
    Column("target_text", "target"),
]


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
@json_option
@click.pass_context
def list_routes(ctx: click.Context, as_json: bool) -> None:
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
    ordered = sorted(table.routes, key=lambda r: (-r.specificity, r.gemeentecode, r.berichttype, r.name))
    records = [route_record(route) for route in ordered]
    document = {
        "table": {
            "id": stored.pk,
            "source": stored.source,
            "imported_at": stored.imported_at,
            "served_gemeentecodes": sorted(table.served_gemeentecodes),
        },
        "routes": records,
    }

    def text() -> None:
        click.echo(
            f"routing table {stored.pk} from {stored.source}, "
            f"imported {stored.imported_at:%Y-%m-%d %H:%M:%S} UTC; "
            f"serves {', '.join(sorted(table.served_gemeentecodes))}"
        )
        rows = [
            {
                **r,
                "versions": f"StUF {r['stuf_version']}, payload {r['payload_version'] or 'any'}",
                "senders": ", ".join(r["allowed_senders"]) or "by scope",
            }
            for r in records
        ]
        echo_table(rows, ROUTE_COLUMNS, empty="no routes")

    emit(document, as_json=as_json, text=text)


@routes.command("test")
@click.option("--gemeentecode", required=True, help="ontvanger/organisatie, e.g. 0363.")
@click.option("--berichttype", required=True, help="StUF functie, e.g. WMO301.")
@click.option("--sender", default=None, help="OIN or CPAId of the sending party, to check authorisation too.")
@json_option
@click.pass_context
def test_route(
    ctx: click.Context, gemeentecode: str, berichttype: str, sender: str | None, as_json: bool
) -> None:
    """Show which route would take a message and why, and the Fo01 the delivery would send
    instead (exit 1 when it would not deliver)."""
    from ggk_ebms.exchanges.model import Via
    from ggk_ebms.routing.fo01 import expected_fo01
    from ggk_ebms.store.exchanges import load_rules

    database = _database(ctx)
    try:
        table = _current(database)
        rules = load_rules(settings_of(ctx), database)  # the exchange rules in force
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    match = table.match(gemeentecode, berichttype)
    verdict = (
        table.authorize(sender, gemeentecode, match.route) if sender is not None and match.route else None
    )
    fo01 = expected_fo01(
        rules, table, gemeentecode, berichttype, match=match, sender_ids=(sender,) if sender else ()
    )
    if as_json:
        # One document whatever the outcome; the exit status still says routed/allowed (1 if not).
        click.echo(
            dumps(
                {
                    "gemeentecode": gemeentecode,
                    "berichttype": berichttype,
                    "routed": match.route is not None,
                    "explanation": match.explain(),
                    "code": match.code,
                    "ggk_code": match.ggk_code,
                    "fo01": (
                        {"step": fo01.step, "code": fo01.code, "reason": fo01.reason}
                        if fo01 is not None
                        else None
                    ),
                    "route": route_record(match.route) if match.route else None,
                    "sender": sender,
                    "authorisation": (
                        {
                            "allowed": verdict.allowed,
                            "reason": verdict.reason,
                            "code": verdict.code,
                            "ggk_code": verdict.ggk_code,
                        }
                        if verdict is not None
                        else None
                    ),
                }
            )
        )
        delivered = match.route is not None and (verdict is None or verdict.allowed) and fo01 is None
        ctx.exit(0 if delivered else 1)
    click.echo(match.explain())
    if match.route is not None:
        click.echo(f"target: {describe_target(match.route.target)}")
    if verdict is not None:
        click.echo(f"authorisation: {verdict.reason}")
    if fo01 is not None:
        # The code the delivery sends (docs/exchanges.md); the routing table's own StUF code is
        # named too, because older notes and partners may refer to it.
        table_code = (verdict.code if verdict and not verdict.allowed else None) or match.code
        own = f" (routing table: {table_code})" if table_code and table_code != fo01.code else ""
        fail(f"not delivered: Fo01 {fo01.code} at step {fo01.step}: {fo01.reason}{own}")
    exchange = rules.exchanges.for_berichttype(berichttype)
    if exchange is not None and exchange.via is Via.PORTAAL:
        # docs/exchanges.md: received messages of a Portaal exchange wait in the mailbox, any route.
        click.echo(f"exchange {exchange.key} goes via Portaal: held in the mailbox for pick-up")
        return
    if match.route is None:
        fail("not routed: the message would be held (no route, no Fo01)")
    if verdict is not None and not verdict.allowed:
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
