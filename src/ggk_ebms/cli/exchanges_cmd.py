"""``ggk-ebms exchanges``: list, show and set the berichtuitwisselingen (docs/exchanges.md).

Mirrors the GGk routing page: per exchange *Uitwisseling via*, *CPA profiel*, *Status*, StUF
envelope version and payload (XML) version, plus the gemeentecodes it serves. ``set`` changes
only what is given and checks every value before anything is stored.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.ops_support import service_context
from ggk_ebms.exchanges.model import Exchange
from ggk_ebms.services import exchanges as service
from ggk_ebms.services.context import ServiceError
from ggk_ebms.store.exchanges import ExchangeStore


def _store(ctx: click.Context) -> ExchangeStore:
    return ExchangeStore(open_database(settings_of(ctx)))


@click.group("exchanges")
def exchanges() -> None:
    """Berichtuitwisselingen: per pair of berichttypen how they travel and in which versions."""


@exchanges.command("list")
@click.pass_context
def list_exchanges(ctx: click.Context) -> None:
    """Every exchange with its settings (* = changed from the shipped default)."""
    store = _store(ctx)
    current, problems = store.current()
    changed = store.changes()
    table = Table("Uitwisseling", "Product", "Via", "Status", "StUF", "XML", "CPA profiel", "Gemeentecodes")
    for exchange in current:
        mark = "*" if exchange.key in changed else ""
        table.add_row(
            exchange.key + mark,
            exchange.product.value,
            exchange.via.value,
            exchange.status.value,
            exchange.stuf_version.value,
            exchange.payload_version or "alle",
            exchange.cpa_id or "-",
            ", ".join(exchange.gemeentecodes) or "alle bediende",
        )
    Console(width=200).print(table)
    for problem in problems:
        click.secho(f"waarschuwing: {problem}", fg="yellow", err=True)


def _show(exchange: Exchange, changed: dict[str, str | None]) -> None:
    rows = (
        ("uitwisseling", exchange.key, None),
        ("product", exchange.product.value, None),
        ("via", exchange.via.value, "via"),
        ("status", exchange.status.value, "status"),
        ("stuf_version", f"{exchange.stuf_version.value} ({exchange.stuf_version.label})", "stuf_version"),
        ("payload_version", exchange.payload_version or "alle", "payload_version"),
        ("cpa_id", exchange.cpa_id or "-", "cpa_id"),
        ("gemeentecodes", ", ".join(exchange.gemeentecodes) or "alle bediende", "gemeentecodes"),
    )
    for label, value, name in rows:
        note = " (gewijzigd)" if name is not None and name in changed else ""
        click.echo(f"{label:16} {value}{note}")
    click.echo(f"{'samenvatting':16} {exchange.describe()}")


@exchanges.command("show")
@click.argument("key")
@click.pass_context
def show_exchange(ctx: click.Context, key: str) -> None:
    """One exchange, by key (WMO301/WMO302) or either berichttype (WMO301)."""
    store = _store(ctx)
    current, _ = store.current()
    exchange = current.get(key)
    if exchange is None:
        fail(f"geen uitwisseling {key!r}; `ggk-ebms exchanges list` toont ze")
    _show(exchange, store.changes().get(exchange.key, {}))


@exchanges.command("set")
@click.argument("key")
@click.option("--via", type=click.Choice(["Digikoppeling", "Portaal"], case_sensitive=False))
@click.option("--status", type=click.Choice(["actief", "inactief"], case_sensitive=False))
@click.option("--stuf-version", help="ggk0210 (StUF-GGk 2.1.04) or ggk0310 (2.1.03).")
@click.option("--payload-version", help="iStandaarden release, e.g. 3.2 or 2.3; 'any' for no check.")
@click.option("--cpa", "cpa_id", help="CPA profile (CPAId) for this exchange; '' for none.")
@click.option(
    "--gemeentecodes", help="Comma-separated gemeentecodes this exchange serves; '' for all served."
)
@click.option("--reset", is_flag=True, help="Forget every change: back to the shipped default.")
@click.pass_context
def set_exchange(
    ctx: click.Context,
    key: str,
    via: str | None,
    status: str | None,
    stuf_version: str | None,
    payload_version: str | None,
    cpa_id: str | None,
    gemeentecodes: str | None,
    reset: bool,
) -> None:
    """Change the settings of one exchange (only the options given)."""
    given = {
        "via": via,
        "status": status,
        "stuf_version": stuf_version,
        "payload_version": payload_version,
        "cpa_id": cpa_id,
        "gemeentecodes": gemeentecodes,
    }
    changes = {name: value for name, value in given.items() if value is not None}
    if reset and changes:
        fail("--reset gaat niet samen met andere opties")
    if not reset and not changes:
        fail("geef minstens één instelling om te wijzigen (zie --help)")
    settings = settings_of(ctx)
    database = open_database(settings)
    sctx = service_context(settings, database)
    try:
        # The service checks every value, stores the change and writes the audit trail.
        shown = service.reset_exchange(sctx, key) if reset else service.set_exchange(sctx, key, changes)
    except ServiceError as exc:
        fail(str(exc))
    click.echo(f"opgeslagen: {shown.samenvatting}")
