"""A message's refusal read from the stored StUF records (docs/delivery.md "Re-trying").

The fallback for messages stored before the business layer of the lifecycle existed.
"""

from __future__ import annotations

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import message, stuf_message


def stuf_refusal(database: Database, pk: int) -> str | None:
    """A sentence saying how message ``pk`` was refused, or None when it was not."""
    with database.session() as session:
        own = session.execute(
            sa.select(
                stuf_message.c.direction,
                stuf_message.c.referentienummer,
                stuf_message.c.fout_code,
                stuf_message.c.fout_omschrijving,
            ).where(stuf_message.c.message_pk == pk)
        ).first()
        if own is None:
            return None
        direction, referentienummer, fout_code, fout_omschrijving = own
        if direction == "out":
            if fout_code is None:
                return None
            return f"the partner refused it with Fo01 {fout_code} ({fout_omschrijving or ''})"
        answer = session.execute(
            sa.select(stuf_message.c.message_pk)
            .where(
                stuf_message.c.direction == "out",
                stuf_message.c.berichtcode == "Fo01",
                stuf_message.c.cross_refnummer == referentienummer,
            )
            .order_by(stuf_message.c.pk.desc())
            .limit(1)
        ).scalar_one_or_none()
        if answer is None:
            return None
        code = session.execute(sa.select(message.c.error_code).where(message.c.pk == pk)).scalar_one_or_none()
    return f"we refused it with Fo01 {code or '(code unknown)'} (sent as message {answer})"
