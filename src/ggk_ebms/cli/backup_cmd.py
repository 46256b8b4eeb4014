"""``ggk-ebms backup`` and ``ggk-ebms restore``: one archive holds an installation's database, its
settings file and certificates, and where its keys are (ggk_ebms/backup.py; docs/operations.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ggk_ebms.backup import make_backup, restore_backup
from ggk_ebms.config import CONFIG_ENV, DEFAULT_CONFIG_FILE
from ggk_ebms.errors import GgkEbmsError


def _settings_file(ctx: click.Context) -> Path | None:
    """The settings file ``load`` reads, in its own order of precedence (None: defaults only)."""
    import os

    explicit: Path | None = getattr(ctx.find_root().obj, "config_file", None)
    if explicit is not None:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


@click.command("backup")
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option(
    "--include-keys",
    is_flag=True,
    help="Also copy the private keys and secret files into the archive (default: their locations only).",
)
@click.pass_context
def backup(ctx: click.Context, archive: Path | None, include_keys: bool) -> None:
    """Back up the database (online; the server may keep running), settings file and certificates.

    ARCHIVE: the tar file to write (default: ggk-ebms-backup-<UTC time>.tar in data_dir/backups).
    """
    from ggk_ebms.cli.main import fail, settings_of

    settings = settings_of(ctx)
    now = datetime.now(UTC)
    if archive is None:
        archive = settings.data_dir / "backups" / f"ggk-ebms-backup-{now:%Y%m%dT%H%M%SZ}.tar"
    if archive.exists():
        fail(f"{archive} exists already; choose another name")
    try:
        result = make_backup(
            settings, archive, settings_file=_settings_file(ctx), include_keys=include_keys, now=now
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    click.echo(
        f"Back-up geschreven naar {result.archive} ({result.backend}, schemarevisie {result.revision})."
    )
    for member in result.members:
        click.echo(f"  {member}")
    if include_keys:
        click.secho("Let op: dit archief bevat privésleutels. Bewaar het versleuteld.", fg="yellow")
    else:
        click.echo("Privésleutels zitten er niet in; manifest.json noemt waar ze staan.")
    click.echo("Het archief bevat berichten met persoonsgegevens: alleen voor de eigenaar leesbaar.")


@click.command("restore")
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--extract-to",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write the archive's settings file, certificates and any keys into this folder.",
)
@click.pass_context
def restore(ctx: click.Context, archive: Path, extract_to: Path | None) -> None:
    """Restore a backup into the configured database, which must be empty."""
    from ggk_ebms.cli.main import fail, settings_of

    settings = settings_of(ctx)
    try:
        result = restore_backup(settings, archive, extract_to=extract_to)
    except GgkEbmsError as exc:
        fail(str(exc))
    made = result.manifest.get("created_at", "?")
    click.echo(f"Back-up van {made} teruggezet ({result.backend}, schemarevisie {result.revision}).")
    if result.revision != result.head:
        click.echo(f"De nieuwste schemarevisie is {result.head}: voer `ggk-ebms db upgrade` uit.")
    if extract_to is not None:
        click.echo(f"Instellingen en certificaten uitgepakt in {extract_to}.")
    missing = [
        name
        for name, location in result.manifest.get("key_locations", {}).items()
        if location and name not in result.manifest.get("keys_included", []) and not Path(location).exists()
    ]
    for name in missing:
        click.secho(
            f"Ontbreekt hier: {name} ({result.manifest['key_locations'][name]}); zet het bestand terug.",
            fg="yellow",
        )
