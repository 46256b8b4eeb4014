"""Run the inbound ebMS validation on raw envelope bytes, as the receive path does after parsing.

Both the oracle-backed tests (the reference catalogue) and the self-contained ones check what
``validate_inbound`` accepts and which ebMS 2.0 error (§4.2.3.4 errorCode, location, text) it
raises; only the CPA, our PartyIds and the clock differ between them.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.ebms.validate import InboundContext, validate_inbound
from ggk_ebms.errors import EbmsError


def validate(
    envelope: bytes,
    agreement: Agreement,
    *,
    our_party_ids: tuple[str, ...],
    now: datetime,
    known: set[str] | None = None,
) -> InboundContext:
    """``envelope`` checked against ``agreement``; ``known`` holds MessageIds seen before."""
    message = parse_envelope(envelope, max_bytes=1024 * 1024)
    return validate_inbound(
        message,
        agreement,
        our_party_ids=our_party_ids,
        now=now,
        attachment_ids=[],
        known_message_ids=None if known is None else known.__contains__,
    )


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
