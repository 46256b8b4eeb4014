"""Shared test fixtures: the ../shared oracle and the databases.

``../shared`` (beside the project root) holds reference material that tests read as an oracle.
Without it those tests skip with a visible reason, unless GGK_EBMS_REQUIRE_SHARED=1 (CI), where
its absence is a failure. PostgreSQL tests use GGK_EBMS_TEST_PG_URL (default: the project
machines' 127.0.0.1:5432, database ``test``); they skip when it is unreachable, unless
GGK_EBMS_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ggk_ebms.store.db import Database

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("GGK_EBMS_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


def require_shared(*parts: str) -> Path:
    """Path inside ../shared; skip (or fail under GGK_EBMS_REQUIRE_SHARED=1) when absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        # Without ../shared at all every such test gives the same reason, so pytest's summary
        # shows them as one line with their count; a missing file inside it is named.
        reason = (
            f"reference material not found: {path} (../shared beside the project)"
            if SHARED_DIR.is_dir() and any(SHARED_DIR.iterdir())
            else f"needs the reference material in ../shared ({SHARED_DIR} absent or empty)"
        )
        if os.environ.get("GGK_EBMS_REQUIRE_SHARED") == "1":
            pytest.fail(reason + "; GGK_EBMS_REQUIRE_SHARED=1 demands it")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()


# --- databases ------------------------------------------------------------------------------------
# ``db_url`` runs a test on SQLite (a temporary file) and on PostgreSQL. Each PostgreSQL test gets
# its own schema (search_path set through the connection options) that is dropped afterwards, so
# engineers running tests at the same time against one server never touch each other's tables.

PG_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("GGK_EBMS_TEST_PG_URL", PG_URL_DEFAULT)


def _skip_or_fail_postgres(reason: str) -> None:
    if os.environ.get("GGK_EBMS_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason + "; GGK_EBMS_REQUIRE_POSTGRES=1 demands it")
    pytest.skip(reason)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema of this test alone."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url(), connect_args={"connect_timeout": 3})
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        shown = sa.make_url(postgres_url()).render_as_string(hide_password=True)
        _skip_or_fail_postgres(f"PostgreSQL not reachable at {shown}: {type(exc).__name__}")
    url = sa.make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ggk-ebms.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated ``Database`` on each backend, disposed after the test."""
    from ggk_ebms.store.db import Database

    database = Database(db_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()
