"""``python -m bench.backup``: how long ``ggk-ebms backup`` and ``restore`` take, and the archive size.

Fills a database of its own with N business messages (one 2 KB part and a send job each, written in
bulk through the schema's tables), then times ``make_backup`` and ``restore_backup`` into a second,
empty database, and checks that the restored message count is N. PostgreSQL uses two databases of
its own (pg_dump/pg_restore work per database), dropped afterwards. Prints figures; never asserts
on them.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.databases import postgres_url
from ggk_ebms.backup import make_backup, restore_backup
from ggk_ebms.config import Settings
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import job, message, message_part

T0 = datetime(2026, 12, 1, tzinfo=UTC)
BATCH = 2000


@contextmanager
def _two_databases(backend: str, work: Path) -> Iterator[tuple[str, str]]:
    if backend == "sqlite":
        yield f"sqlite:///{work / 'source.db'}", f"sqlite:///{work / 'target.db'}"
        return
    admin = sa.create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    names = [f"bench_backup_{uuid.uuid4().hex[:10]}_{side}" for side in ("src", "dst")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        base = sa.make_url(postgres_url())
        yield (
            base.set(database=names[0]).render_as_string(hide_password=False),
            base.set(database=names[1]).render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fill(url: str, count: int) -> None:
    database = Database(url)
    database.upgrade()
    payload = b"<bericht>" + b"x" * 2030 + b"</bericht>"
    digest = hashlib.sha256(payload).hexdigest()
    try:
        for start in range(0, count, BATCH):
            with database.session() as session:
                rows = [
                    {
                        "direction": "out",
                        "message_id": f"bench-{n}@gemeente.example",
                        "cpa_id": "bench",
                        "conversation_id": f"c{n}",
                        "from_party_id": "00000099000003630000",
                        "to_party_id": "00000099000001000000",
                        "service": "urn:osb:services:osb:ggk",
                        "action": "Bericht",
                        "kind": "business",
                        "timestamp": T0,
                        "status": "Delivered",
                        "envelope": b"<env/>" * 100,
                        "sync_reply": False,
                        "created_at": T0,
                        "updated_at": T0,
                    }
                    for n in range(start, min(start + BATCH, count))
                ]
                pks = session.execute(sa.insert(message).returning(message.c.pk), rows).scalars().all()
                session.execute(
                    sa.insert(message_part),
                    [
                        {
                            "message_pk": pk,
                            "seq": 0,
                            "content_id": f"p{pk}@x",
                            "content_type": "application/xml",
                            "data": payload,
                            "sha256": digest,
                            "size": len(payload),
                        }
                        for pk in pks
                    ],
                )
                session.execute(
                    sa.insert(job),
                    [
                        {
                            "queue": "send",
                            "message_pk": pk,
                            "status": "done",
                            "due_at": T0,
                            "attempts": 1,
                            "created_at": T0,
                            "updated_at": T0,
                        }
                        for pk in pks
                    ],
                )
    finally:
        database.dispose()


def run(backend: str, count: int) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp_name:
        work = Path(tmp_name)
        with _two_databases(backend, work) as (source_url, target_url):
            _fill(source_url, count)
            archive = work / "backup.tar"
            started = time.perf_counter()
            make_backup(Settings(database_url=source_url), archive, settings_file=None)
            backup_s = time.perf_counter() - started
            started = time.perf_counter()
            restore_backup(Settings(database_url=target_url, data_dir=work / "target"), archive)
            restore_s = time.perf_counter() - started
            target = Database(target_url)
            try:
                with target.connection() as conn:
                    restored = conn.execute(sa.select(sa.func.count()).select_from(message)).scalar_one()
            finally:
                target.dispose()
            return {
                "db": backend,
                "messages": count,
                "restored": restored,
                "archive_mb": round(archive.stat().st_size / 1e6, 1),
                "backup_s": round(backup_s, 2),
                "restore_s": round(restore_s, 2),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--count", type=int, default=20_000)
    ns = parser.parse_args()
    figures = run(ns.db, ns.count)
    print(" | ".join(f"{key} {value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
