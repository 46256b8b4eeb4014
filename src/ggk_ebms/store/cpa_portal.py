"""The GGk portal's CPA request fields (CPA Beheer) and the activation after a Ping Pong.

Kept beside the CPA (same CPAId, deleted with it): the portal asks for profielnaam, OIN or HRN,
ingangsdatum, einddatum, connectietype, endpoint and both certificates, and activates the CPA
after a successful Ping Pong (GGk handleiding: CPA Beheer); ``geactiveerd_op`` records that moment.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ggk_ebms.errors import CpaNotFoundError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import cpa, cpa_portal


@dataclass(frozen=True, kw_only=True)
class PortalFields:
    profielnaam: str | None = None
    oin_of_hrn: str | None = None
    ingangsdatum: datetime | None = None
    einddatum: datetime | None = None
    connectietype: str | None = None  # Diginetwerk | Internet
    endpoint: str | None = None
    server_certificaat: str | None = None  # PEM
    client_certificaat: str | None = None  # PEM


@dataclass(frozen=True, kw_only=True)
class StoredPortal(PortalFields):
    cpa_id: str
    geactiveerd_op: datetime | None
    updated_at: datetime


_FIELDS = tuple(f.name for f in fields(PortalFields))


def _row(row: sa.Row[Any]) -> StoredPortal:
    return StoredPortal(**dict(row._mapping))


class CpaPortalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _upsert(self, cpa_id: str, values: dict[str, Any], at: datetime) -> StoredPortal:
        with self.db.session() as session:
            if session.execute(sa.select(cpa.c.cpa_id).where(cpa.c.cpa_id == cpa_id)).first() is None:
                raise CpaNotFoundError(f"no CPA {cpa_id!r} is stored")
            exists = session.execute(
                sa.select(cpa_portal.c.cpa_id).where(cpa_portal.c.cpa_id == cpa_id)
            ).first()
            if exists is None:
                session.execute(sa.insert(cpa_portal).values(cpa_id=cpa_id, updated_at=at, **values))
            else:
                session.execute(
                    sa.update(cpa_portal).where(cpa_portal.c.cpa_id == cpa_id).values(updated_at=at, **values)
                )
            row = session.execute(sa.select(cpa_portal).where(cpa_portal.c.cpa_id == cpa_id)).one()
        return _row(row)

    def save(self, cpa_id: str, portal: PortalFields, *, at: datetime) -> StoredPortal:
        """Set the fields given (None leaves a stored value as it is)."""
        values = {name: getattr(portal, name) for name in _FIELDS if getattr(portal, name) is not None}
        return self._upsert(cpa_id, values, at)

    def activate(self, cpa_id: str, *, at: datetime) -> StoredPortal:
        return self._upsert(cpa_id, {"geactiveerd_op": at}, at)

    def get(self, cpa_id: str) -> StoredPortal | None:
        with self.db.session() as session:
            row = session.execute(sa.select(cpa_portal).where(cpa_portal.c.cpa_id == cpa_id)).first()
        return None if row is None else _row(row)

    def all(self) -> builtins.dict[str, StoredPortal]:
        with self.db.session() as session:
            rows = session.execute(sa.select(cpa_portal)).all()
        return {row.cpa_id: _row(row) for row in rows}
