"""Aanlever batches and their files: the verwerkingsverslag, kept forever (docs/operations.md).

Batch statuses are the GGk portal's (Ontvangen, Bezig, Afgeleverd, Afgekeurd); this store writes
them, never a message's status (messages go through the outbound path as any submission).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import aanlever_batch, aanlever_file, stuf_message
from ggk_ebms.store.tables import message as message_table

UNFINISHED: Final = ("Ontvangen", "Bezig")
# Not a portal status: the batch stopped part-way (docs/operations.md "Aanleveren", Onderbroken).
INTERRUPTED: Final = "Onderbroken"


@dataclass(frozen=True)
class StoredBatch:
    pk: int
    bestandsnaam: str
    verzender: str
    status: str
    size: int
    sha256: str
    aangeleverd: int
    correct: int
    incorrect: int
    ingeleverd_op: datetime
    begin_verwerking: datetime | None
    verwacht_einde: datetime | None
    einde_verwerking: datetime | None


@dataclass(frozen=True, kw_only=True)
class NewFile:
    seq: int
    bestand: str
    size: int
    outcome: str
    foutomschrijving: str | None = None
    fout_detail: str | None = None
    berichttype: str | None = None
    gemeentecode: str | None = None
    referentienummer: str | None = None
    payload_sha256: str | None = None
    message_pk: int | None = None


@dataclass(frozen=True, kw_only=True)
class StoredFile(NewFile):
    pk: int
    batch_pk: int
    created_at: datetime


def _batch(row: sa.Row[Any]) -> StoredBatch:
    return StoredBatch(**dict(row._mapping))


def _file(row: sa.Row[Any]) -> StoredFile:
    return StoredFile(**dict(row._mapping))


class BatchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, *, bestandsnaam: str, verzender: str, size: int, sha256: str, at: datetime
    ) -> StoredBatch:
        with self.db.session() as session:
            row = session.execute(
                sa.insert(aanlever_batch)
                .values(
                    bestandsnaam=bestandsnaam,
                    verzender=verzender,
                    status="Ontvangen",
                    size=size,
                    sha256=sha256,
                    aangeleverd=0,
                    correct=0,
                    incorrect=0,
                    ingeleverd_op=at,
                )
                .returning(*aanlever_batch.c)
            ).one()
        return _batch(row)

    def start(self, pk: int, *, at: datetime, expected_end: datetime, files: int) -> None:
        with self.db.session() as session:
            session.execute(
                sa.update(aanlever_batch)
                .where(aanlever_batch.c.pk == pk)
                .values(status="Bezig", begin_verwerking=at, verwacht_einde=expected_end, aangeleverd=files)
            )

    def add_file(self, batch_pk: int, new: NewFile, *, at: datetime) -> None:
        values = {name: getattr(new, name) for name in NewFile.__dataclass_fields__}
        with self.db.session() as session:
            session.execute(sa.insert(aanlever_file).values(**values, batch_pk=batch_pk, created_at=at))

    def finish(self, pk: int, *, at: datetime) -> StoredBatch:
        """Count the files and set the final status: Afgekeurd when any file is incorrect."""
        with self.db.session() as session:
            counts: dict[str, int] = dict(
                session.execute(
                    sa.select(aanlever_file.c.outcome, sa.func.count())
                    .where(aanlever_file.c.batch_pk == pk)
                    .group_by(aanlever_file.c.outcome)
                ).all()
            )
            incorrect = int(counts.get("incorrect", 0))
            correct = int(counts.get("correct", 0)) + int(counts.get("al verzonden", 0))
            row = session.execute(
                sa.update(aanlever_batch)
                .where(aanlever_batch.c.pk == pk)
                .values(
                    status="Afgekeurd" if incorrect else "Afgeleverd",
                    aangeleverd=correct + incorrect,
                    correct=correct,
                    incorrect=incorrect,
                    einde_verwerking=at,
                )
                .returning(*aanlever_batch.c)
            ).one()
        return _batch(row)

    def idle_unfinished(self, *, idle_before: datetime) -> builtins.list[int]:
        """Batches still Ontvangen or Bezig whose last sign of work (the newest file, else the start
        of processing, else the upload) is older than ``idle_before``: left by a crash or stop."""
        last_file = (
            sa.select(sa.func.max(aanlever_file.c.created_at))
            .where(aanlever_file.c.batch_pk == aanlever_batch.c.pk)
            .scalar_subquery()
        )
        activity = sa.func.coalesce(
            last_file, aanlever_batch.c.begin_verwerking, aanlever_batch.c.ingeleverd_op
        )
        query = (
            sa.select(aanlever_batch.c.pk)
            .where(aanlever_batch.c.status.in_(UNFINISHED), activity < idle_before)
            .order_by(aanlever_batch.c.pk)
        )
        with self.db.session() as session:
            return [int(pk) for pk in session.execute(query).scalars()]

    def interrupt(self, pk: int, *, at: datetime) -> StoredBatch | None:
        """Mark an unfinished batch Onderbroken with the counts of the files it got to; None when
        it finished meanwhile (another process completed it)."""
        with self.db.session() as session:
            counts: dict[str, int] = dict(
                session.execute(
                    sa.select(aanlever_file.c.outcome, sa.func.count())
                    .where(aanlever_file.c.batch_pk == pk)
                    .group_by(aanlever_file.c.outcome)
                ).all()
            )
            incorrect = int(counts.get("incorrect", 0))
            correct = int(counts.get("correct", 0)) + int(counts.get("al verzonden", 0))
            row = session.execute(
                sa.update(aanlever_batch)
                .where(aanlever_batch.c.pk == pk, aanlever_batch.c.status.in_(UNFINISHED))
                .values(
                    status=INTERRUPTED,
                    correct=correct,
                    incorrect=incorrect,
                    einde_verwerking=at,
                )
                .returning(*aanlever_batch.c)
            ).first()
        return None if row is None else _batch(row)

    def get(self, pk: int) -> StoredBatch:
        with self.db.session() as session:
            row = session.execute(sa.select(aanlever_batch).where(aanlever_batch.c.pk == pk)).first()
        if row is None:
            raise StoreError(f"geen aanlevering {pk}")
        return _batch(row)

    def files(self, batch_pk: int) -> builtins.list[StoredFile]:
        with self.db.session() as session:
            rows = session.execute(
                sa.select(aanlever_file)
                .where(aanlever_file.c.batch_pk == batch_pk)
                .order_by(aanlever_file.c.seq)
            ).all()
        return [_file(row) for row in rows]

    def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[StoredBatch]:
        query = sa.select(aanlever_batch)
        if since is not None:
            query = query.where(aanlever_batch.c.ingeleverd_op >= since)
        if until is not None:
            query = query.where(aanlever_batch.c.ingeleverd_op < until)
        if status is not None:
            query = query.where(aanlever_batch.c.status == status)
        query = query.order_by(aanlever_batch.c.pk.desc()).limit(limit).offset(offset)
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [_batch(row) for row in rows]

    def throughput(self, limit: int = 50) -> builtins.list[tuple[int, float]]:
        """(files, seconds) of the newest finished batches, for the expected end of the next one."""
        query = (
            sa.select(
                aanlever_batch.c.aangeleverd,
                aanlever_batch.c.begin_verwerking,
                aanlever_batch.c.einde_verwerking,
            )
            .where(
                aanlever_batch.c.einde_verwerking.is_not(None), aanlever_batch.c.begin_verwerking.is_not(None)
            )
            .order_by(aanlever_batch.c.pk.desc())
            .limit(limit)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [(int(n), (end - begin).total_seconds()) for n, begin, end in rows]

    def sent_before(
        self, *, referentienummer: str | None, payload_sha256: str, berichttype: str | None
    ) -> int | None:
        """The message we already sent with this content (and referentienummer when the file is a
        ready envelope): re-sending a ZIP is harmless, as the portal promises (IB handleiding
        berichtuitwisseling)."""
        query = (
            sa.select(stuf_message.c.message_pk)
            .join(message_table, message_table.c.pk == stuf_message.c.message_pk)
            .where(
                stuf_message.c.direction == "out",
                stuf_message.c.payload_sha256 == payload_sha256,
                message_table.c.status.not_in(("DeliveryFailed", "Expired")),
            )
            .order_by(stuf_message.c.pk)
            .limit(1)
        )
        if referentienummer is not None:
            query = query.where(stuf_message.c.referentienummer == referentienummer)
        if berichttype is not None:
            query = query.where(stuf_message.c.berichttype == berichttype)
        with self.db.session() as session:
            pk = session.execute(query).scalar_one_or_none()
        return None if pk is None else int(pk)
