"""Whether a message's business outcome is a refusal, read from the stored StUF data.

One small function so that it can later read the business state of the message lifecycle
instead; until then the facts are in ``stuf_message`` (store/stuf.py):

- a received message we answered with a Fo01: an outbound Fo01 whose crossRefnummer is the
  received message's referentienummer (stuf-ggk digest §2.3: crossRef = the refused message);
- a message we sent that the partner refused: a Fo01 about it was recorded (``fout_code``,
  digest §4.2 step 11).

Re-trying such a message delivers what was refused, or sends again what the partner refused, so
``messages retry`` asks for ``--force --reason`` (docs/delivery.md).
"""

from __future__ import annotations

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import message, stuf_message


def refusal_outcome(database: Database, pk: int) -> str | None:
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
