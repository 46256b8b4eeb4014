"""Ketendata exports and their files, the keys used, and the duplicate keys already delivered.

Also the one read of the traffic an export is built from: business messages that passed the
GGk in a period, with their StUF envelope (the first part). Received messages count once stored
and not refused (Received, Processed, Forwarded); sent messages once Delivered.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import (
    ketendata_export,
    ketendata_file,
    ketendata_key,
    ketendata_seen,
    message,
    message_part,
)

PASSED_IN: Final = ("Received", "Processed", "Forwarded")
PASSED_OUT: Final = ("Delivered",)
BATCH: Final = 500


@dataclass(frozen=True)
class SourceMessage:
    pk: int
    direction: str
    message_id: str
    conversation_id: str
    passed_at: datetime
    envelope: bytes  # personal data: never log

    def __repr__(self) -> str:
        return f"SourceMessage(pk={self.pk}, {self.direction}, {self.message_id!r})"


@dataclass(frozen=True)
class ExportInfo:
    pk: int
    kind: str
    period_since: datetime | None
    period_until: datetime
    key_id: str
    messages: int
    duplicates: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class FileInfo:
    pk: int
    export_pk: int
    filename: str
    sha256: str
    size: int
    rows: int
    created_at: datetime
    fetched_at: datetime | None
    data: bytes | None = None

    @property
    def gelezen(self) -> bool:
        return self.fetched_at is not None

    def __repr__(self) -> str:
        return f"FileInfo(pk={self.pk}, export={self.export_pk}, {self.filename}, rows={self.rows})"


@dataclass(frozen=True)
class NewFile:
    filename: str
    data: bytes
    rows: int


_FILE_LISTED = tuple(c for c in ketendata_file.c if c.name != "data")


def _file(row: sa.Row[Any]) -> FileInfo:
    values = dict(row._mapping)
    if values.get("data") is not None:
        values["data"] = bytes(values["data"])
    return FileInfo(**values)


class KetendataStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- the traffic ------------------------------------------------------------------------------
    def passed(self, since: datetime | None, until: datetime) -> Iterator[SourceMessage]:
        """Business messages that passed in [since, until), oldest first, read in batches."""
        where = self._passed_where(since, until)
        last: tuple[datetime, int] | None = None
        while True:
            query = (
                sa.select(
                    message.c.pk,
                    message.c.direction,
                    message.c.message_id,
                    message.c.conversation_id,
                    message.c.created_at,
                    message_part.c.data,
                )
                .join(
                    message_part, sa.and_(message_part.c.message_pk == message.c.pk, message_part.c.seq == 0)
                )
                .where(*where)
                .order_by(message.c.created_at, message.c.pk)
                .limit(BATCH)
            )
            if last is not None:
                query = query.where(
                    sa.or_(
                        message.c.created_at > last[0],
                        sa.and_(message.c.created_at == last[0], message.c.pk > last[1]),
                    )
                )
            with self.db.session() as session:
                rows = session.execute(query).all()
            for row in rows:
                yield SourceMessage(
                    pk=row.pk,
                    direction=row.direction,
                    message_id=row.message_id,
                    conversation_id=row.conversation_id,
                    passed_at=row.created_at,
                    envelope=bytes(row.data),
                )
            if len(rows) < BATCH:
                return
            last = (rows[-1].created_at, rows[-1].pk)

    def any_passed(self, until: datetime) -> bool:
        """Whether any business message passed before ``until``."""
        with self.db.session() as session:
            found = session.execute(
                sa.select(message.c.pk).where(*self._passed_where(None, until)).limit(1)
            ).first()
        return found is not None

    @staticmethod
    def _passed_where(since: datetime | None, until: datetime) -> list[sa.ColumnElement[bool]]:
        passed = sa.or_(
            sa.and_(message.c.direction == "in", message.c.status.in_(PASSED_IN)),
            sa.and_(message.c.direction == "out", message.c.status.in_(PASSED_OUT)),
        )
        where = [message.c.kind == "business", passed, message.c.created_at < until]
        if since is not None:
            where.append(message.c.created_at >= since)
        return where

    # --- keys -------------------------------------------------------------------------------------
    def record_key(self, key_id: str, now: datetime) -> None:
        with self.db.session() as session:
            exists = session.execute(
                sa.select(ketendata_key.c.pk).where(ketendata_key.c.key_id == key_id)
            ).first()
            if exists is None:
                session.execute(sa.insert(ketendata_key).values(key_id=key_id, activated_at=now))

    def keys(self) -> builtins.list[tuple[str, datetime]]:
        with self.db.session() as session:
            rows = session.execute(
                sa.select(ketendata_key.c.key_id, ketendata_key.c.activated_at).order_by(ketendata_key.c.pk)
            ).all()
        return [(r.key_id, r.activated_at) for r in rows]

    # --- duplicates -------------------------------------------------------------------------------
    def seen(self, keys: Collection[str]) -> frozenset[str]:
        found: set[str] = set()
        chunk = list(keys)
        with self.db.session() as session:
            for start in range(0, len(chunk), BATCH):
                part = chunk[start : start + BATCH]
                found.update(
                    session.execute(
                        sa.select(ketendata_seen.c.dedupe_key).where(ketendata_seen.c.dedupe_key.in_(part))
                    ).scalars()
                )
        return frozenset(found)

    # --- exports ----------------------------------------------------------------------------------
    def save_export(
        self,
        *,
        kind: str,
        since: datetime | None,
        until: datetime,
        key_id: str,
        messages: int,
        duplicates: int,
        now: datetime,
        expires_at: datetime,
        files: Collection[NewFile],
        delivered_keys: Collection[str],
    ) -> int:
        """Store an export with its files, and (weekly) the keys it delivered, in one transaction."""
        with self.db.session() as session:
            export_pk: int = session.execute(
                sa.insert(ketendata_export)
                .values(
                    kind=kind,
                    period_since=since,
                    period_until=until,
                    key_id=key_id,
                    messages=messages,
                    duplicates=duplicates,
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(ketendata_export.c.pk)
            ).scalar_one()
            if files:
                session.execute(
                    sa.insert(ketendata_file),
                    [
                        {
                            "export_pk": export_pk,
                            "filename": f.filename,
                            "data": f.data,
                            "sha256": hashlib.sha256(f.data).hexdigest(),
                            "size": len(f.data),
                            "rows": f.rows,
                            "created_at": now,
                        }
                        for f in files
                    ],
                )
            if delivered_keys:
                session.execute(
                    sa.insert(ketendata_seen),
                    [{"dedupe_key": k, "export_pk": export_pk, "seen_at": now} for k in delivered_keys],
                )
        return export_pk

    def last_until(self, kind: str) -> datetime | None:
        with self.db.session() as session:
            value: datetime | None = session.execute(
                sa.select(sa.func.max(ketendata_export.c.period_until)).where(ketendata_export.c.kind == kind)
            ).scalar_one_or_none()
        if value is not None and value.tzinfo is None:  # max() bypasses the column type on SQLite
            from datetime import UTC

            value = datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
        return value

    def exports(self) -> builtins.list[ExportInfo]:
        with self.db.session() as session:
            rows = session.execute(sa.select(ketendata_export).order_by(ketendata_export.c.pk)).all()
        return [ExportInfo(**dict(r._mapping)) for r in rows]

    def delete_export(self, pk: int) -> int:
        """Delete an export and its files (earlier than retention); the number of files removed."""
        with self.db.session() as session:
            found = session.execute(
                sa.select(ketendata_export.c.pk).where(ketendata_export.c.pk == pk)
            ).first()
            if found is None:
                raise StoreError(f"no Ketendata export {pk}")
            files = session.execute(
                sa.select(sa.func.count()).select_from(ketendata_file).where(ketendata_file.c.export_pk == pk)
            ).scalar_one()
            # Explicit, not only ON DELETE CASCADE: SQLite enforces foreign keys only when asked.
            session.execute(sa.delete(ketendata_file).where(ketendata_file.c.export_pk == pk))
            session.execute(sa.delete(ketendata_export).where(ketendata_export.c.pk == pk))
        return int(files)

    def expired(self, now: datetime) -> builtins.list[int]:
        with self.db.session() as session:
            return list(
                session.execute(
                    sa.select(ketendata_export.c.pk).where(ketendata_export.c.expires_at <= now)
                ).scalars()
            )

    # --- files (Ophalen) --------------------------------------------------------------------------
    def files(self, *, include_fetched: bool = True, export_pk: int | None = None) -> builtins.list[FileInfo]:
        query = sa.select(*_FILE_LISTED)
        if not include_fetched:
            query = query.where(ketendata_file.c.fetched_at.is_(None))
        if export_pk is not None:
            query = query.where(ketendata_file.c.export_pk == export_pk)
        with self.db.session() as session:
            rows = session.execute(
                query.order_by(ketendata_file.c.export_pk, ketendata_file.c.filename)
            ).all()
        return [_file(r) for r in rows]

    def fetch(self, pks: Collection[int], now: datetime) -> builtins.list[FileInfo]:
        """The files with their data; sets the gelezen mark of those not fetched before."""
        with self.db.session() as session:
            rows = session.execute(
                sa.select(ketendata_file)
                .where(ketendata_file.c.pk.in_(list(pks)))
                .order_by(ketendata_file.c.pk)
            ).all()
            missing = set(pks) - {r.pk for r in rows}
            if missing:
                raise StoreError(f"no Ketendata file {', '.join(str(p) for p in sorted(missing))}")
            session.execute(
                sa.update(ketendata_file)
                .where(ketendata_file.c.pk.in_(list(pks)), ketendata_file.c.fetched_at.is_(None))
                .values(fetched_at=now)
            )
        return [_file(r) for r in rows]
