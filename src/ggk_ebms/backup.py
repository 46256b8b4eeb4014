"""Backups of one installation: the database, the settings file, certificates, and where the keys are.

A backup is one tar file (docs/operations.md "Backup and restore"):

- ``manifest.json``: when, which software version, which backend, the schema revision, the
  settings file's name, and the location of every private key and secret file;
- ``database.sqlite`` (SQLite's online backup API: a consistent copy while the server runs) or
  ``database.pgdump`` (``pg_dump --format=custom``, the documented PostgreSQL procedure);
- ``settings.toml``: the settings file in use, when there is one;
- ``certificates/<setting>.pem``: the certificates and the trust store (public material);
- ``keys/<setting>``: private keys and secret files, ONLY when asked (``--include-keys``): a backup
  usually travels to places the keys should not go, so by default it records where they are.

Every message, CPA, routing table, batch and mailbox item lives in the database, so the database
copy holds them all. The archive does hold message contents (personal data): it is written
readable by its owner only.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ggk_ebms import __version__
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
SQLITE_MEMBER: Final = "database.sqlite"
PG_MEMBER: Final = "database.pgdump"
SETTINGS_MEMBER: Final = "settings.toml"

# Settings naming public material (copied) and private material (location only, unless asked).
CERTIFICATE_SETTINGS: Final = ("tls_server_cert", "tls_client_cert", "tls_trust_store")
SECRET_SETTINGS: Final = (
    "tls_server_key",
    "tls_client_key",
    "signing_key",
    "encryption_key",
    "key_passphrase_file",
    "effective_ketendata_key_file",
    "smtp_password_file",
)


class BackupError(GgkEbmsError):
    """A backup or restore that cannot be made; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    backend: str
    revision: str | None
    members: list[str]


@dataclass(frozen=True)
class RestoreResult:
    backend: str
    revision: str | None
    head: str | None
    manifest: dict[str, Any]


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI (no password) and the environment carrying the password.

    The password goes through PGPASSWORD, never on the command line where ``ps`` shows it.
    """
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        completed = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(f"{args[0]} not found: install the PostgreSQL client tools ({what})") from None
    if completed.returncode != 0:
        detail = completed.stderr.strip().splitlines()
        raise BackupError(f"{what} failed: {detail[-1] if detail else f'exit status {completed.returncode}'}")


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent snapshot, also while the server writes.

    Backup and restore both copy this way; ``source`` is only read.
    """
    src = sqlite3.connect(f"file:{quote(str(source.resolve()))}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _locations(settings: Settings) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in SECRET_SETTINGS:
        value = getattr(settings, name)
        out[name.removeprefix("effective_")] = None if value is None else str(Path(value).resolve())
    return out


def make_backup(
    settings: Settings,
    archive: Path,
    *,
    settings_file: Path | None,
    include_keys: bool = False,
    now: datetime | None = None,
) -> BackupResult:
    """Write a backup of the installation described by ``settings`` to ``archive`` (a tar file)."""
    database = Database(settings.effective_database_url)
    try:
        sqlite_file = database.sqlite_file
        if sqlite_file is not None and not sqlite_file.exists():
            raise BackupError(f"no database at {sqlite_file}: nothing to back up")
        revision = database.current_revision()
        backend = database.backend
    finally:
        database.dispose()
    members: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ggk-ebms-backup-") as tmp_name:
        tmp = Path(tmp_name)
        if backend == "sqlite":
            assert sqlite_file is not None
            _sqlite_copy(sqlite_file, tmp / SQLITE_MEMBER)
            members.append(SQLITE_MEMBER)
        else:
            uri, env = _libpq(settings.effective_database_url)
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={tmp / PG_MEMBER}",
                    uri,
                ],
                env,
                "pg_dump",
            )
            members.append(PG_MEMBER)
        if settings_file is not None:
            shutil.copyfile(settings_file, tmp / SETTINGS_MEMBER)
            members.append(SETTINGS_MEMBER)
        certificates: dict[str, str] = {}
        for name in CERTIFICATE_SETTINGS:
            path: Path = getattr(settings, name)
            if path.is_file():
                member = f"certificates/{name}.pem"
                (tmp / "certificates").mkdir(exist_ok=True)
                shutil.copyfile(path, tmp / member)
                members.append(member)
                certificates[name] = str(path.resolve())
        included: list[str] = []
        locations = _locations(settings)
        if include_keys:
            for name, location in locations.items():
                if location is not None and Path(location).is_file():
                    member = f"keys/{name}"
                    (tmp / "keys").mkdir(exist_ok=True)
                    shutil.copyfile(location, tmp / member)
                    members.append(member)
                    included.append(name)
        manifest = {
            "format": FORMAT,
            "created_at": (now or datetime.now(UTC)).isoformat(),
            "ggk_ebms_version": __version__,
            "backend": backend,
            "schema_revision": revision,
            "settings_file": None if settings_file is None else str(settings_file.resolve()),
            "certificates": certificates,
            "key_locations": locations,
            "keys_included": included,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        # Owner-only from the first byte: the archive holds message contents (and maybe keys).
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            tar.add(tmp / MANIFEST, arcname=MANIFEST)
            for member in members:
                tar.add(tmp / member, arcname=member)
        partial.replace(archive)
    return BackupResult(archive, backend, revision, [MANIFEST, *members])


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise BackupError(f"{archive} holds no {MANIFEST}: not a ggk-ebms backup")
            manifest: dict[str, Any] = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{archive} is not a readable ggk-ebms backup: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {manifest.get('format')!r} is not supported")
    return manifest


def _extract(archive: Path, name: str, target: Path) -> None:
    with tarfile.open(archive, "r") as tar:
        source = tar.extractfile(name)
        if source is None:
            raise BackupError(f"{archive} holds no {name}")
        with source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)


