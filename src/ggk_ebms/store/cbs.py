"""CBS deliveries (one row per CSV sent), reports received and reminders sent."""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import cbs_delivery, cbs_notification, cbs_report, mailbox_item, message


@dataclass(frozen=True)
class StoredDelivery:
    pk: int
    kind: str
    referentienummer: str
    filename: str
    cbs_set: str | None
    gemeentecode: str
    verslagperiode: str | None
    stuf_referentienummer: str
    message_pk: int | None
    sha256: str
    size: int
    created_at: datetime
    message_status: str | None = None  # the ebMS message's status: the file's status
    reports: int = 0


@dataclass(frozen=True)
class StoredReport:
    pk: int
    mailbox_item_pk: int
    delivery_pk: int | None
    filename: str
    created_at: datetime
    fetched_at: datetime | None


class CbsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def referentienummer_taken(self, referentienummer: str) -> bool:
        with self.db.session() as session:
            return (
                session.execute(
                    sa.select(cbs_delivery.c.pk).where(cbs_delivery.c.referentienummer == referentienummer)
                ).first()
                is not None
            )

    def add_delivery(
        self,
        *,
        kind: str,
        referentienummer: str,
        filename: str,
        cbs_set: str | None,
        gemeentecode: str,
        verslagperiode: str | None,
        stuf_referentienummer: str,
        message_pk: int,
        data: bytes,
        now: datetime,
    ) -> int:
        with self.db.session() as session:
            pk: int = session.execute(
                sa.insert(cbs_delivery)
                .values(
                    kind=kind,
                    referentienummer=referentienummer,
                    filename=filename,
                    cbs_set=cbs_set,
                    gemeentecode=gemeentecode,
                    verslagperiode=verslagperiode,
                    stuf_referentienummer=stuf_referentienummer,
                    message_pk=message_pk,
                    sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                    created_at=now,
                )
                .returning(cbs_delivery.c.pk)
            ).scalar_one()
        return pk

    def deliveries(self, *, limit: int = 200) -> builtins.list[StoredDelivery]:
        reports = (
            sa.select(sa.func.count())
            .select_from(cbs_report)
            .where(cbs_report.c.delivery_pk == cbs_delivery.c.pk)
            .scalar_subquery()
        )
        query = (
            sa.select(*cbs_delivery.c, message.c.status.label("message_status"), reports.label("reports"))
            .outerjoin(message, message.c.pk == cbs_delivery.c.message_pk)
            .order_by(cbs_delivery.c.pk.desc())
            .limit(limit)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [StoredDelivery(**dict(r._mapping)) for r in rows]

    def find_delivery(self, *, stuf_referentienummer: str | None, referentienummer: str | None) -> int | None:
        """The delivery a report answers: by the StUF crossRefnummer, else the CBS referentienummer."""
        with self.db.session() as session:
            for column, value in (
                (cbs_delivery.c.stuf_referentienummer, stuf_referentienummer),
                (cbs_delivery.c.referentienummer, referentienummer),
            ):
                if value:
                    pk = session.execute(sa.select(cbs_delivery.c.pk).where(column == value)).scalar()
                    if pk is not None:
                        return int(pk)
        return None

    def add_report(
        self, *, mailbox_item_pk: int, delivery_pk: int | None, filename: str, now: datetime
    ) -> int:
        with self.db.session() as session:
            existing = session.execute(
                sa.select(cbs_report.c.pk).where(cbs_report.c.mailbox_item_pk == mailbox_item_pk)
            ).scalar()
            if existing is not None:
                return int(existing)
            pk: int = session.execute(
                sa.insert(cbs_report)
                .values(
                    mailbox_item_pk=mailbox_item_pk,
                    delivery_pk=delivery_pk,
                    filename=filename,
                    created_at=now,
                )
                .returning(cbs_report.c.pk)
            ).scalar_one()
        return pk

    def reports(self) -> builtins.list[StoredReport]:
        query = (
            sa.select(*cbs_report.c, mailbox_item.c.fetched_at)
            .join(mailbox_item, mailbox_item.c.pk == cbs_report.c.mailbox_item_pk)
            .order_by(cbs_report.c.pk)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [StoredReport(**dict(r._mapping)) for r in rows]

    def periods(self, kind: str) -> frozenset[str]:
        with self.db.session() as session:
            values = session.execute(
                sa.select(cbs_delivery.c.verslagperiode).where(cbs_delivery.c.kind == kind).distinct()
            ).scalars()
            return frozenset(v for v in values if v)

    def last_notified(self, kind: str, verslagperiode: str) -> datetime | None:
        with self.db.session() as session:
            value: datetime | None = session.execute(
                sa.select(cbs_notification.c.sent_at).where(
                    cbs_notification.c.kind == kind, cbs_notification.c.verslagperiode == verslagperiode
                )
            ).scalar()
        return value

    def notified(self, kind: str, verslagperiode: str, now: datetime) -> None:
        with self.db.session() as session:
            updated = session.execute(
                sa.update(cbs_notification)
                .where(cbs_notification.c.kind == kind, cbs_notification.c.verslagperiode == verslagperiode)
                .values(sent_at=now)
                .returning(cbs_notification.c.pk)
            ).first()
            if updated is None:
                session.execute(
                    sa.insert(cbs_notification).values(kind=kind, verslagperiode=verslagperiode, sent_at=now)
                )
