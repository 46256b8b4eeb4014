"""Audit trail: record an operator action, list the record (docs/operations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.audit import AuditEvent, AuditLog

# The actions recorded, one word each (the ``action`` column).
ACTIONS: Final = (
    "cpa-import",
    "cpa-delete",
    "cpa-portal",
    "cpa-activate",
    "routes-import",
    "route-set",
    "route-disable",
    "route-enable",
    "message-retry",
    "aanlevering",
    "aanlevering-geweigerd",
    "aanlevering-onderbroken",
    "mailbox-download",
    "mailbox-unmark",
    "mailbox-delete",
    "console-login",
    "console-login-refused",
    "console-logout",
    "user-create",
    "user-change",
    "cpa-ping",
    "exchange-set",
    "exchange-reset",
)


@dataclass(frozen=True)
class AuditQuery:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class AuditPage:
    events: tuple[AuditEvent, ...]
    more: bool


def record(ctx: ServiceContext, action: str, subject: str, detail: str | None = None) -> int:
    """Record one action by ``ctx.actor`` now. ``subject``/``detail``: ids and codes, no personal data."""
    return AuditLog(ctx.database).record(
        at=ctx.clock.now(), actor=ctx.actor, action=action, subject=subject, detail=detail
    )


def list_audit(ctx: ServiceContext, query: AuditQuery) -> AuditPage:
    """Newest first; ``more`` tells whether another page follows."""
    events = AuditLog(ctx.database).list(
        since=query.since,
        until=query.until,
        actor=query.actor,
        action=query.action,
        limit=query.limit + 1,
        offset=query.offset,
    )
    return AuditPage(tuple(events[: query.limit]), len(events) > query.limit)
