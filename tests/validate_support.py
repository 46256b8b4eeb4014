"""Run the inbound validation on raw envelope bytes, through the inbound decision itself.

Both the oracle-backed tests (the reference catalogue) and the self-contained ones check what
the decision (pipeline/inbound_decision.py, which calls ``validate_inbound``) accepts and which
ebMS 2.0 error (§4.2.3.4 errorCode, location, text) it refuses with; only the CPA, our PartyIds and
the clock differ between them. The sender presents a certificate with the OIN of its From party (or,
when the CPA does not know that one, of the CPA's other party), so the client check passes and
validation decides.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.validate import InboundContext
from ggk_ebms.errors import EbmsError
from ggk_ebms.lifecycle import Status
from ggk_ebms.pipeline.inbound_decision import Fault
from tests.decision_support import decide_on, known_as, sender_peer, stored_message


def validate(
    envelope: bytes,
    agreement: Agreement,
    *,
    our_party_ids: tuple[str, ...],
    now: datetime,
    known: set[str] | None = None,
) -> InboundContext:
    """``envelope`` checked against ``agreement``; ``known`` holds MessageIds seen before (None:
    every RefToMessageId names a message we know, so the check is out of the way)."""
    found = stored_message("known", direction="out", status=Status.SENT, cpa_id=agreement.cpa_id)
    _, _, outcome = decide_on(
        envelope,
        agreement,
        our_party_ids=our_party_ids,
        now=now,
        peer=sender_peer(envelope, agreement, our_party_ids),
        sent=known_as((lambda _ref: True) if known is None else known.__contains__, found),
    )
    if isinstance(outcome, Fault):
        raise outcome.error
    if outcome.errors:
        raise outcome.errors[0]
    assert outcome.context is not None
    return outcome.context


def refusal(
    envelope: bytes,
    agreement: Agreement,
    *,
    our_party_ids: tuple[str, ...],
    now: datetime,
    known: set[str] | None = None,
) -> tuple[str, str, str]:
    """The (errorCode, location, description) ``validate`` refuses ``envelope`` with."""
    with pytest.raises(EbmsError) as caught:
        validate(envelope, agreement, our_party_ids=our_party_ids, now=now, known=known)
    return caught.value.code, caught.value.location, caught.value.description