def _require_empty(database: Database) -> None:
    sqlite_file = database.sqlite_file
    if sqlite_file is not None and not sqlite_file.exists():
        return
    with database.connection() as conn:
        tables = sa.inspect(conn).get_table_names()
    if tables:
        raise BackupError(
            f"database {database.display_url} is not empty ({len(tables)} tables): restore only into "
            "an empty database, so nothing is mixed or overwritten"
        )


def restore_backup(settings: Settings, archive: Path, *, extract_to: Path | None = None) -> RestoreResult:
    """Restore the database of ``archive`` into the (empty) database ``settings`` name.

    ``extract_to``: also write the archive's settings file, certificates and any included keys
    there (keys readable by the owner only), for setting up a replacement machine.
    """
    manifest = read_manifest(archive)
    database = Database.from_settings(settings)
    try:
        if database.backend != manifest["backend"]:
            raise BackupError(
                f"the backup is of a {manifest['backend']} database; the configured database is "
                f"{database.backend}: configure a {manifest['backend']} database to restore into"
            )
        head = database.head_revision()
        revision = manifest.get("schema_revision")
        if revision is not None and revision not in database.known_revisions():
            raise BackupError(
                f"the backup is at schema revision {revision}, which this version does not know: "
                "restore with the version that made it"
            )
        _require_empty(database)
        with tempfile.TemporaryDirectory(prefix="ggk-ebms-restore-") as tmp_name:
            tmp = Path(tmp_name)
            if database.backend == "sqlite":
                _extract(archive, SQLITE_MEMBER, tmp / SQLITE_MEMBER)
                target = database.sqlite_file
                if target is None:
                    raise BackupError("restore needs a SQLite database file, not an in-memory one")
                database.dispose()
                _sqlite_copy(tmp / SQLITE_MEMBER, target)
            else:
                _extract(archive, PG_MEMBER, tmp / PG_MEMBER)
                uri, env = _libpq(settings.effective_database_url)
                _run(
                    [
                        "pg_restore",
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                        "--single-transaction",
                        f"--dbname={uri}",
                        str(tmp / PG_MEMBER),
                    ],
                    env,
                    "pg_restore",
                )
        if extract_to is not None:
            _extract_files(archive, extract_to)
    finally:
        database.dispose()
    return RestoreResult(database.backend, revision, head, manifest)


def _extract_files(archive: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r") as tar:
        for member in tar.getmembers():
            name = member.name
            if not member.isfile() or name in (SQLITE_MEMBER, PG_MEMBER):
                continue
            # Only our own flat layout; anything else (absolute, ..) is not ours to write.
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts or len(parts) > 2:
                raise BackupError(f"{archive}: unexpected member {name!r}")
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            fd = os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if parts[0] == "keys" else 0o644
            )
            with source, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out)
