"""Stored CPAs: the raw document as imported plus the facts listings and lookups need.

The raw bytes are kept unchanged (the CPA is a signed-off agreement; what we run on must be what
was agreed), with their SHA-256 so an operator can compare with the file the partner sent.
Parsing and validation happen before ``add``; the repository only stores and returns.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.summary import agreement_profiles, party_id_labels
from ggk_ebms.errors import CpaExistsError, CpaNotFoundError, StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import CPA_ID_MAX, cpa

# Called with the CPAId after a CPA was stored, replaced or deleted by this process, so the
# per-process parsed-CPA caches drop it at once (pipeline.agreements registers here).
_CHANGE_LISTENERS: list[Callable[[str], None]] = []


def on_cpa_change(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(cpa_id)`` after every import or delete in this process; returns a remover."""
    _CHANGE_LISTENERS.append(listener)
    return lambda: _CHANGE_LISTENERS.remove(listener)


def _changed(cpa_id: str) -> None:
    for listener in list(_CHANGE_LISTENERS):
        listener(cpa_id)


@dataclass(frozen=True)
class StoredCpa:
    cpa_id: str
    raw: bytes
    sha256: str
    status: str
    start: datetime
    end: datetime
    party_ids: list[str]
    profiles: list[str]
    imported_at: datetime
    updated_at: datetime


def _row_to_cpa(row: sa.Row[Any]) -> StoredCpa:
    return StoredCpa(
        cpa_id=row.cpa_id,
        raw=bytes(row.raw),
        sha256=row.sha256,
        status=row.status,
        start=row.start_at,
        end=row.end_at,
        party_ids=list(row.party_ids),
        profiles=list(row.profiles),
        imported_at=row.imported_at,
        updated_at=row.updated_at,
    )


class CpaRepository:
    """Add, read, list and delete CPAs by CPAId."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def add_agreement(self, agreement: Agreement, *, overwrite: bool = False) -> None:
        """Store a parsed CPA with its index (status, validity, PartyIds, profiles)."""
        self.add(
            agreement.cpa_id,
            agreement.raw,
            status=agreement.status,
            start=agreement.start,
            end=agreement.end,
            party_ids=party_id_labels(agreement),
            profiles=agreement_profiles(agreement),
            overwrite=overwrite,
        )

    def add(
        self,
        cpa_id: str,
        raw: bytes,
        *,
        status: str,
        start: datetime,
        end: datetime,
        party_ids: list[str],
        profiles: list[str],
        overwrite: bool = False,
    ) -> None:
        """Store a CPA; an existing CPAId is replaced only with ``overwrite`` (else CpaExistsError).

        An overwrite keeps ``imported_at`` of the first import and moves ``updated_at``.
        """
        if not cpa_id or len(cpa_id) > CPA_ID_MAX:
            raise StoreError(f"CPAId must be 1 to {CPA_ID_MAX} characters long")
        now = self.clock.now()
        values = {
            "raw": raw,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "status": status,
            "start_at": start,
            "end_at": end,
            "party_ids": list(party_ids),
            "profiles": list(profiles),
            "updated_at": now,
        }
        with self.db.session() as session:
            # Row lock on PostgreSQL so two concurrent imports of one CPAId cannot both insert.
            exists = session.execute(
                sa.select(cpa.c.cpa_id).where(cpa.c.cpa_id == cpa_id).with_for_update()
            ).first()
            if exists is not None:
                if not overwrite:
                    raise CpaExistsError(f"CPA {cpa_id!r} is stored already; use overwrite to replace it")
                session.execute(sa.update(cpa).where(cpa.c.cpa_id == cpa_id).values(**values))
            else:
                try:
                    session.execute(sa.insert(cpa).values(cpa_id=cpa_id, imported_at=now, **values))
                except exc.IntegrityError:
                    # A concurrent import of the same CPAId committed first.
                    raise CpaExistsError(f"CPA {cpa_id!r} is stored already") from None
        _changed(cpa_id)

    def find(self, cpa_id: str) -> StoredCpa | None:
        with self.db.session() as session:
            row = session.execute(sa.select(cpa).where(cpa.c.cpa_id == cpa_id)).first()
            return None if row is None else _row_to_cpa(row)

    def digests(self, cpa_ids: Iterable[str] | None = None) -> dict[str, str]:
        """The SHA-256 of each of these CPAs (of every CPA with None) that is stored, by CPAId
        (the hashes only)."""
        query = sa.select(cpa.c.cpa_id, cpa.c.sha256)
        if cpa_ids is not None:
            query = query.where(cpa.c.cpa_id.in_(list(cpa_ids)))
        with self.db.session() as session:
            rows = session.execute(query).all()
        return {row.cpa_id: row.sha256 for row in rows}

    def get(self, cpa_id: str) -> StoredCpa:
        found = self.find(cpa_id)
        if found is None:
            raise CpaNotFoundError(f"no CPA with CPAId {cpa_id!r}")
        return found

    def list(self) -> builtins.list[StoredCpa]:
        """Every stored CPA, ordered by CPAId."""
        with self.db.session() as session:
            rows = session.execute(sa.select(cpa).order_by(cpa.c.cpa_id)).all()
            return [_row_to_cpa(row) for row in rows]

    def delete(self, cpa_id: str) -> None:
        with self.db.session() as session:
            result = session.execute(sa.delete(cpa).where(cpa.c.cpa_id == cpa_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise CpaNotFoundError(f"no CPA with CPAId {cpa_id!r}")
        _changed(cpa_id)
