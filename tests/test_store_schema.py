"""The migrations create exactly the schema tables.py declares, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError, StoreError, StoreUnavailableError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import cpa, metadata


def test_empty_database_is_not_migrated(db_url: str) -> None:
    database = Database(db_url)
    try:
        assert database.current_revision() is None
        assert not database.is_current()
        database.upgrade()
        assert database.current_revision() == database.head_revision()
        assert database.is_current()
        database.upgrade()  # idempotent
        assert database.current_revision() == database.head_revision()
    finally:
        database.dispose()


def test_migrated_schema_matches_metadata(db: Database) -> None:
    with db.connection() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrated_tables_are_exactly_the_declared_ones(db: Database) -> None:
    with db.connection() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert names - {"alembic_version"} == set(metadata.tables)


def test_times_come_back_aware_utc(db: Database) -> None:
    amsterdam_summer = timezone(timedelta(hours=2))
    start = datetime(2026, 7, 1, 14, 0, tzinfo=amsterdam_summer)
    with db.session() as session:
        session.execute(
            sa.insert(cpa).values(
                cpa_id="t",
                raw=b"x",
                sha256="0" * 64,
                status="active",
                start_at=start,
                end_at=start,
                party_ids=[],
                profiles=[],
                imported_at=start,
                updated_at=start,
            )
        )
    with db.session() as session:
        stored = session.execute(sa.select(cpa.c.start_at)).scalar_one()
    assert stored == start
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(StoreError), db.session() as session:
        session.execute(
            sa.insert(cpa).values(
                cpa_id="t",
                raw=b"x",
                sha256="0" * 64,
                status="active",
                start_at=datetime(2026, 1, 1),  # naive on purpose
                end_at=datetime(2026, 1, 1, tzinfo=UTC),
                party_ids=[],
                profiles=[],
                imported_at=datetime(2026, 1, 1, tzinfo=UTC),
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )


def test_sqlite_runs_durable_wal_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/pragmas.db")
    try:
        with database.connection() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        database.dispose()
    assert pragma["journal_mode"] == "wal"
    assert pragma["synchronous"] == 2  # FULL
    assert pragma["foreign_keys"] == 1
    assert pragma["busy_timeout"] == 30_000


def test_unmigrated_sqlite_says_run_upgrade(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(StoreError, match="db upgrade") as caught, database.session() as session:
            session.execute(sa.select(cpa))
        assert not isinstance(caught.value, StoreUnavailableError)
    finally:
        database.dispose()


def test_unmigrated_postgres_says_run_upgrade(pg_schema_url: str) -> None:
    database = Database(pg_schema_url)
    try:
        with pytest.raises(StoreError, match="db upgrade") as caught, database.session() as session:
            session.execute(sa.select(cpa))
        assert not isinstance(caught.value, StoreUnavailableError)
    finally:
        database.dispose()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_postgres_is_store_unavailable() -> None:
    database = Database(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test")
    try:
        with pytest.raises(StoreUnavailableError), database.session() as session:
            session.execute(sa.text("SELECT 1"))
        with pytest.raises(StoreUnavailableError):
            database.ping()
        with pytest.raises(StoreUnavailableError):
            database.current_revision()
    finally:
        database.dispose()


def test_unreachable_error_does_not_leak_sqlalchemy() -> None:
    database = Database(f"postgresql+psycopg://postgres:secret@127.0.0.1:{_closed_port()}/test")
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            database.ping()
    finally:
        database.dispose()
    assert not isinstance(caught.value, sa.exc.SQLAlchemyError)
    assert "secret" not in str(caught.value)
    assert "secret" not in database.display_url


def test_caller_errors_roll_back_and_pass_through(db: Database) -> None:
    class Boom(Exception):
        pass

    def insert_then_fail() -> None:
        with db.session() as session:
            session.execute(
                sa.insert(cpa).values(
                    cpa_id="rolled-back",
                    raw=b"x",
                    sha256="0" * 64,
                    status="active",
                    start_at=datetime(2026, 1, 1, tzinfo=UTC),
                    end_at=datetime(2026, 1, 1, tzinfo=UTC),
                    party_ids=[],
                    profiles=[],
                    imported_at=datetime(2026, 1, 1, tzinfo=UTC),
                    updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
            raise Boom

    with pytest.raises(Boom):
        insert_then_fail()
    with db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(cpa)).scalar_one() == 0


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql+pymysql://user:pw@localhost/db", "postgresql+nodriver://user:pw@localhost/db"],
    ids=["unparsable", "unsupported-backend", "unknown-driver"],
)
def test_unusable_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Database(url)
    assert "pw@" not in str(caught.value)


def test_from_settings_creates_the_sqlite_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "deep" / "var")
    database = Database.from_settings(settings)
    try:
        assert (tmp_path / "deep" / "var").is_dir()
        assert database.sqlite_file == tmp_path / "deep" / "var" / "ggk-ebms.db"
        database.upgrade()
        assert database.is_current()
    finally:
        database.dispose()
