"""``ggk-ebms ketendata``: the gemeente's own Ketendata file sets (docs/ketendata.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.ops_support import os_user, run_and_close
from ggk_ebms.delivery.forwarders.directory import write_atomically
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import ketendata as service


def _context(ctx: click.Context) -> service.KetendataContext:
    settings = settings_of(ctx)
    return service.KetendataContext(settings, open_database(settings), actor=os_user(fallback="cli"))


def _moment(value: str | None, name: str) -> datetime | None:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO moment; naive moments are UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{name} {value!r} is geen datum (JJJJ-MM-DD) of tijdstip (ISO 8601)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


@click.group("ketendata")
def ketendata() -> None:
    """Ketendata: bestanden per berichttype uit het eigen berichtenverkeer."""


@ketendata.command("export")
@click.option("--since", default=None, help="Begin (JJJJ-MM-DD of ISO-tijdstip, UTC).")
@click.option("--until", default=None, help="Einde, niet inbegrepen (standaard: nu).")
@click.option("--historie", is_flag=True, help="Eenmalig historiebestand vanaf --since.")
@click.option(
    "--gemeentecode",
    "gemeentecodes",
    multiple=True,
    help="Alleen berichten van deze gemeente (herhaalbaar; met --since).",
)
@click.pass_context
def export(
    ctx: click.Context, since: str | None, until: str | None, historie: bool, gemeentecodes: tuple[str, ...]
) -> None:
    """Maak een bestandenset. Zonder opties: alles wat nog niet eerder geleverd is."""
    since_at, until_at = _moment(since, "--since"), _moment(until, "--until")
    if historie:
        kind = "historie"
    elif since_at is not None or until_at is not None:
        kind = "period"
    else:
        kind = "weekly"
    codes = frozenset(gemeentecodes) if gemeentecodes else None
    request = service.ExportRequest(kind, since_at, until_at, codes)
    result = run_and_close(_context(ctx), lambda context: service.export(context, request))
    click.echo(
        f"export {result.export_pk} ({result.kind}) gemaakt: {result.messages} berichten, "
        f"{result.duplicates} dubbel verwijderd, {len(result.files)} bestanden "
        f"(periode {_stamp(result.since)} tot {_stamp(result.until)} UTC)"
    )
    if result.skipped:
        click.echo(f"{result.skipped} berichten zonder iStandaarden-inhoud overgeslagen")


@ketendata.command("list")
@click.option("--nieuw", is_flag=True, help="Alleen bestanden die nog niet opgehaald zijn.")
@click.pass_context
def list_files(ctx: click.Context, nieuw: bool) -> None:
    """Toon de bestanden klaar om op te halen."""
    files = run_and_close(
        _context(ctx), lambda context: service.list_files(context, include_fetched=not nieuw)
    )
    if not files:
        click.echo("geen Ketendata-bestanden")
        return
    grid = Table()
    for column in ("id", "export", "bestand", "regels", "bytes", "gemaakt (UTC)", "gelezen"):
        grid.add_column(column, overflow="fold")
    for f in files:
        grid.add_row(
            str(f.pk),
            str(f.export_pk),
            f.filename,
            str(f.rows),
            str(f.size),
            _stamp(f.created_at),
            _stamp(f.fetched_at) if f.fetched_at else "nee",
        )
    Console().print(grid)


@ketendata.command("fetch")
@click.argument("file_ids", type=int, nargs=-1)
@click.option("--nieuw", is_flag=True, help="Alle nog niet opgehaalde bestanden als één ZIP.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Map voor losse bestanden, of het ZIP-bestand bij --nieuw.",
)
@click.pass_context
def fetch(ctx: click.Context, file_ids: tuple[int, ...], nieuw: bool, output: Path) -> None:
    """Haal bestanden op (zet de gelezen-markering)."""
    if nieuw == bool(file_ids):
        fail("geef bestand-id's of --nieuw (niet allebei)")
    context = _context(ctx)
    try:
        if nieuw:
            result = service.fetch_new_as_zip(context)
            if result is None:
                click.echo("geen nieuwe Ketendata-bestanden")
                return
            write_atomically(output.parent.resolve(), output.name, result.data)
            click.echo(f"{result.files} bestanden in {output}")
            return
        files = service.fetch_files(context, list(file_ids))
        output.mkdir(parents=True, exist_ok=True)
        for f in files:
            write_atomically(output.resolve(), f"{f.export_pk}-{f.filename}", f.data or b"")
        click.echo(f"{len(files)} bestanden in {output}")
    except GgkEbmsError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"kan niet schrijven naar {output}: {exc.strerror or exc}")
    finally:
        context.database.dispose()


@ketendata.command("delete")
@click.argument("export_id", type=int)
@click.pass_context
def delete(ctx: click.Context, export_id: int) -> None:
    """Verwijder een export met zijn bestanden (eerder dan de bewaartermijn)."""
    removed = run_and_close(_context(ctx), lambda context: service.delete_export(context, export_id))
    click.echo(f"export {export_id} verwijderd ({removed} bestanden)")


@ketendata.command("rotate-key")
@click.pass_context
def rotate_key(ctx: click.Context) -> None:
    """Vervang de hashsleutel; nieuwe hashes sluiten niet meer aan op eerdere exports."""
    rotation = run_and_close(_context(ctx), service.rotate_key)
    click.echo(
        f"nieuwe sleutel {rotation.new_key_id} in gebruik sinds {_stamp(rotation.activated_at)} UTC"
        + (f" (was {rotation.old_key_id})" if rotation.old_key_id else "")
    )
