"""A Di01 as the store holds it: the ebMS header values our tests store over and over.

RINIS and the gemeente exchange Di01s under a CPA (Digikoppeling ebMS2: ``CPAId``, the two
PartyIds, ``Service`` and the StUF-GGk Di01 root as ``Action``); each call gets fresh MessageId and
ConversationId values so stored messages never collide.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ggk_ebms.clock import Clock
from ggk_ebms.lifecycle import Status
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart
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


def store_di01_envelope(
    db: Database, clock: Clock, envelope: bytes, direction: str, *, host: str
) -> tuple[int, str]:
    """Store a StUF envelope as a received or submitted business message, as the endpoint would.

    Returns the message's pk and MessageId; a received one gets no delivery job (the test
    drives what happens next), a sent one its send job.
    """
    message_id = f"{uuid.uuid4()}@{host}"
    new = NewMessage(
        direction=direction,
        message_id=message_id,
        cpa_id=CPA_RM,
        conversation_id=str(uuid.uuid4()),
        from_party_id=RINIS if direction == "in" else GEMEENTE,
        to_party_id=GEMEENTE if direction == "in" else RINIS,
        service=SERVICE,
        action="envelopHeenbericht-ggk_Di01",
        kind="business",
        timestamp=clock.now(),
        status="Received" if direction == "in" else "Created",
    )
    store = MessageStore(db, clock)
    part = NewPart(f"{uuid.uuid4()}@{host}", "application/xml", envelope)
    if direction == "in":
        pk = store.receive(new, [part], response=None, deliver=False, send_response_async=False).message_pk
    else:
        pk = store.submit(new, [part], due_at=clock.now())
    return pk, message_id


def received_ack(
    timestamp: datetime,
    *,
    ref_to_message_id: str,
    cpa_id: str = CPA_RM,
    conversation_id: str | None = None,
    message_id: str | None = None,
    from_party_id: str = RINIS,
    to_party_id: str = GEMEENTE,
) -> NewMessage:
    """The Acknowledgment RINIS sends about a message of ours, as the store keeps it."""
    return NewMessage(
        direction="in",
        message_id=message_id or f"{uuid.uuid4()}@rinis.test",
        cpa_id=cpa_id,
        conversation_id=conversation_id or str(uuid.uuid4()),
        ref_to_message_id=ref_to_message_id,
        from_party_id=from_party_id,
        to_party_id=to_party_id,
        service="urn:oasis:names:tc:ebxml-msg:service",
        action="Acknowledgment",
        kind="Acknowledgment",
        timestamp=timestamp,
        status=Status.PROCESSED,
    )
