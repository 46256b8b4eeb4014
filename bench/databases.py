"""The database of one benchmark run: a fresh SQLite file, or a private PostgreSQL schema.

PostgreSQL runs use 127.0.0.1:5432 database ``test`` (override: GGK_EBMS_BENCH_PG_URL, else
GGK_EBMS_TEST_PG_URL) with a schema of their own, selected through the connection's
``options=-csearch_path=...`` and dropped afterwards, so runs never see each other's rows nor
anyone else's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import sqlalchemy as sa

PG_URL_DEFAULT: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS: Final = ("sqlite", "postgres")


class DatabaseUnavailable(RuntimeError):
    """The asked-for backend cannot be used on this machine (said plainly, no figures made up)."""


def postgres_url() -> str:
    return os.environ.get("GGK_EBMS_BENCH_PG_URL") or os.environ.get("GGK_EBMS_TEST_PG_URL") or PG_URL_DEFAULT


@contextmanager
def private_database(backend: str, work: Path, name: str) -> Iterator[str]:
    """A URL of an empty database named ``name`` for this run; removed again afterwards."""
    if backend == "sqlite":
        work.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{work / (name + '.db')}"
        return
    if backend != "postgres":
        raise ValueError(f"unknown database backend {backend!r}; use one of {', '.join(BACKENDS)}")
    admin = sa.create_engine(postgres_url(), connect_args={"connect_timeout": 3})
    schema = f"bench_{name}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        shown = sa.make_url(postgres_url()).render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"PostgreSQL not reachable at {shown}: {type(exc).__name__}") from None
    url = sa.make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
