"""Upgrades keep data: a database made by an older release upgrades to the current schema and
every message written by that release reads back (docs/operations.md "Upgrade").

The old release's rows are written through the tables as that release created them (reflected
from the database at that revision), not through today's tables.py, so a column that a later
migration adds, renames or constrains is exercised exactly as a real upgrade would meet it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.errors import StoreError
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MESSAGES = 12


def _revisions(database: Database) -> list[str]:
    script = ScriptDirectory.from_config(database._alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _upgrade_to(database: Database, revision: str) -> None:
    with database.connection() as conn:
        command.upgrade(database._alembic_config(conn), revision)


def _when(moment: datetime, backend: str) -> datetime:
    # Rows go in through reflected tables, without the store's UtcDateTime: store UTC wall time
    # on SQLite as the store itself does.
    return moment.replace(tzinfo=None) if backend == "sqlite" else moment


def _fill_as_old_release(database: Database, release: str) -> list[dict[str, Any]]:
    """CPAs, messages with parts, jobs and attempts, written through the tables of the database's
    current (old) revision ``release``."""
    backend = database.backend
    old = sa.MetaData()
    with database.connection() as conn:
        old.reflect(conn)
        t = old.tables
        conn.execute(
            t["cpa"].insert(),
            [
                {
                    "cpa_id": f"cpa-{release}-{n}",
                    "raw": f"<cpa n='{n}'/>".encode(),
                    "sha256": hashlib.sha256(str(n).encode()).hexdigest(),
                    "status": "active",
                    "start_at": _when(T0, backend),
                    "end_at": _when(T0 + timedelta(days=365), backend),
                    "party_ids": ["00000099000003630000", "00000099000001000000"],
                    "profiles": ["osb-rm-s"],
                    "imported_at": _when(T0, backend),
                    "updated_at": _when(T0, backend),
                }
                for n in range(2)
            ],
        )
        written = []
        for n in range(MESSAGES):
            row = {
                "direction": "in" if n % 2 else "out",
                "message_id": f"upgrade-{release}-{n}@gemeente.example",
                "cpa_id": f"cpa-{release}-{n % 2}",
                "conversation_id": f"conv-{n}",
                "ref_to_message_id": None,
                "from_party_id": "00000099000001000000",
                "to_party_id": "00000099000003630000",
                "service": "urn:osb:services:osb:ggk",
                "action": "Bericht",
                "kind": "business",
                "timestamp": _when(T0 + timedelta(minutes=n), backend),
                "status": "Processed" if n % 2 else "Delivered",
                "envelope": f"<env n='{n}'/>".encode(),
                "content_type": "multipart/related",
                "sync_reply": False,
                "created_at": _when(T0 + timedelta(minutes=n), backend),
                "updated_at": _when(T0 + timedelta(minutes=n), backend),
            }
            pk = conn.execute(t["message"].insert().values(**row).returning(t["message"].c.pk)).scalar_one()
            payload = f"payload {n} ".encode() * 50
            conn.execute(
                t["message_part"].insert(),
                {
                    "message_pk": pk,
                    "seq": 0,
                    "content_id": f"part-{n}@gemeente.example",
                    "content_type": "application/xml",
                    "data": payload,
                    "sha256": hashlib.sha256(payload).hexdigest(),
                    "size": len(payload),
                },
            )
            job_pk = conn.execute(
                t["job"]
                .insert()
                .values(
                    queue="deliver" if n % 2 else "send",
                    message_pk=pk,
                    status="done",
                    due_at=_when(T0, backend),
                    attempts=1,
                    created_at=_when(T0, backend),
                    updated_at=_when(T0, backend),
                )
                .returning(t["job"].c.pk)
            ).scalar_one()
            conn.execute(
                t["attempt"].insert(),
                {
                    "message_pk": pk,
                    "job_pk": job_pk,
                    "started_at": _when(T0, backend),
                    "finished_at": _when(T0, backend),
                    "outcome": "ok",
                    "http_status": 200,
                },
            )
            written.append({**row, "pk": pk, "payload": payload})
    return written


def test_first_schema_upgrades_with_every_message_intact(db_url: str) -> None:
    database = Database(db_url)
    try:
        revisions = _revisions(database)
        _upgrade_to(database, revisions[0])  # the first release's schema
        written = _fill_as_old_release(database, revisions[0])
        # Step through every later release's revision, as sites that upgraded release by release.
        for revision in revisions[1:-1]:
            _upgrade_to(database, revision)
            # A site on this release kept working: its messages must survive the next steps too.
            written += _fill_as_old_release(database, revision)
        database.upgrade()
        assert database.is_current()

        store = MessageStore(database)
        for row in written:
            found = store.find(row["direction"], row["message_id"])
            assert found is not None, row["message_id"]
            assert found.pk == row["pk"]
            assert found.status == row["status"]
            assert found.cpa_id == row["cpa_id"]
            assert found.timestamp == row["timestamp"].replace(tzinfo=UTC)
            envelope = store.get(found.pk)
            assert envelope.envelope == row["envelope"]
            [part] = store.parts(found.pk)
            assert part.data == row["payload"]
            assert part.sha256 == hashlib.sha256(row["payload"]).hexdigest()
        releases = revisions[:-1]
        assert store.count() == MESSAGES * len(releases)
        assert sorted(c.cpa_id for c in CpaRepository(database).list()) == sorted(
            f"cpa-{release}-{n}" for release in releases for n in range(2)
        )
    finally:
        database.dispose()


def test_database_newer_than_the_software_is_refused(db_url: str) -> None:
    database = Database(db_url)
    try:
        database.upgrade()
        with database.connection() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        with pytest.raises(StoreError, match="newer version"):
            database.check_not_newer()
        with pytest.raises(StoreError, match="newer version"):
            database.upgrade()
    finally:
        database.dispose()


def test_serve_refuses_a_newer_database(tmp_path: Any) -> None:
    db_file = tmp_path / "ggk.db"
    database = Database(f"sqlite:///{db_file}")
    database.upgrade()
    with database.connection() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    database.dispose()
    for auto_migrate in ("true", "false"):
        config = tmp_path / f"settings-{auto_migrate}.toml"
        config.write_text(
            f'database_url = "sqlite:///{db_file}"\nauto_migrate = {auto_migrate}\nport = 0\n'
            f'cpa_autoimport = false\nroutes_file = ""\nketendata_schedule = false\n'
        )
        result = CliRunner().invoke(cli, ["--config", str(config), "serve"])
        assert result.exit_code == 1, result.output
        assert "9999_from_the_future" in result.output
        assert "newer version" in result.output


def test_db_upgrade_sql_prints_the_pending_sql_without_running_it(tmp_path: Any) -> None:
    db_file = tmp_path / "ggk.db"
    config = tmp_path / "settings.toml"
    config.write_text(f'database_url = "sqlite:///{db_file}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade", "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE message (" in result.output
    assert "CREATE TABLE alembic_version" in result.output
    assert not db_file.exists()  # printed only, nothing created

    database = Database(f"sqlite:///{db_file}")
    revisions = _revisions(database)
    _upgrade_to(database, revisions[0])
    database.dispose()
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade", "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE message (" not in result.output  # 0001 is in place already
    assert f"Running upgrade {revisions[0]} -> {revisions[1]}" in result.output
    database = Database(f"sqlite:///{db_file}")
    assert database.current_revision() == revisions[0]  # nothing ran
    database.upgrade()
    database.dispose()
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade", "--sql"])
    assert result.exit_code == 0
    assert "nothing to run" in result.output
