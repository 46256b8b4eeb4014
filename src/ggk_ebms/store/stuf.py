"""StUF stuurgegevens per stored message: duplicates, crossRefnummer correlation, retour pairing.

Only routing data lives here (iStandaarden privacy elements, docs/rules.md names stuurgegevens, BerichtCode
and BerichtIdentificatie safe); the payload stays in ``message_part``. The rows answer three
questions the delivery worker and ``submit`` ask:

- docs/stuf-routing.md inbound check 8: has this (zender,
referentienummer) been received before, and with which payload?
- docs/stuf-routing.md inbound checks 9 and 11: is a crossRefnummer the referentienummer of a message we sent?
- iStandaarden header and retour: which received heen message
does a retour answer (BerichtIdentificatie, copied header)?
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.lifecycle import Event
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.among import is_postgresql
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import message, stuf_message


@dataclass(frozen=True, kw_only=True)
class StufRecord:
    """The stuurgegevens of one stored message, as written by ``StufStore.record``."""

    message_pk: int
    direction: str
    berichtcode: str
    referentienummer: str
    zender: str
    ontvanger: str
    gemeentecode: str | None = None
    berichttype: str | None = None
    cross_refnummer: str | None = None
    tijdstip_bericht: str | None = None
    bericht_identificatie: str | None = None
    payload_sha256: str | None = None
    cross_ref_unknown: bool = False


@dataclass(frozen=True, kw_only=True)
class StoredStuf(StufRecord):
    pk: int
    fout_code: str | None
    fout_omschrijving: str | None
    created_at: datetime
    updated_at: datetime
    message_status: str | None = None  # the ebMS message's status, for listings


def _row(row: sa.Row[Any]) -> StoredStuf:
    values = dict(row._mapping)
    values["cross_ref_unknown"] = bool(values["cross_ref_unknown"])
    return StoredStuf(**values)


_COLUMNS = (*stuf_message.c, message.c.status.label("message_status"))


def upsert_record(session: Session, record: StufRecord, *, now: datetime) -> int:
    """Store (or replace) the stuurgegevens of one message inside the caller's transaction."""
    values = {name: getattr(record, name) for name in StufRecord.__dataclass_fields__}
    existing = session.execute(
        sa.select(stuf_message.c.pk).where(stuf_message.c.message_pk == record.message_pk)
    ).scalar_one_or_none()
    if existing is not None:
        session.execute(
            sa.update(stuf_message).where(stuf_message.c.pk == existing).values(**values, updated_at=now)
        )
        return int(existing)
    pk: int = session.execute(
        sa.insert(stuf_message).values(**values, created_at=now, updated_at=now).returning(stuf_message.c.pk)
    ).scalar_one()
    return pk


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS).join(message, message.c.pk == stuf_message.c.message_pk)


# Built once with bound parameters: the delivery worker asks these for every message it decides,
# and building the statement anew each time cost more than running it (bench delivery --cprofile).
_RECEIVED_EARLIER: Final = (
    _select()
    .where(
        stuf_message.c.direction == "in",
        stuf_message.c.zender == sa.bindparam("zender"),
        stuf_message.c.referentienummer == sa.bindparam("referentienummer"),
        stuf_message.c.message_pk != sa.bindparam("not_message_pk"),
    )
    .order_by(stuf_message.c.pk)
    .limit(1)
)
_SENT: Final = (
    _select()
    .where(
        stuf_message.c.direction == "out", stuf_message.c.referentienummer == sa.bindparam("referentienummer")
    )
    .order_by(stuf_message.c.pk.desc())
    .limit(1)
)


def received_earlier_in(
    session: Session, zender: str, referentienummer: str, *, not_message_pk: int
) -> StoredStuf | None:
    """``StufStore.received_earlier`` inside the caller's transaction."""
    row = session.execute(
        _RECEIVED_EARLIER,
        {"zender": zender, "referentienummer": referentienummer, "not_message_pk": not_message_pk},
    ).first()
    return None if row is None else _row(row)


# Pairs per statement of ``received_first_in`` on SQLite: two parameters each, well below its
# limit (32,766) for any ``delivery_batch``.
_PAIRS_PER_STATEMENT: Final = 500

