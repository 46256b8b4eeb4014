"""``ggk-ebms backup`` / ``restore``: a backup restored into an empty database holds every
message, CPA, routing table, batch and mailbox item (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.config import Settings, dump_toml
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.aanlevering import BatchStore
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.tables import metadata
from tests.conftest import PROJECT_ROOT, _skip_or_fail_postgres, postgres_url
from tests.endpoint import party_settings

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MESSAGES = 8


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url_pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A database to back up and an empty one to restore into. On PostgreSQL two databases of
    this test's own (pg_dump/pg_restore work per database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'restored' / 'target.db'}"
        return
    admin = sa.create_engine(
        postgres_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    names = [f"ggk_bk_{uuid.uuid4().hex[:12]}_{side}" for side in ("src", "dst")]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        _skip_or_fail_postgres(f"PostgreSQL databases cannot be created: {type(exc).__name__}")
    base = sa.make_url(postgres_url())
    try:
        yield tuple(base.set(database=n).render_as_string(hide_password=False) for n in names)  # type: ignore[misc]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _settings(tmp: Path, url: str, side: str) -> Settings:
    cpa_dir = tmp / f"cpa-{side}"
    cpa_dir.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / "cpa" / "dev-osb-rm.xml", cpa_dir)
    settings = party_settings("gemeente", tmp / side, url, cpa_dir)
    (tmp / side).mkdir(parents=True, exist_ok=True)
    return settings.replace(ketendata_key_file=tmp / side / "ketendata.key")


def _outgoing(name: str, conversation: str, at: datetime, envelope: bytes | None = None) -> NewMessage:
    """A business message the gemeente sends; ``name`` makes its MessageId, so reruns compare."""
    return NewMessage(
        direction="out",
        message_id=f"{name}@gemeente.example",
        cpa_id="dev-osb-rm",
        conversation_id=conversation,
        from_party_id="00000099000003630000",
        to_party_id="00000099000001000000",
        service="urn:osb:services:osb:ggk",
        action="Bericht",
        kind="business",
        timestamp=at,
        status="Created",
        envelope=envelope,
    )


def _fill(settings: Settings) -> None:
    database = Database.from_settings(settings)
    try:
        database.upgrade()
        list(import_cpa_dir(settings, database))
        store = MessageStore(database)
        mailbox = Mailbox(database)
        for n in range(MESSAGES):
            pk = store.submit(
                _outgoing(
                    f"backup-{n}", f"conv-{n}", T0 + timedelta(minutes=n), envelope=f"<env n='{n}'/>".encode()
                ),
                [NewPart(f"p{n}@gemeente.example", "application/xml", f"<p>{n}</p>".encode() * 20)],
                due_at=T0,
            )
            mailbox.put(
                message_pk=pk,
                route_name="0363-mailbox",
                gemeentecode="0363",
                berichttype="WMO302",
                referentienummer=f"REF-{n}",
                zender="RINIS",
                filename=f"wmo302-{n}.xml",
                payload=f"<bericht n='{n}'/>".encode(),
                envelope=None,
            )
        RouteStore(database).replace(
            (PROJECT_ROOT / "dev" / "routes.toml").read_text(), source="routes.toml", base_dir=PROJECT_ROOT
        )
        BatchStore(database).create(
            bestandsnaam="week49.zip", verzender="medewerker", size=123, sha256="ab" * 32, at=T0
        )
    finally:
        database.dispose()


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    database = Database(url)
    try:
        out = {}
        with database.connection() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(sa.select(table)).all()
                out[table.name] = sorted((tuple(row) for row in rows), key=repr)
        return out
    finally:
        database.dispose()


def test_restore_into_an_empty_database_finds_everything(url_pair: tuple[str, str], tmp_path: Path) -> None:
    source_url, target_url = url_pair
    source = _settings(tmp_path, source_url, "source")
    _fill(source)
    source.ketendata_key_file.write_bytes(b"secret hmac key")  # type: ignore[union-attr]
    source_config = tmp_path / "source.toml"
    source_config.write_text(dump_toml(source))
    archive = tmp_path / "backups" / "one.tar"

    result = CliRunner().invoke(cli, ["--config", str(source_config), "backup", str(archive)])
    assert result.exit_code == 0, result.output
    assert archive.stat().st_mode & 0o077 == 0  # owner only: it holds message contents
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        everything = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    assert "settings.toml" in names
    assert {"certificates/tls_server_cert.pem", "certificates/tls_trust_store.pem"} <= names
    assert not any(name.startswith("keys/") for name in names)
    assert manifest["key_locations"]["tls_client_key"] == str(source.tls_client_key.resolve())
    assert manifest["key_locations"]["ketendata_key_file"] == str(source.ketendata_key_file.resolve())  # type: ignore[union-attr]
    assert b"PRIVATE KEY" not in everything and b"secret hmac key" not in everything

    target = _settings(tmp_path, target_url, "target")
    target_config = tmp_path / "target.toml"
    target_config.write_text(dump_toml(target))
    extracted = tmp_path / "extracted"
    result = CliRunner().invoke(
        cli, ["--config", str(target_config), "restore", str(archive), "--extract-to", str(extracted)]
    )
    assert result.exit_code == 0, result.output
    assert (extracted / "settings.toml").read_text() == source_config.read_text()

    assert _snapshot(target_url) == _snapshot(source_url)
    database = Database(target_url)
    try:
        assert database.is_current()
        store = MessageStore(database)
        for n in range(MESSAGES):
            found = store.find("out", f"backup-{n}@gemeente.example")
            assert found is not None
            assert store.get(found.pk).envelope == f"<env n='{n}'/>".encode()
            assert store.parts(found.pk)[0].data == f"<p>{n}</p>".encode() * 20
        [agreement] = CpaRepository(database).list()
        assert agreement.cpa_id.endswith("_osb-rm-1")
        current = RouteStore(database).current()
        assert current is not None and current.table().routes
        assert [b.bestandsnaam for b in BatchStore(database).list()] == ["week49.zip"]
        items = Mailbox(database).list()
        assert sorted(i.referentienummer for i in items) == [f"REF-{n}" for n in range(MESSAGES)]
    finally:
        database.dispose()

    # A second restore into the now filled database is refused: nothing is mixed or overwritten.
    result = CliRunner().invoke(cli, ["--config", str(target_config), "restore", str(archive)])
    assert result.exit_code == 1
    assert "not empty" in result.output


def test_keys_only_when_asked(tmp_path: Path) -> None:
    source = _settings(tmp_path, f"sqlite:///{tmp_path / 'source.db'}", "source")
    _fill(source)
    config = tmp_path / "source.toml"
    config.write_text(dump_toml(source))
    archive = tmp_path / "with-keys.tar"
    result = CliRunner().invoke(cli, ["--config", str(config), "backup", "--include-keys", str(archive)])
    assert result.exit_code == 0, result.output
    assert "privésleutels" in result.output
    with tarfile.open(archive) as tar:
        key = tar.extractfile("keys/tls_client_key").read()  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert key == source.tls_client_key.read_bytes()
    assert "tls_client_key" in manifest["keys_included"]
    target_config = tmp_path / "target.toml"
    target_config.write_text(dump_toml(_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", "target")))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["--config", str(target_config), "restore", str(archive), "--extract-to", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "keys" / "tls_client_key").stat().st_mode & 0o077 == 0


def test_backup_of_another_backend_is_refused(tmp_path: Path) -> None:
    source = _settings(tmp_path, f"sqlite:///{tmp_path / 'source.db'}", "source")
    _fill(source)
    config = tmp_path / "source.toml"
    config.write_text(dump_toml(source))
    archive = tmp_path / "a.tar"
    assert CliRunner().invoke(cli, ["--config", str(config), "backup", str(archive)]).exit_code == 0
    target_config = tmp_path / "pg.toml"
    target_config.write_text(
        dump_toml(source.replace(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    )
    result = CliRunner().invoke(cli, ["--config", str(target_config), "restore", str(archive)])
    assert result.exit_code == 1
    assert "sqlite database" in result.output


def test_backup_while_messages_are_written_is_consistent(url_pair: tuple[str, str], tmp_path: Path) -> None:
    """Online: a backup taken while another thread stores messages holds each message whole
    (its parts and its job with it) or not at all."""
    import threading

    from ggk_ebms.backup import make_backup, restore_backup

    source_url, target_url = url_pair
    source = _settings(tmp_path, source_url, "source")
    _fill(source)
    database = Database(source_url)
    store = MessageStore(database)
    stop = threading.Event()
    written = threading.Event()
    count = 0

    def writer() -> None:
        nonlocal count
        while not stop.is_set():
            store.submit(
                _outgoing(f"online-{count}", f"online-{count}", T0),
                [
                    NewPart(f"o{count}@x", "application/xml", b"<o/>" * 100),
                    NewPart(f"p{count}@x", "text/plain", b"p"),
                ],
                due_at=T0,
            )
            count += 1
            written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert written.wait(60)
        make_backup(source, tmp_path / "online.tar", settings_file=None)
    finally:
        stop.set()
        thread.join(60)
        database.dispose()
    restore_backup(_settings(tmp_path, target_url, "target"), tmp_path / "online.tar")
    restored = Database(target_url)
    try:
        with restored.connection() as conn:
            names = (
                conn.execute(sa.text("SELECT pk FROM message WHERE message_id LIKE 'online-%'"))
                .scalars()
                .all()
            )
            for pk in names:
                parts = conn.execute(
                    sa.text(f"SELECT count(*) FROM message_part WHERE message_pk = {int(pk)}")
                ).scalar()
                jobs = conn.execute(
                    sa.text(f"SELECT count(*) FROM job WHERE message_pk = {int(pk)}")
                ).scalar()
                assert (parts, jobs) == (2, 1)
            if restored.backend == "sqlite":
                assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
        assert 1 <= len(names) <= count
    finally:
        restored.dispose()


def test_default_archive_and_an_older_schema(tmp_path: Path) -> None:
    """Without a name the archive goes to data_dir/backups; a backup of an older schema restores
    as it was and the restore says to upgrade."""
    from alembic import command

    source = _settings(tmp_path, f"sqlite:///{tmp_path / 'old.db'}", "source")
    old = Database(source.effective_database_url)
    with old.connection() as conn:
        command.upgrade(old._alembic_config(conn), "0001")
    old.dispose()
    config = tmp_path / "source.toml"
    config.write_text(dump_toml(source))
    result = CliRunner().invoke(cli, ["--config", str(config), "backup"])
    assert result.exit_code == 0, result.output
    [archive] = (source.data_dir / "backups").glob("ggk-ebms-backup-*.tar")
    target_config = tmp_path / "target.toml"
    target_config.write_text(dump_toml(_settings(tmp_path, f"sqlite:///{tmp_path / 'new.db'}", "target")))
    result = CliRunner().invoke(cli, ["--config", str(target_config), "restore", str(archive)])
    assert result.exit_code == 0, result.output
    assert "schemarevisie 0001" in result.output and "db upgrade" in result.output
    restored = Database(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert restored.current_revision() == "0001"
    finally:
        restored.dispose()
