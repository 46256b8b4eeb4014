"""The mailbox: delivered payloads kept for pick-up (the GGk
portal's *Ophalen*, GGk handleiding: Ophalen/berichtenlog).

Fetching sets the "gelezen" mark (``fetched_at``) and moves the message from Processed to
Forwarded in the same transaction: until a domain application has taken it, the message is not
delivered. An item is keyed on its message, so a retried delivery never stores it twice.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import mailbox_item, message


@dataclass(frozen=True)
class MailboxItem:
    pk: int
    message_pk: int
    route_name: str
    gemeentecode: str
    berichttype: str
    referentienummer: str
    zender: str
    filename: str
    sha256: str
    size: int
    created_at: datetime
    fetched_at: datetime | None
    removed_at: datetime | None = None  # removed from Ophalen (retention or by hand)
    removed_reason: str | None = None
    payload: bytes | None = None  # personal data: only loaded by ``fetch``
    envelope: bytes | None = None

    @property
    def gelezen(self) -> bool:
        return self.fetched_at is not None

    def __repr__(self) -> str:  # never show payload bytes (iStandaarden privacy elements, docs/rules.md)
        where = f"{self.gemeentecode}/{self.berichttype}"
        return f"MailboxItem(pk={self.pk}, {where}, {self.filename}, {self.size} bytes)"


_LISTED = tuple(c for c in mailbox_item.c if c.name not in ("payload", "envelope"))


def _row(row: sa.Row[Any]) -> MailboxItem:
    values = dict(row._mapping)
    for name in ("payload", "envelope"):
        if values.get(name) is not None:
            values[name] = bytes(values[name])
    return MailboxItem(**values)


class Mailbox:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def put(
        self,
        *,
        message_pk: int,
        route_name: str,
        gemeentecode: str,
        berichttype: str,
        referentienummer: str,
        zender: str,
        filename: str,
        payload: bytes,
        envelope: bytes | None,
    ) -> int:
        """Keep a payload for pick-up; the existing item when this message was put already."""
        with self.db.session() as session:
            existing = session.execute(
                sa.select(mailbox_item.c.pk).where(mailbox_item.c.message_pk == message_pk)
            ).scalar_one_or_none()
            if existing is not None:
                return int(existing)
            pk: int = session.execute(
                sa.insert(mailbox_item)
                .values(
                    message_pk=message_pk,
                    route_name=route_name,
                    gemeentecode=gemeentecode,
                    berichttype=berichttype,
                    referentienummer=referentienummer,
                    zender=zender,
                    filename=filename,
                    payload=payload,
                    envelope=envelope,
                    sha256=hashlib.sha256(payload).hexdigest(),
                    size=len(payload),
                    created_at=self.clock.now(),
                )
                .returning(mailbox_item.c.pk)
            ).scalar_one()
        return pk

    def list(
        self,
        *,
        gemeentecode: str | None = None,
        berichttype: str | None = None,
        include_fetched: bool = True,
        limit: int = 100,
    ) -> builtins.list[MailboxItem]:
        query = sa.select(*_LISTED).where(mailbox_item.c.removed_at.is_(None))
        if gemeentecode is not None:
            query = query.where(mailbox_item.c.gemeentecode == gemeentecode)
        if berichttype is not None:
            query = query.where(mailbox_item.c.berichttype == berichttype)
        if not include_fetched:
            query = query.where(mailbox_item.c.fetched_at.is_(None))
        with self.db.session() as session:
            rows = session.execute(query.order_by(mailbox_item.c.pk.desc()).limit(limit)).all()
        return [_row(row) for row in rows]

    def fetch(self, pk: int) -> MailboxItem:
        """The item with its payload; marks it gelezen and its message Forwarded (delivered)."""
        now = self.clock.now()
        with self.db.session() as session:
            row = session.execute(
                sa.select(mailbox_item).where(mailbox_item.c.pk == pk, mailbox_item.c.removed_at.is_(None))
            ).first()
            if row is None:
                raise StoreError(f"no mailbox item {pk}")
            item = _row(row)
            if item.fetched_at is None:
                session.execute(sa.update(mailbox_item).where(mailbox_item.c.pk == pk).values(fetched_at=now))
                current = session.execute(
                    sa.select(message.c.status).where(message.c.pk == item.message_pk)
                ).scalar_one_or_none()
                if current == Status.PROCESSED:
                    steps.transition(
                        session,
                        item.message_pk,
                        Event.PICKED_UP,
                        now=now,
                        reason=f"fetched from the mailbox (item {pk})",
                    )
        return item
