"""The koppeltabel in the database: keys read per message and the relations found between them.

The relations are decided by the pure ``ggk_ebms.koppeltabel``; this module only reads and writes.
Identifier values (``koppel_key.value``, ``koppel_relation.value``) are personal data in the
sense of the iStandaarden: they are never logged and leave the installation only hashed
(Ketendata).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.errors import StoreError
from ggk_ebms.koppeltabel import BODY_IDENTIFIERS, Keys, Link, Relation, Via
from ggk_ebms.koppeltabel_batch import Member, Pair
from ggk_ebms.spool import SpooledRange
from ggk_ebms.store.db import Database
from ggk_ebms.store.large_parts import PART_SLICE, is_large, read_part_spooled
from ggk_ebms.store.tables import (
    KOPPEL_VALUE_MAX,
    koppel_key,
    koppel_message,
    koppel_relation,
    message,
    message_part,
)

BATCH: Final = 200
MAX_CANDIDATES: Final = 1000
# Holder rows one batch may fetch (``holders``): beyond this, the batch is read one message at a
# time, each bounded by MAX_CANDIDATES, so a hot identifier never fills memory.
MAX_HOLDER_ROWS: Final = 20_000
# Bound parameters per statement: SQLite allows 32,766 and PostgreSQL 65,535.
_IN_CHUNK: Final = 2000
# PostgreSQL advisory lock of the batched catch-up ("koppel" in ASCII): one batch at a time.
_CATCH_UP_LOCK: Final = 0x6B6F7070656C

# What a batch is related against: per probe the pks holding it, and their keys as stored.
Holders = tuple[dict[Pair, list[int]], dict[int, Keys]]
RelateBatch = Callable[[Sequence[Member], Mapping[Pair, list[int]], Mapping[int, Keys]], list[Link]]


def _serialise_catch_ups(session: Session) -> None:
    """Hold off every other batched catch-up until this transaction ends.

    Two catch-ups reading different messages at the same moment (two server processes, two
    nodes) would each look up holders before the other's batch is committed, and the relations
    between the two batches would be found by neither. SQLite's BEGIN IMMEDIATE already holds the
    write lock for the whole transaction (store/db.py); on PostgreSQL a transaction-level advisory
    lock does the same, released at commit or rollback.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_CATCH_UP_LOCK)))


@dataclass(frozen=True)
class Unindexed:
    """A message to read. ``envelope``: its first part (personal data: never log), None when it
    has none or when it is large: then ``large_part`` is (part pk, size) and ``first_part`` reads
    it on its own, so a batch never holds more than one large envelope (large_parts.py)."""

    pk: int
    envelope: bytes | None
    large_part: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"Unindexed(pk={self.pk})"


@dataclass(frozen=True)
class RelatedMessage:
    """One relation seen from one message: ``role`` 'earlier' when the other message came first."""

    pk: int
    message_id: str
    direction: str
    berichttype: str | None
    berichtcode: str | None
    created_at: datetime
    relation: Relation
    via: Via
    role: str  # "earlier": the other message is the heen/toewijzing; "later": it answers this one


@dataclass(frozen=True)
class KoppelMessage:
    pk: int
    message_id: str
    direction: str
    berichttype: str | None
    gemeentecode: str | None
    aanbieder: str | None
    created_at: datetime


@dataclass(frozen=True)
class RelationRow:
    """A relation with both messages' ebMS MessageIds, for the Ketendata file."""

    earlier_message_id: str
    earlier_berichttype: str | None
    later_message_id: str
    later_berichttype: str | None
    gemeentecode: str | None
    relation: str
    via: str
    value: str  # personal data: hash before it leaves
    created_at: datetime


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:KOPPEL_VALUE_MAX]


_KEY_COLUMNS: Final = (
    "berichtcode",
    "berichttype",
    "referentienummer",
    "cross_refnummer",
    "zender",
    "ontvanger",
    "gemeentecode",
    "aanbieder",
    "afzender",
    "identificatie",
)


