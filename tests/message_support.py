"""A Di01 as the store holds it: the ebMS header values our tests store over and over.

RINIS and the gemeente exchange Di01s under a CPA (Digikoppeling ebMS2: ``CPAId``, the two
PartyIds, ``Service`` and the StUF-GGk Di01 root as ``Action``); each call gets fresh MessageId and
ConversationId values so stored messages never collide.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ggk_ebms.lifecycle import Status
from ggk_ebms.store.messages import NewMessage
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, SERVICE

DI01_ACTION = "envelopHeenbericht-ggk_Di01"


def received_di01(
    timestamp: datetime, *, status: str = "Received", sender: str = RINIS, cpa_id: str = CPA_RM
) -> NewMessage:
    """The header of a business Di01 ``sender`` sent the gemeente, stored with ``status``."""
    return NewMessage(
        direction="in",
        message_id=f"{uuid.uuid4()}@peer.test",
        cpa_id=cpa_id,
        conversation_id=str(uuid.uuid4()),
        from_party_id=sender,
        to_party_id=GEMEENTE,
        service=SERVICE,
        action=DI01_ACTION,
        kind="business",
        timestamp=timestamp,
        status=status,
    )


def outbound_di01(
    timestamp: datetime, *, cpa_id: str = CPA_RM, time_to_live: datetime | None = None
) -> NewMessage:
    """The header of a business Di01 the gemeente sends RINIS, as ``submit`` creates it."""
    return NewMessage(
        direction="out",
        message_id=f"{uuid.uuid4()}@gemeente.test",
        cpa_id=cpa_id,
        conversation_id=str(uuid.uuid4()),
        from_party_id=GEMEENTE,
        to_party_id=RINIS,
        service=SERVICE,
        action=DI01_ACTION,
        kind="business",
        timestamp=timestamp,
        time_to_live=time_to_live,
        status=Status.CREATED,
    )
