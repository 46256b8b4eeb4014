"""``ggk-ebms aanleveren FILE...``, ``aanleveren list``, ``aanleveren show BATCH``: the portal's
Aanleveren with its verwerkingsverslag (docs/operations.md). Console texts in Dutch."""

from __future__ import annotations

from pathlib import Path

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.ops_support import call_service, emit_csv, emit_json, service_context, when
from ggk_ebms.cli.output import csv_option, json_option, paging_options
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import aanleveren as service
from ggk_ebms.services.aanleveren import BatchQuery, Upload, UploadRefused, Verslag


class _Group(click.Group):
    """``aanleveren FILE...`` runs the upload; ``aanleveren list|show`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["upload", *args]
        return super().parse_args(ctx, args)


@click.group("aanleveren", cls=_Group)
def aanleveren() -> None:
    """Lever een ZIP of XML-bestanden aan (Aanleveren) en bekijk de verwerkingsverslagen.

    \b
    ggk-ebms aanleveren FILE.zip|FILE.xml...   aanleveren, verslag per bestand
    ggk-ebms aanleveren list                   de aanleveringen
    ggk-ebms aanleveren show BATCH [--json|--csv]
    """


def _print(verslag: Verslag) -> None:
    click.echo(f"Verwerkingsverslag aanlevering {verslag.batch}")
    rows = [
        ("Bestandsnaam", verslag.bestandsnaam),
        ("Verzender", verslag.verzender),
        ("Status", verslag.status),
        ("Ingeleverd op", when(verslag.ingeleverd_op)),
        ("Verwacht einde", when(verslag.verwacht_einde)),
        ("Einde verwerking", when(verslag.einde_verwerking)),
        ("Verwerkingsduur", verslag.verwerkingsduur or ""),
        ("Aantal bestanden aangeleverd", str(verslag.aantal_aangeleverd)),
        ("Correct", str(verslag.aantal_correct)),
        ("Incorrect", str(verslag.aantal_incorrect)),
    ]
    for name, value in rows:
        click.echo(f"  {name:<30} {value}")
    if verslag.fouten:
        click.echo("Fouten:")
        for f in verslag.fouten:
            click.echo(f"  {f.bestand}: {f.foutomschrijving} — {f.fout_detail}")
    already = [f for f in verslag.bestanden if f.uitkomst == "al verzonden"]
    if already:
        click.echo("Al eerder verzonden (niet opnieuw verzonden):")
        for f in already:
            click.echo(f"  {f.bestand}: bericht {f.message_pk}")


@aanleveren.command("upload", hidden=True)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--json", "as_json", is_flag=True, help="De verslagen als JSON.")
@click.pass_context
def upload(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Lever FILES aan: elk bestand wordt een aanlevering met een verslag."""
    settings = settings_of(ctx)
    database = open_database(settings)
    sctx = service_context(settings, database)
    verslagen: list[Verslag] = []
    refused: list[str] = []
    try:
        for path in files:
            try:
                verslagen.append(service.aanleveren(sctx, Upload(path.name, path)))
            except UploadRefused as exc:
                refused.append(str(exc))
                click.secho(f"geweigerd: {exc}", fg="red", err=True)
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if as_json:
        emit_json(verslagen)
    else:
        for verslag in verslagen:
            _print(verslag)
    if refused or any(v.status == "Afgekeurd" for v in verslagen):
        raise SystemExit(1)


@aanleveren.command("list")
@click.option(
    "--status",
    type=click.Choice(["Ontvangen", "Bezig", "Afgeleverd", "Afgekeurd", "Onderbroken"]),
    default=None,
)
@paging_options(default_limit=50)
@json_option
@csv_option
@click.pass_context
def list_command(
    ctx: click.Context, status: str | None, limit: int, offset: int, as_json: bool, as_csv: bool
) -> None:
    """De aanleveringen, nieuwste eerst."""
    query = BatchQuery(status=status, limit=limit, offset=offset)
    batches = call_service(ctx, lambda context: service.list_batches(context, query))
    header = (
        "aanlevering",
        "aanleverdatum",
        "verzender",
        "bestandsnaam",
        "status",
        "aangeleverd",
        "correct",
        "incorrect",
    )
    rows = [
        (
            b.batch,
            b.ingeleverd_op,
            b.verzender,
            b.bestandsnaam,
            b.status,
            b.aantal_aangeleverd,
            b.aantal_correct,
            b.aantal_incorrect,
        )
        for b in batches
    ]
    if as_json:
        emit_json(batches)
    elif as_csv:
        emit_csv(header, rows)
    elif not rows:
        click.echo("geen aanleveringen")
    else:
        for r in rows:
            click.echo(f"{r[0]:>6}  {when(r[1])}  {r[2]}  {r[3]}  {r[4]}  {r[5]}/{r[6]}/{r[7]}")


@aanleveren.command("show")
@click.argument("batch", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True, help="Per bestand één regel (puntkomma-gescheiden).")
@click.pass_context
def show_command(ctx: click.Context, batch: int, as_json: bool, as_csv: bool) -> None:
    """Het verwerkingsverslag van aanlevering BATCH."""
    verslag = call_service(ctx, lambda context: service.verslag(context, batch))
    if as_json:
        emit_json(verslag)
    elif as_csv:
        emit_csv(
            (
                "bestand",
                "uitkomst",
                "foutomschrijving",
                "fout detail",
                "berichttype",
                "gemeentecode",
                "referentienummer",
                "bericht",
            ),
            [
                (
                    f.bestand,
                    f.uitkomst,
                    f.foutomschrijving,
                    f.fout_detail,
                    f.berichttype,
                    f.gemeentecode,
                    f.referentienummer,
                    f.message_pk,
                )
                for f in verslag.bestanden
            ],
        )
    else:
        _print(verslag)
