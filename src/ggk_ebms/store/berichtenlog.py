"""The berichtenlog query: messages sent and received plus submissions refused before sending.

The GGk portal's berichtenlog (GGk handleiding: Ophalen/berichtenlog) shows everything sent and received,
including what was refused, filtered by berichttype and a date range (one week back by default).
Two sources, one list: ``message`` (with its StUF stuurgegevens, the aanlever batch that created
it and its mailbox item) and ``aanlever_file`` rows that were refused and so never became a
message. Each side is ordered and cut to the page before the UNION, so a page over a large log
reads only what it shows (indexes: message.created_at, stuf_message.message_pk and
berichttype/gemeentecode, aanlever_file.created_at; docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import aanlever_file, mailbox_item, message, stuf_message

REFUSED: Final = "Geweigerd"  # the status of a submission refused before sending


@dataclass(frozen=True, kw_only=True)
class LogQuery:
    since: datetime
    until: datetime
    berichttype: str | None = None
    # Only these berichttypes (a console user's products); None: no restriction. A row without a
    # berichttype (a refused file that could not be read) matches no restriction.
    berichttypes: tuple[str, ...] | None = None
    gemeentecode: str | None = None
    gemeentecodes: frozenset[str] | None = None  # the actor's rights; None: every gemeente
    direction: str | None = None  # in | out
    status: str | None = None  # a message status, or "Geweigerd"
    referentienummer: str | None = None
    batch: int | None = None
    kind: str | None = "business"  # None: signals too
    cpa_id: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class LogRow:
    tijdstip: datetime
    message_pk: int | None  # None: refused before sending (see aanlever_file_pk)
    aanlever_file_pk: int | None
    batch_pk: int | None
    direction: str
    kind: str
    status: str
    status_reason: str | None
    error_code: str | None
    # The StUF business layer of the lifecycle (lifecycle.Business); None for signals, non-StUF
    # messages and refused submissions. business_ref_pk: the Fo01, Bv03 or retour that set it.
    business_status: str | None = None
    business_code: str | None = None
    business_ref_pk: int | None = None
    cpa_id: str | None
    message_id: str | None
    berichttype: str | None
    gemeentecode: str | None
    referentienummer: str | None
    zender: str | None
    ontvanger: str | None
    stuf_fout: str | None  # the StUF layer: a Fo01 code and text about this message
    gelezen: datetime | None
    verwijderd: datetime | None
    aanbieder_naam: str | None = None  # from the zorgaanbieder register (services.berichtenlog)


def _messages(q: LogQuery, cut: int) -> sa.Select[Any] | None:
    if q.status == REFUSED:
        return None
    made_by = sa.and_(aanlever_file.c.message_pk == message.c.pk, aanlever_file.c.outcome == "correct")
    query = (
        sa.select(
            message.c.created_at.label("tijdstip"),
            message.c.pk.label("message_pk"),
            sa.cast(sa.null(), sa.BigInteger).label("aanlever_file_pk"),
            aanlever_file.c.batch_pk.label("batch_pk"),
            message.c.direction,
            message.c.kind,
            message.c.status,
            message.c.status_reason,
            message.c.error_code,
            message.c.business_status,
            message.c.business_code,
            message.c.business_ref_pk,
            message.c.cpa_id,
            message.c.message_id,
            stuf_message.c.berichttype,
            stuf_message.c.gemeentecode,
            stuf_message.c.referentienummer,
            stuf_message.c.zender,
            stuf_message.c.ontvanger,
            sa.case(
                (
                    stuf_message.c.fout_code.is_not(None),
                    stuf_message.c.fout_code + " " + sa.func.coalesce(stuf_message.c.fout_omschrijving, ""),
                ),
                else_=sa.null(),
            ).label("stuf_fout"),
            mailbox_item.c.fetched_at.label("gelezen"),
            mailbox_item.c.removed_at.label("verwijderd"),
        )
        .select_from(message)
        .outerjoin(stuf_message, stuf_message.c.message_pk == message.c.pk)
        .outerjoin(aanlever_file, made_by)
        .outerjoin(mailbox_item, mailbox_item.c.message_pk == message.c.pk)
        .where(message.c.created_at >= q.since, message.c.created_at <= q.until)
    )
    if q.kind is not None:
        query = query.where(message.c.kind == q.kind)
    if q.cpa_id is not None:
        query = query.where(message.c.cpa_id == q.cpa_id)
    if q.direction is not None:
        query = query.where(message.c.direction == q.direction)
    if q.status is not None:
        # Either layer: "--status refused" finds our messages a Fo01 refused (docs/rules.md).
        query = query.where(sa.or_(message.c.status == q.status, message.c.business_status == q.status))
    query = _stuf_filters(query, q, stuf_message.c, aanlever_file.c.batch_pk)
    return query.order_by(message.c.created_at.desc(), message.c.pk.desc()).limit(cut)


def _stuf_filters(
    query: sa.Select[Any],
    q: LogQuery,
    columns: sa.ColumnCollection[str, Any],
    batch_pk: sa.ColumnElement[Any],
) -> sa.Select[Any]:
    """The StUF filters of ``q`` on ``columns`` (berichttype, gemeentecode, referentienummer).

    Both sides of the log carry these: a message through its stuf_message row, a refused file
    through its own aanlever_file columns.
    """
    if q.berichttype is not None:
        query = query.where(columns.berichttype == q.berichttype)
    if q.berichttypes is not None:
        query = query.where(columns.berichttype.in_(q.berichttypes))
    if q.gemeentecode is not None:
        query = query.where(columns.gemeentecode == q.gemeentecode)
    if q.gemeentecodes is not None:  # rights per gemeentecode: a row without a gemeente is nobody's
        query = query.where(columns.gemeentecode.in_(sorted(q.gemeentecodes)))
    if q.referentienummer is not None:
        query = query.where(columns.referentienummer == q.referentienummer)
    if q.batch is not None:
        query = query.where(batch_pk == q.batch)
    return query


def _refused(q: LogQuery, cut: int) -> sa.Select[Any] | None:
    if q.direction == "in" or (q.status is not None and q.status != REFUSED):
        return None
    if q.kind not in (None, "business") or q.cpa_id is not None:
        return None
    query = sa.select(
        aanlever_file.c.created_at.label("tijdstip"),
        sa.cast(sa.null(), sa.BigInteger).label("message_pk"),
        aanlever_file.c.pk.label("aanlever_file_pk"),
        aanlever_file.c.batch_pk.label("batch_pk"),
        sa.literal("out").label("direction"),
        sa.literal("business").label("kind"),
        sa.literal(REFUSED).label("status"),
        sa.func.coalesce(aanlever_file.c.foutomschrijving, "").label("status_reason"),
        sa.cast(sa.null(), sa.String).label("error_code"),
        sa.cast(sa.null(), sa.String).label("business_status"),
        sa.cast(sa.null(), sa.String).label("business_code"),
        sa.cast(sa.null(), sa.BigInteger).label("business_ref_pk"),
        sa.cast(sa.null(), sa.String).label("cpa_id"),
        sa.cast(sa.null(), sa.String).label("message_id"),
        aanlever_file.c.berichttype,
        aanlever_file.c.gemeentecode,
        aanlever_file.c.referentienummer,
        sa.cast(sa.null(), sa.String).label("zender"),
        sa.cast(sa.null(), sa.String).label("ontvanger"),
        sa.cast(sa.null(), sa.String).label("stuf_fout"),
        sa.cast(sa.null(), mailbox_item.c.fetched_at.type).label("gelezen"),
        sa.cast(sa.null(), mailbox_item.c.removed_at.type).label("verwijderd"),
    ).where(
        aanlever_file.c.outcome == "incorrect",
        aanlever_file.c.created_at >= q.since,
        aanlever_file.c.created_at <= q.until,
    )
    query = _stuf_filters(query, q, aanlever_file.c, aanlever_file.c.batch_pk)
    return query.order_by(aanlever_file.c.created_at.desc(), aanlever_file.c.pk.desc()).limit(cut)


def query_log(db: Database, q: LogQuery) -> tuple[list[LogRow], bool]:
    """One page of the log, newest first, and whether more rows follow."""
    cut = q.offset + q.limit + 1
    sides = [s for s in (_messages(q, cut), _refused(q, cut)) if s is not None]
    if not sides:
        return [], False
    parts = [side.subquery() for side in sides]
    selects = [sa.select(*part.c) for part in parts]
    union = selects[0] if len(selects) == 1 else sa.union_all(*selects)
    combined = union.subquery("log")
    page = (
        sa.select(*combined.c)
        .order_by(
            combined.c.tijdstip.desc(),
            combined.c.message_pk.desc().nulls_last(),
            combined.c.aanlever_file_pk.desc(),
        )
        .offset(q.offset)
        .limit(q.limit + 1)
    )
    with db.session() as session:
        rows = session.execute(page).all()
    result = [_row(row) for row in rows[: q.limit]]
    return result, len(rows) > q.limit


def _row(row: sa.Row[Any]) -> LogRow:
    values = dict(row._mapping)
    for name in ("tijdstip", "gelezen", "verwijderd"):
        values[name] = _aware(values[name])
    return LogRow(**values)


def _aware(value: Any) -> datetime | None:
    # Through a UNION the UtcDateTime type decorator may not apply (SQLite hands back text).
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise TypeError(f"unexpected time value {value!r}")
