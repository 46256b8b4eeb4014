"""`messages retry` re-delivers parked messages only: a message refused at the ebMS layer (the
sender got a MessageError) was never accepted and must not be delivered afterwards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ggk_ebms.delivery.retry import retry_message
from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _refused() -> NewMessage:
    return NewMessage(
        direction="in",
        message_id="refused@peer",
        cpa_id="cpa",
        conversation_id="c",
        from_party_id="00000099000001000000",
        to_party_id="00000099000003630000",
        service="ggk:berichtenverkeer:1.0",
        action="envelopHeenbericht-ggk_Di01",
        kind="business",
        timestamp=NOW,
        status="Failed",
        status_reason="Signature value is wrong.",
        error_code="SecurityFailure",
        content_digest="d",
    )


def test_a_message_refused_with_a_message_error_cannot_be_retried(db: Database) -> None:
    store = MessageStore(db)
    result = store.receive(
        _refused(),
        [NewPart("p@peer", "application/xml", b"<x/>")],
        response=None,
        deliver=False,
        send_response_async=False,
    )
    with pytest.raises(StoreError, match="refused with ebMS error SecurityFailure"):
        retry_message(db, result.message_pk, now=NOW)
    assert JobQueue(db).jobs_for(result.message_pk) == []
    assert store.get(result.message_pk).status == "Failed"
