"""The audit trail: every operator action with who, when and what (docs/operations.md).

Subjects are identifiers (batch numbers, CPAIds, route names, mailbox item numbers, file names),
never payload content or personal data.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import NAME_MAX, audit_event

DETAIL_MAX: Final = 4000


@dataclass(frozen=True)
class AuditEvent:
    pk: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str | None


def insert_event(
    session: Session, *, at: datetime, actor: str, action: str, subject: str, detail: str | None
) -> int:
    """Record one event inside the caller's transaction, so the action and its record go together."""
    pk: int = session.execute(
        sa.insert(audit_event)
        .values(
            at=at,
            actor=actor[:NAME_MAX] or "onbekend",
            action=action[:64],
            subject=subject[:NAME_MAX],
            detail=None if detail is None else detail[:DETAIL_MAX],
        )
        .returning(audit_event.c.pk)
    ).scalar_one()
    return pk


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, *, at: datetime, actor: str, action: str, subject: str, detail: str | None = None
    ) -> int:
        with self.db.session() as session:
            return insert_event(session, at=at, actor=actor, action=action, subject=subject, detail=detail)

    def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[AuditEvent]:
        query = sa.select(audit_event)
        if since is not None:
            query = query.where(audit_event.c.at >= since)
        if until is not None:
            query = query.where(audit_event.c.at < until)
        if actor is not None:
            query = query.where(audit_event.c.actor == actor)
        if action is not None:
            query = query.where(audit_event.c.action == action)
        query = query.order_by(audit_event.c.at.desc(), audit_event.c.pk.desc()).limit(limit).offset(offset)
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [_event(row) for row in rows]


def _event(row: sa.Row[Any]) -> AuditEvent:
    return AuditEvent(**dict(row._mapping))
