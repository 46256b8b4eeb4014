"""Berichtenlog: messages sent and received, regular and refused, with the portal's filters.

The GGk portal filters its berichtenlog by berichttype and a start/end date and looks one week
back by default (GGk handleiding: Ophalen/berichtenlog); we add gemeentecode, direction, status,
referentienummer and aanlever batch. Both layers are shown: the ebMS status of the message and
the StUF layer (a Fo01 about it), plus whether it was collected from or removed from Ophalen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ggk_ebms.services import koppeltabel
from ggk_ebms.services.context import ServiceContext, ServiceError
from ggk_ebms.store.berichtenlog import REFUSED, LogQuery, LogRow, query_log
from ggk_ebms.store.koppeltabel import KoppelStore
from ggk_ebms.store.zorgaanbieders import ZorgaanbiederStore

DEFAULT_LOOK_BACK: Final = timedelta(days=7)
MAX_PAGE: Final = 10_000
CATCH_UP_LIMIT: Final = 500

__all__ = ["REFUSED", "LogFilter", "LogPage", "LogRow", "berichtenlog"]


@dataclass(frozen=True)
class LogFilter:
    since: datetime | None = None  # default: until - 7 days
    until: datetime | None = None  # default: now; inclusive
    berichttype: str | None = None
    berichttypes: tuple[str, ...] | None = None  # only these (the products a user may see)
    gemeentecode: str | None = None
    direction: str | None = None  # in | out
    status: str | None = None  # a message status, or "Geweigerd"
    referentienummer: str | None = None
    batch: int | None = None
    include_signals: bool = False
    kind: str | None = None  # one kind only (business, Ping, Acknowledgment, ...)
    cpa_id: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class LogPage:
    since: datetime
    until: datetime
    rows: tuple[LogRow, ...]
    offset: int
    more: bool  # another page follows


def berichtenlog(ctx: ServiceContext, query: LogFilter) -> LogPage:
    """One page of the log, newest first."""
    until = query.until or ctx.clock.now()
    since = query.since or until - DEFAULT_LOOK_BACK
    if since >= until:
        raise ServiceError("de begindatum moet voor de einddatum liggen")
    if not 1 <= query.limit <= MAX_PAGE or query.offset < 0:
        raise ServiceError(f"paginagrootte 1 tot {MAX_PAGE}, offset 0 of meer")
    if query.direction not in (None, "in", "out"):
        raise ServiceError("richting is 'in' of 'out'")
    rows, more = query_log(
        ctx.database,
        LogQuery(
            since=since,
            until=until,
            berichttype=query.berichttype,
            berichttypes=query.berichttypes,
            gemeentecode=query.gemeentecode,
            gemeentecodes=ctx.gemeentecodes,
            direction=query.direction,
            status=query.status,
            referentienummer=query.referentienummer,
            batch=query.batch,
            kind=query.kind or (None if query.include_signals else "business"),
            cpa_id=query.cpa_id,
            limit=query.limit,
            offset=query.offset,
        ),
    )
    # The aanbieder's name from the register (docs/zorgaanbieders.md): the payload header's AGB
    # code as the koppeltabel read it, else the zender or ontvanger that is an AGB code. A bounded
    # catch-up: a page must not wait for the whole backlog after an upgrade (serve reads that).
    koppeltabel.catch_up(ctx.database, ctx.clock, limit=CATCH_UP_LIMIT)
    agb = KoppelStore(ctx.database).aanbieders([r.message_pk for r in rows if r.message_pk is not None])

    def candidates(r: LogRow) -> tuple[str, ...]:
        first = agb.get(r.message_pk) if r.message_pk is not None else None
        return tuple(p for p in (first, r.zender, r.ontvanger) if p)

    names = ZorgaanbiederStore(ctx.database).names({p for r in rows for p in candidates(r)})
    named = [
        dataclasses.replace(r, aanbieder_naam=next((names[p] for p in candidates(r) if p in names), None))
        for r in rows
    ]
    return LogPage(since, until, tuple(named), query.offset, more)
