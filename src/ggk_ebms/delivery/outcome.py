"""Whether a message's business outcome is a refusal, read from the stored StUF data.

The business layer of the message lifecycle says it first (``business_status`` refused, with
its code); for messages stored before that layer existed the facts are in ``stuf_message``:

- a received message we answered with a Fo01: an outbound Fo01 whose crossRefnummer is the
  received message's referentienummer (StUF 03.01: Fo01/Fo03/Bv03: crossRef = the refused message);
- a message we sent that the partner refused: a Fo01 about it was recorded (``fout_code``,
  docs/stuf-routing.md inbound check 11).

Re-trying such a message delivers what was refused, or sends again what the partner refused, so
``messages retry`` asks for ``--force --reason`` (docs/delivery.md).
"""

from __future__ import annotations

from ggk_ebms.lifecycle import Business
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.store.refusals import stuf_refusal


def refusal_outcome(database: Database, pk: int) -> str | None:
    """A sentence saying how message ``pk`` was refused, or None when it was not."""
    stored = MessageStore(database).get(pk)
    if stored.business_status == Business.REFUSED:
        code = stored.business_code or stored.error_code or "(code unknown)"
        if stored.direction == "out":
            return f"the partner refused it with Fo01 {code} ({stored.business_reason or ''})"
        return f"we refused it with Fo01 {code}"
    return stuf_refusal(database, pk)
