"""``ggk-ebms cbs``: deliveries to the CBS Monitor Sociaal Domein through RINIS (docs/cbs.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cbs.names import TOESTEMMING_GROUPS
from ggk_ebms.cbs.notify import periode_of
from ggk_ebms.cbs.toestemming import CONCLUSIES, Gebruiker, Toestemming
from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.ops_support import os_user, run_and_close
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import cbs as service

_GROUPS = list(TOESTEMMING_GROUPS)
_OPTION_OF = {"wmo": _GROUPS[0], "jw": _GROUPS[1], "sbo": _GROUPS[2]}


def _context(ctx: click.Context) -> service.CbsContext:
    settings = settings_of(ctx)
    return service.CbsContext(settings, open_database(settings), actor=os_user(fallback="cli"))


@click.group("cbs")
def cbs() -> None:
    """CBS Monitor Sociaal Domein: bestanden en toestemming via RINIS."""


@cbs.command("aanleveren")
@click.argument(
    "files", type=click.Path(path_type=Path, dir_okay=False, exists=True), nargs=-1, required=True
)
@click.pass_context
def aanleveren(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Lever CSV-bestanden (of een ZIP met CSV's) ongewijzigd aan bij CBS."""
    results = run_and_close(
        _context(ctx),
        lambda context: service.aanleveren(context, service.read_uploads(list(files))),
        refusals=(GgkEbmsError, ValueError),
    )
    for result in results:
        if result.accepted:
            click.echo(f"{result.name}: verzonden, referentienummer {result.referentienummer}")
        else:
            click.echo(f"{result.name}: geweigerd: {result.detail}", err=True)
    if not all(r.accepted for r in results):
        fail("niets verzonden: pas de bestandsnamen aan (zie docs/cbs.md)")


@cbs.command("toestemming")
@click.option("--gemeentecode", required=True, help="CBS-gemeentecode, vier cijfers.")
@click.option("--organisatie", required=True, help="Naam organisatie.")
@click.option("--naam", required=True, help="Naam van de gebruiker die de toestemming geeft.")
@click.option("--email", required=True, help="E-mailadres van die gebruiker.")
@click.option("--telefoon", required=True, help="Telefoonnummer van die gebruiker.")
@click.option("--periode", default=None, help="Verslagperiode (JJJJH1/JJJJH2); standaard de vorige.")
@click.option(
    "--set",
    "sets",
    type=click.Choice(sorted(_OPTION_OF)),
    multiple=True,
    required=True,
    help="Set(s): wmo (basis + kosten + facultatief), jw (kosten JW), sbo (kosten SBO).",
)
@click.option("--conclusie", type=click.Choice(CONCLUSIES), default="akkoord", show_default=True)
@click.option("--correctie-periode", default=None, help="Ook voor deze eerdere periode (na een correctie).")
@click.pass_context
def toestemming(
    ctx: click.Context,
    gemeentecode: str,
    organisatie: str,
    naam: str,
    email: str,
    telefoon: str,
    periode: str | None,
    sets: tuple[str, ...],
    conclusie: str,
    correctie_periode: str | None,
) -> None:
    """Stuur de toestemming (opt-in) per set als CSV naar CBS."""
    today = date.today()
    current = periode or periode_of(today).previous().text
    periods = [current] + ([correctie_periode] if correctie_periode else [])
    rows = [Toestemming(p, _OPTION_OF[s], conclusie, today) for p in periods for s in sets]
    gebruiker = Gebruiker(organisatie, naam, email, telefoon)
    result = run_and_close(
        _context(ctx),
        lambda context: service.toestemming(
            context, gemeentecode=gemeentecode, gebruiker=gebruiker, rows=rows
        ),
    )
    click.echo(f"{result.name}: verzonden, referentienummer {result.referentienummer}")


@cbs.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Toon de leveringen met hun status en rapporten."""
    rows = run_and_close(_context(ctx), service.deliveries)
    if not rows:
        click.echo("geen CBS-leveringen")
        return
    grid = Table()
    for column in ("referentienummer", "soort", "bestand", "periode", "status", "rapporten"):
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(
            row.referentienummer,
            row.kind,
            row.filename,
            row.verslagperiode or "-",
            row.message_status or "vergeten",
            str(row.reports),
        )
    Console().print(grid)


@cbs.command("herinneren")
@click.pass_context
def herinneren(ctx: click.Context) -> None:
    """Verstuur de herinneringen die nu aan de beurt zijn (serve doet dit elk uur)."""
    sent = run_and_close(_context(ctx), service.remind)
    click.echo("\n".join(sent) if sent else "geen herinneringen nodig")