# The same questions on PostgreSQL: every key of the batch in ONE array parameter per column and
# a LATERAL lookup per key on the (zender, referentienummer) and referentienummer indexes. One
# statement text whatever the batch holds, so it is compiled once and prepared by psycopg
# (store/among.py says why that matters).
_PAIRS: Final = (
    sa.func.unnest(
        sa.bindparam("zenders", type_=postgresql.ARRAY(sa.String)),
        sa.bindparam("referentienummers", type_=postgresql.ARRAY(sa.String)),
    )
    .table_valued("zender", "referentienummer")
    .render_derived(name="p", with_types=False)
)
_FIRST_TWO: Final = (
    sa.select(stuf_message.c.pk, stuf_message.c.message_pk, stuf_message.c.payload_sha256)
    .where(
        stuf_message.c.direction == "in",
        stuf_message.c.zender == _PAIRS.c.zender,
        stuf_message.c.referentienummer == _PAIRS.c.referentienummer,
    )
    .order_by(stuf_message.c.pk)
    .limit(2)
    .lateral("first_two")
)
_RECEIVED_FIRST_PG: Final = (
    sa.select(_PAIRS.c.zender, _PAIRS.c.referentienummer)
    .add_columns(_FIRST_TWO.c.message_pk, _FIRST_TWO.c.payload_sha256)
    .select_from(_PAIRS.join(_FIRST_TWO, sa.true()))
    .order_by(_FIRST_TWO.c.pk)
)
_REFS: Final = (
    sa.func.unnest(sa.bindparam("referentienummers", type_=postgresql.ARRAY(sa.String)))
    .table_valued("referentienummer")
    .render_derived(name="r", with_types=False)
)
_LAST_SENT: Final = (
    sa.select(stuf_message.c.message_pk)
    .where(stuf_message.c.direction == "out", stuf_message.c.referentienummer == _REFS.c.referentienummer)
    .order_by(stuf_message.c.pk.desc())
    .limit(1)
    .lateral("last_sent")
)
_SENT_AMONG_PG: Final = sa.select(_REFS.c.referentienummer, _LAST_SENT.c.message_pk).select_from(
    _REFS.join(_LAST_SENT, sa.true())
)


_FirstRow = tuple[str, str, int, str | None]  # zender, referentienummer, message pk, payload sha256


def received_first_in(
    session: Session, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[tuple[int, str | None]]]:
    """The answers to ``received_earlier_in`` for many (zender, referentienummer) pairs at once
    (docs/stuf-routing.md inbound check 8): per pair, the first two received messages that carry
    it, in the order they were recorded, as (message pk, payload sha256).

    Two are enough: ``received_earlier_in`` leaves out only the asking message, and a message
    has one stuurgegevens row, so when the first is the asker the second is the answer. One
    statement for the batch on PostgreSQL, one per ``_PAIRS_PER_STATEMENT`` pairs on SQLite,
    instead of one per message (the delivery worker's batch, docs/delivery.md "Batches").
    """
    found: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
    wanted = sorted(set(pairs))
    if not wanted:
        return found
    if is_postgresql(session):
        zenders, referentienummers = (list(column) for column in zip(*wanted, strict=True))
        rows = _first_rows(
            session.execute(_RECEIVED_FIRST_PG, {"zenders": zenders, "referentienummers": referentienummers})
        )
    else:
        rows = [
            row
            for start in range(0, len(wanted), _PAIRS_PER_STATEMENT)
            for row in _received_first_sqlite(session, wanted[start : start + _PAIRS_PER_STATEMENT])
        ]
    for zender, referentienummer, message_pk, sha256 in rows:  # pk order within each pair
        found.setdefault((zender, referentienummer), []).append((message_pk, sha256))
    return found


def _received_first_sqlite(session: Session, chunk: list[tuple[str, str]]) -> list[_FirstRow]:
    ranked = (
        sa.select(
            stuf_message.c.zender,
            stuf_message.c.referentienummer,
            stuf_message.c.message_pk,
            stuf_message.c.payload_sha256,
            sa.func.row_number()
            .over(
                partition_by=(stuf_message.c.zender, stuf_message.c.referentienummer),
                order_by=stuf_message.c.pk,
            )
            .label("rank"),
        )
        .where(
            stuf_message.c.direction == "in",
            sa.tuple_(stuf_message.c.zender, stuf_message.c.referentienummer).in_(chunk),
        )
        .subquery()
    )
    return _first_rows(
        session.execute(
            sa.select(ranked.c.zender, ranked.c.referentienummer)
            .add_columns(ranked.c.message_pk, ranked.c.payload_sha256)
            .where(ranked.c.rank <= 2)
            .order_by(ranked.c.zender, ranked.c.referentienummer, ranked.c.rank)
        )
    )


def _first_rows(rows: Iterable[Any]) -> list[_FirstRow]:
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def sent_among(session: Session, referentienummers: Collection[str]) -> dict[str, int]:
    """``sent_in`` for many referentienummers at once (docs/stuf-routing.md inbound check 9 and
    the heen/retour pairing): each one we sent a message with, and the pk of the last such
    message."""
    wanted = sorted(set(referentienummers))
    if is_postgresql(session):
        if not wanted:
            return {}
        rows = session.execute(_SENT_AMONG_PG, {"referentienummers": wanted})
        return {referentienummer: message_pk for referentienummer, message_pk in rows}  # noqa: C416
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _PAIRS_PER_STATEMENT):
        chunk = wanted[start : start + _PAIRS_PER_STATEMENT]
        rows = session.execute(
            sa.select(stuf_message.c.referentienummer, stuf_message.c.message_pk)
            .where(stuf_message.c.direction == "out", stuf_message.c.referentienummer.in_(chunk))
            .order_by(stuf_message.c.pk)
        )
        for referentienummer, message_pk in rows:  # pk order: the last one sent stays
            found[referentienummer] = message_pk
    return found


