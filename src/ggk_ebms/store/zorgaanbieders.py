"""The zorgaanbieder register and what the traffic tells about each AGB code.

First and last message per AGB code are read from the koppeltabel's ``koppel_message`` (the
payload header's aanbieder) joined to the message's time: the traffic is the source, so nothing
has to be kept in step.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import koppel_message, message, stuf_message, zorgaanbieder
from ggk_ebms.zorgaanbieders import Aanbieder


@dataclass(frozen=True)
class RegisterEntry:
    agb: str
    naam: str | None  # None: seen in traffic, not in the register
    bereikbaar: bool | None
    in_register: bool
    eerste_bericht: datetime | None
    laatste_bericht: datetime | None
    berichten: int


class ZorgaanbiederStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, rows: Iterable[Aanbieder], now: datetime) -> tuple[int, int]:
        """Add or update rows; (added, updated)."""
        added = updated = 0
        with self.db.session() as session:
            for row in rows:
                exists = session.execute(
                    sa.select(zorgaanbieder.c.agb).where(zorgaanbieder.c.agb == row.agb)
                ).first()
                values = {"naam": row.naam, "bereikbaar": row.bereikbaar, "updated_at": now}
                if exists is None:
                    session.execute(sa.insert(zorgaanbieder).values(agb=row.agb, **values))
                    added += 1
                else:
                    session.execute(
                        sa.update(zorgaanbieder).where(zorgaanbieder.c.agb == row.agb).values(**values)
                    )
                    updated += 1
        return added, updated

    def names(self, agbs: Collection[str]) -> dict[str, str]:
        wanted = sorted({a for a in agbs if a})
        if not wanted:
            return {}
        with self.db.session() as session:
            rows = session.execute(
                sa.select(zorgaanbieder.c.agb, zorgaanbieder.c.naam).where(zorgaanbieder.c.agb.in_(wanted))
            ).all()
        return {r.agb: r.naam for r in rows}

    def known(self, agb: str) -> bool:
        """In the register, or seen in any stored message as the aanbieder (payload header) or as a
        StUF zender/ontvanger."""
        with self.db.session() as session:
            if session.execute(sa.select(zorgaanbieder.c.agb).where(zorgaanbieder.c.agb == agb)).first():
                return True
            seen = session.execute(
                sa.select(koppel_message.c.message_pk).where(koppel_message.c.aanbieder == agb).limit(1)
            ).first()
            if seen is None:  # the StUF parties the endpoint recorded (no koppeltabel needed)
                seen = session.execute(
                    sa.select(stuf_message.c.pk)
                    .where(sa.or_(stuf_message.c.zender == agb, stuf_message.c.ontvanger == agb))
                    .limit(1)
                ).first()
        return seen is not None

    def entries(self) -> builtins.list[RegisterEntry]:
        """The register joined with the traffic: every registered AGB and every AGB seen."""
        with self.db.session() as session:
            seen = {
                r.aanbieder: r
                for r in session.execute(
                    sa.select(
                        koppel_message.c.aanbieder,
                        sa.func.min(message.c.created_at).label("first"),
                        sa.func.max(message.c.created_at).label("last"),
                        sa.func.count().label("n"),
                    )
                    .join(message, message.c.pk == koppel_message.c.message_pk)
                    .where(koppel_message.c.aanbieder.is_not(None))
                    .group_by(koppel_message.c.aanbieder)
                )
            }
            registered = {r.agb: r for r in session.execute(sa.select(zorgaanbieder))}
        found = []
        for agb in sorted(set(seen) | set(registered)):
            reg, traffic = registered.get(agb), seen.get(agb)
            found.append(
                RegisterEntry(
                    agb=agb,
                    naam=reg.naam if reg else None,
                    bereikbaar=reg.bereikbaar if reg else None,
                    in_register=reg is not None,
                    # SQLite's min/max give text: read them through the column type again.
                    eerste_bericht=_when(traffic.first) if traffic else None,
                    laatste_bericht=_when(traffic.last) if traffic else None,
                    berichten=traffic.n if traffic else 0,
                )
            )
        return found


def _when(value: object) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