def _message_row(pk: int, keys: Keys | None, now: datetime, *, full: bool = False) -> dict[str, object]:
    """The koppel_message row of one message; ``full``: every column, NULL where nothing was read
    (a multi-row insert needs the same columns in every row)."""
    row: dict[str, object] = {"message_pk": pk, "indexed_at": now}
    if keys is not None:
        row.update(
            berichtcode=keys.berichtcode,
            berichttype=keys.berichttype,
            referentienummer=keys.referentienummer,
            cross_refnummer=keys.cross_refnummer,
            zender=keys.zender,
            ontvanger=keys.ontvanger,
            gemeentecode=keys.gemeentecode,
            aanbieder=keys.aanbieder,
            afzender=keys.afzender,
            identificatie=_clip(keys.identificatie),
        )
    elif full:
        row.update(dict.fromkeys(_KEY_COLUMNS))
    return row


def _key_rows(pk: int, keys: Keys | None) -> list[dict[str, object]]:
    """The koppel_key rows of one message: its probes and its body identifiers."""
    if keys is None:
        return []
    return [
        {"message_pk": pk, "name": n, "value": v[:KOPPEL_VALUE_MAX]}
        for n, v in sorted(keys.probes() | keys.values)
    ]


class KoppelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- taking messages in -------------------------------------------------------------------
    def newest_message(self) -> int | None:
        """The highest message pk (None for an empty store): one index lookup, polled by the
        catch-up to tell whether traffic is arriving (koppeltabel_pace.py)."""
        with self.db.session() as session:
            newest: int | None = session.execute(sa.select(sa.func.max(message.c.pk))).scalar()
        return newest

    def unindexed(self, limit: int = BATCH) -> list[Unindexed]:
        """Business messages not yet read for the koppeltabel, oldest first."""
        small = sa.case((message_part.c.size <= PART_SLICE, message_part.c.data), else_=sa.null())
        part = (message_part.c.pk.label("part_pk"), message_part.c.size, small.label("data"))
        query = (
            sa.select(message.c.pk, *part)
            .select_from(message)
            .outerjoin(
                message_part, sa.and_(message_part.c.message_pk == message.c.pk, message_part.c.seq == 0)
            )
            .outerjoin(koppel_message, koppel_message.c.message_pk == message.c.pk)
            .where(message.c.kind == "business", koppel_message.c.message_pk.is_(None))
            .order_by(message.c.pk)
            .limit(limit)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [
            Unindexed(
                r.pk,
                None if r.data is None else bytes(r.data),
                (r.part_pk, r.size) if r.part_pk is not None and is_large(r.size) else None,
            )
            for r in rows
        ]

    def first_part(self, item: Unindexed) -> bytes | SpooledRange | None:
        """The first part of ``item``; a large one is read now, in slices, into a temporary file
        that the parser reads slice by slice (large_parts.py, ggk_ebms/spool.py)."""
        if item.large_part is None:
            return item.envelope
        part_pk, size = item.large_part
        with self.db.session() as session:
            return read_part_spooled(session, part_pk, size)

    def save_keys(self, pk: int, keys: Keys | None, now: datetime, links: Sequence[Link] = ()) -> int:
        """Record what was read of message ``pk`` (None: no StUF message, nothing to relate) and
        its new relations, in one transaction; the number of relations added."""
        with self.db.session() as session:
            session.execute(sa.insert(koppel_message).values(**_message_row(pk, keys, now)))
            pairs = _key_rows(pk, keys)
            if pairs:
                session.execute(sa.insert(koppel_key), pairs)
            return self._add_links(session, links, now)

    def index_batch(
        self, members: Sequence[Member], probes: Iterable[Pair], relate: RelateBatch, now: datetime
    ) -> int | None:
        """Read a batch into the koppeltabel in one transaction: the members not read yet, the
        messages holding any of ``probes`` with their keys, ``relate`` (pure) on those, and keys
        and relations of the batch as three multi-row inserts. The number of relations added.

        None, with nothing stored, when more than MAX_HOLDER_ROWS holder rows match (a hot
        identifier) or when a unique key refused the inserts (a reader that does not take the
        lock below, such as ``save_keys``, stored one of them first); the caller then reads the
        batch one message at a time, which tolerates both. Also None when the database refused a
        value (PostgreSQL: too long for its column): one at a time, the messages before that one
        are read, as before batches.
        """
        try:
            with self.db.session() as session:
                _serialise_catch_ups(session)
                done = self._indexed_among(session, [m.pk for m in members])
                todo = [m for m in members if m.pk not in done]
                if not todo:
                    return 0
                found = self._holders(session, probes)
                if found is None:
                    return None
                links = relate(todo, *found)
                return self._insert_batch(session, todo, now, links)
        except StoreError as error:
            if isinstance(error.__cause__, sa.exc.IntegrityError | sa.exc.DataError):
                return None
            raise

    @staticmethod
    def _indexed_among(session: Session, pks: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(pks), _IN_CHUNK):
            part = list(pks[start : start + _IN_CHUNK])
            found.update(
                session.execute(
                    sa.select(koppel_message.c.message_pk).where(koppel_message.c.message_pk.in_(part))
                ).scalars()
            )
        return found

    @staticmethod
    def _insert_batch(
        session: Session, members: Sequence[Member], now: datetime, links: Sequence[Link]
    ) -> int:
        # Every row with every column: one executemany, which SQLAlchemy sends as multi-row VALUES.
        message_rows = [_message_row(m.pk, m.keys, now, full=True) for m in members]
        key_rows = [row for m in members for row in _key_rows(m.pk, m.keys)]
        relation_rows: dict[tuple[int, int, str], dict[str, object]] = {}
        for link in links:
            # The first of a pair and relation stands, as in ``_add_links``.
            relation_rows.setdefault(
                (link.earlier, link.later, link.relation.value),
                {
                    "earlier_pk": link.earlier,
                    "later_pk": link.later,
                    "relation": link.relation.value,
                    "via": link.via.value,
                    "value": link.value[:KOPPEL_VALUE_MAX],
                    "created_at": now,
                },
            )
        session.execute(sa.insert(koppel_message), message_rows)
        if key_rows:
            session.execute(sa.insert(koppel_key), key_rows)
        if relation_rows:
            session.execute(sa.insert(koppel_relation), list(relation_rows.values()))
        return len(relation_rows)

    def is_indexed(self, pk: int) -> bool:
        with self.db.session() as session:
            row = session.execute(
                sa.select(koppel_message.c.message_pk).where(koppel_message.c.message_pk == pk)
            ).first()
        return row is not None

    def aanbieders(self, pks: Sequence[int]) -> dict[int, str]:
        """The aanbieder (payload header AGB code) of each of these messages that has one."""
        if not pks:
            return {}
        with self.db.session() as session:
            rows = session.execute(
                sa.select(koppel_message.c.message_pk, koppel_message.c.aanbieder).where(
                    koppel_message.c.message_pk.in_(list(pks)), koppel_message.c.aanbieder.is_not(None)
                )
            ).all()
        return {r.message_pk: r.aanbieder for r in rows}

    def candidates(self, pk: int, probes: Iterable[tuple[str, str]]) -> list[tuple[int, Keys]]:
        """Other messages sharing any probe with message ``pk``, with their keys."""
        probe_list = list(probes)
        if not probe_list:
            return []
        match = sa.or_(
            *(
                sa.and_(koppel_key.c.name == n, koppel_key.c.value == v[:KOPPEL_VALUE_MAX])
                for n, v in probe_list
            )
        )
        with self.db.session() as session:
            pks = list(
                session.execute(
                    sa.select(koppel_key.c.message_pk)
                    .where(match, koppel_key.c.message_pk != pk)
                    .distinct()
                    .order_by(koppel_key.c.message_pk)
                    .limit(MAX_CANDIDATES)
                ).scalars()
            )
        return self.keys_of(pks)

    def _holders(self, session: Session, probes: Iterable[Pair]) -> Holders | None:
        """The messages in the koppeltabel holding each of ``probes`` (pairs as stored, cut to
        the column width), and the keys of those messages. None when more than MAX_HOLDER_ROWS
        rows match."""
        by_name: dict[str, list[str]] = {}
        for name, value in sorted(set(probes)):
            by_name.setdefault(name, []).append(value)
        chunks: list[list[tuple[str, str]]] = [[]]
        for name, values in by_name.items():
            for value in values:
                if len(chunks[-1]) >= _IN_CHUNK:
                    chunks.append([])
                chunks[-1].append((name, value))
        found: dict[Pair, list[int]] = {}
        rows = 0
        for chunk in chunks:
            if not chunk:
                continue
            grouped: dict[str, list[str]] = {}
            for name, value in chunk:
                grouped.setdefault(name, []).append(value)
            # Per name an IN list: each term can use the (name, value) index.
            match = sa.or_(
                *(
                    sa.and_(koppel_key.c.name == name, koppel_key.c.value.in_(values))
                    for name, values in grouped.items()
                )
            )
            result = session.execute(
                sa.select(koppel_key.c.message_pk, koppel_key.c.name, koppel_key.c.value)
                .where(match)
                .limit(MAX_HOLDER_ROWS + 1 - rows)
            ).all()
            rows += len(result)
            if rows > MAX_HOLDER_ROWS:
                return None
            for r in result:
                found.setdefault((r.name, r.value), []).append(r.message_pk)
        pks = sorted({pk for held in found.values() for pk in held})
        return found, dict(self._keys_of(session, pks))

    def keys_of(self, pks: Sequence[int]) -> list[tuple[int, Keys]]:
        if not pks:
            return []
        with self.db.session() as session:
            return self._keys_of(session, pks)

    @staticmethod
    def _keys_of(session: Session, pks: Sequence[int]) -> list[tuple[int, Keys]]:
        heads: list[Any] = []
        body: dict[int, set[tuple[str, str]]] = {}
        for start in range(0, len(pks), _IN_CHUNK):
            part = list(pks[start : start + _IN_CHUNK])
            heads.extend(
                session.execute(
                    sa.select(koppel_message).where(
                        koppel_message.c.message_pk.in_(part), koppel_message.c.berichtcode.is_not(None)
                    )
                ).all()
            )
            for row in session.execute(
                sa.select(koppel_key.c.message_pk, koppel_key.c.name, koppel_key.c.value).where(
                    koppel_key.c.message_pk.in_(part), koppel_key.c.name.in_(BODY_IDENTIFIERS)
                )
            ):
                body.setdefault(row.message_pk, set()).add((row.name, row.value))
        return [
            (
                h.message_pk,
                Keys(
                    berichtcode=h.berichtcode,
                    referentienummer=h.referentienummer or "",
                    cross_refnummer=h.cross_refnummer,
                    zender=h.zender or "",
                    ontvanger=h.ontvanger or "",
                    berichttype=h.berichttype,
                    gemeentecode=h.gemeentecode,
                    aanbieder=h.aanbieder,
                    afzender=h.afzender,
                    identificatie=h.identificatie,
                    values=frozenset(body.get(h.message_pk, set())),
                ),
            )
            for h in heads
        ]

    def add_links(self, links: Iterable[Link], now: datetime) -> int:
        """Store new relations; one already known (same pair and relation) is kept. The number added."""
        with self.db.session() as session:
            return self._add_links(session, links, now)

    @staticmethod
    def _add_links(session: Session, links: Iterable[Link], now: datetime) -> int:
        added = 0
        for link in links:
            exists = session.execute(
                sa.select(koppel_relation.c.pk).where(
                    koppel_relation.c.earlier_pk == link.earlier,
                    koppel_relation.c.later_pk == link.later,
                    koppel_relation.c.relation == link.relation.value,
                )
            ).first()
            if exists is not None:
                continue
            session.execute(
                sa.insert(koppel_relation).values(
                    earlier_pk=link.earlier,
                    later_pk=link.later,
                    relation=link.relation.value,
                    via=link.via.value,
                    value=link.value[:KOPPEL_VALUE_MAX],
                    created_at=now,
                )
            )
            added += 1
        return added

    # --- reading --------------------------------------------------------------------------------
    def related(self, pk: int) -> list[RelatedMessage]:
        """Every message related to ``pk``, either way, oldest first."""
        found: list[RelatedMessage] = []
        with self.db.session() as session:
            for mine, other, role in (
                (koppel_relation.c.later_pk, koppel_relation.c.earlier_pk, "earlier"),
                (koppel_relation.c.earlier_pk, koppel_relation.c.later_pk, "later"),
            ):
                rows = session.execute(
                    sa.select(
                        message.c.pk,
                        message.c.message_id,
                        message.c.direction,
                        message.c.created_at,
                        koppel_message.c.berichttype,
                        koppel_message.c.berichtcode,
                        koppel_relation.c.relation,
                        koppel_relation.c.via,
                    )
                    .select_from(koppel_relation)
                    .join(message, message.c.pk == other)
                    .outerjoin(koppel_message, koppel_message.c.message_pk == other)
                    .where(mine == pk)
                ).all()
                found.extend(
                    RelatedMessage(
                        r.pk,
                        r.message_id,
                        r.direction,
                        r.berichttype,
                        r.berichtcode,
                        r.created_at,
                        Relation(r.relation),
                        Via(r.via),
                        role,
                    )
                    for r in rows
                )
        return sorted(found, key=lambda r: (r.created_at, r.pk))

    def without_relation(
        self,
        number: str,
        relation: Relation,
        *,
        before: datetime | None = None,
        gemeentecodes: frozenset[str] | None = None,
    ) -> list[KoppelMessage]:
        """Messages of berichttype ``*<number>`` stored before ``before`` that have no later
        message in ``relation`` (a 301 without a 305 'start', a 323 without a 325 'antwoord')."""
        has = sa.exists().where(
            koppel_relation.c.earlier_pk == koppel_message.c.message_pk,
            koppel_relation.c.relation == relation.value,
        )
        query = (
            sa.select(
                message.c.pk,
                message.c.message_id,
                message.c.direction,
                koppel_message.c.berichttype,
                koppel_message.c.gemeentecode,
                koppel_message.c.aanbieder,
                message.c.created_at,
            )
            .select_from(koppel_message)
            .join(message, message.c.pk == koppel_message.c.message_pk)
            .where(koppel_message.c.berichttype.in_([f"WMO{number}", f"JW{number}"]), ~has)
            .order_by(message.c.created_at, message.c.pk)
        )
        if before is not None:
            query = query.where(message.c.created_at < before)
        if gemeentecodes is not None:
            query = query.where(koppel_message.c.gemeentecode.in_(sorted(gemeentecodes)))
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [KoppelMessage(*r) for r in rows]

    def relations(
        self, message_pks: Sequence[int], *, gemeentecodes: frozenset[str] | None = None
    ) -> list[RelationRow]:
        """The relations whose later message is one of ``message_pks`` (an export's messages)."""
        earlier_m = message.alias("earlier_m")
        later_m = message.alias("later_m")
        earlier_k = koppel_message.alias("earlier_k")
        later_k = koppel_message.alias("later_k")
        found: list[RelationRow] = []
        with self.db.session() as session:
            for start in range(0, len(message_pks), 500):
                part = list(message_pks[start : start + 500])
                query = (
                    sa.select(
                        earlier_m.c.message_id.label("earlier_id"),
                        earlier_k.c.berichttype.label("earlier_type"),
                        later_m.c.message_id.label("later_id"),
                        later_k.c.berichttype.label("later_type"),
                        sa.func.coalesce(later_k.c.gemeentecode, earlier_k.c.gemeentecode).label("gemeente"),
                        koppel_relation.c.relation,
                        koppel_relation.c.via,
                        koppel_relation.c.value,
                        koppel_relation.c.created_at,
                    )
                    .select_from(koppel_relation)
                    .join(earlier_m, earlier_m.c.pk == koppel_relation.c.earlier_pk)
                    .join(later_m, later_m.c.pk == koppel_relation.c.later_pk)
                    .outerjoin(earlier_k, earlier_k.c.message_pk == koppel_relation.c.earlier_pk)
                    .outerjoin(later_k, later_k.c.message_pk == koppel_relation.c.later_pk)
                    .where(koppel_relation.c.later_pk.in_(part))
                    .order_by(koppel_relation.c.pk)
                )
                for r in session.execute(query):
                    if gemeentecodes is not None and r.gemeente not in gemeentecodes:
                        continue
                    found.append(
                        RelationRow(
                            r.earlier_id,
                            r.earlier_type,
                            r.later_id,
                            r.later_type,
                            r.gemeente,
                            r.relation,
                            r.via,
                            r.value,
                            r.created_at,
                        )
                    )
        return found