def sent_in(session: Session, referentienummer: str) -> StoredStuf | None:
    """``StufStore.sent`` inside the caller's transaction."""
    row = session.execute(_SENT, {"referentienummer": referentienummer}).first()
    return None if row is None else _row(row)


class StufStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def record(self, record: StufRecord, *, business: Event | None = None) -> int:
        """Store (or, for a re-delivered message, replace) the stuurgegevens of one message;
        ``business``: the business-layer event to apply to it in the same transaction."""
        now = self.clock.now()
        with self.db.session() as session:
            pk = upsert_record(session, record, now=now)
            if business is not None:
                steps.business_transition(session, record.message_pk, business, now=now)
        return pk

    def _select(self) -> sa.Select[Any]:
        return _select()

    def for_message(self, message_pk: int) -> StoredStuf | None:
        with self.db.session() as session:
            row = session.execute(self._select().where(stuf_message.c.message_pk == message_pk)).first()
        return None if row is None else _row(row)

    def received_earlier(
        self, zender: str, referentienummer: str, *, not_message_pk: int
    ) -> StoredStuf | None:
        """A received message with this (zender, referentienummer) other than ``not_message_pk``
        (StUF re-send rule: the pair is unique per zender)."""
        with self.db.session() as session:
            return received_earlier_in(session, zender, referentienummer, not_message_pk=not_message_pk)

    def sent(self, referentienummer: str) -> StoredStuf | None:
        """The message we sent with this referentienummer (the target of a crossRefnummer)."""
        with self.db.session() as session:
            return sent_in(session, referentienummer)

    def heen_for_retour(
        self, *, berichttype: str, bericht_identificatie: str, gemeentecode: str, partner: str
    ) -> StoredStuf | None:
        """The received heen message a retour answers (iStandaarden header and retour pairing: the retour
        copies the
        heen header, so BerichtIdentificatie, gemeentecode and the partner's code match)."""
        query = (
            self._select()
            .where(
                stuf_message.c.direction == "in",
                stuf_message.c.berichttype == berichttype,
                stuf_message.c.bericht_identificatie == bericht_identificatie,
                stuf_message.c.gemeentecode == gemeentecode,
                stuf_message.c.zender == partner,
            )
            .order_by(stuf_message.c.pk.desc())
            .limit(1)
        )
        with self.db.session() as session:
            row = session.execute(query).first()
        return None if row is None else _row(row)

    def record_fout(self, message_pk: int, code: str, omschrijving: str) -> None:
        """Keep the Fo01 a partner sent about one of our messages (docs/stuf-routing.md inbound check 11)."""
        with self.db.session() as session:
            session.execute(
                sa.update(stuf_message)
                .where(stuf_message.c.message_pk == message_pk)
                .values(
                    fout_code=code[:16], fout_omschrijving=omschrijving[:255], updated_at=self.clock.now()
                )
            )

    def list(
        self, *, direction: str | None = None, berichttype: str | None = None, limit: int = 50
    ) -> builtins.list[StoredStuf]:
        query = self._select()
        if direction is not None:
            query = query.where(stuf_message.c.direction == direction)
        if berichttype is not None:
            query = query.where(stuf_message.c.berichttype == berichttype)
        with self.db.session() as session:
            rows = session.execute(query.order_by(stuf_message.c.pk.desc()).limit(limit)).all()
        return [_row(row) for row in rows]

    def outbound_in_conversation(self, cpa_id: str, conversation_id: str) -> int | None:
        """The pk of a business message we queued on ``cpa_id`` in this conversation (hub forwarding
        derives the ConversationId from the received message, so this finds an earlier forward)."""
        query = (
            sa.select(message.c.pk)
            .where(
                message.c.direction == "out",
                message.c.kind == "business",
                message.c.cpa_id == cpa_id,
                message.c.conversation_id == conversation_id,
            )
            .limit(1)
        )
        with self.db.session() as session:
            pk = session.execute(query).scalar_one_or_none()
        return None if pk is None else int(pk)

    def received_by_referentienummer(self, referentienummer: str) -> StoredStuf | None:
        """The received message with this referentienummer (what a ready Du01 answers)."""
        query = (
            self._select()
            .where(stuf_message.c.direction == "in", stuf_message.c.referentienummer == referentienummer)
            .order_by(stuf_message.c.pk.desc())
            .limit(1)
        )
        with self.db.session() as session:
            row = session.execute(query).first()
        return None if row is None else _row(row)
