"""Turn parsed and built ebMS messages into the store's records (one place for the mapping)."""

from __future__ import annotations

from ggk_ebms.ebms.build import BuiltMessage
from ggk_ebms.ebms.model import EbmsMessage, MessageHeader
from ggk_ebms.lifecycle import Status
from ggk_ebms.pipeline.reply import SOAP_CONTENT_TYPE
from ggk_ebms.store.messages import NewMessage


def _header_fields(header: MessageHeader) -> dict[str, object]:
    sender = header.from_party.party_ids[0]
    receiver = header.to_party.party_ids[0]
    return {
        "message_id": header.message_id,
        "cpa_id": header.cpa_id,
        "conversation_id": header.conversation_id,
        "ref_to_message_id": header.ref_to_message_id,
        "from_party_id": sender.value,
        "from_party_type": sender.type,
        "from_role": header.from_party.role,
        "to_party_id": receiver.value,
        "to_party_type": receiver.type,
        "to_role": header.to_party.role,
        "service": header.service.value,
        "service_type": header.service.type,
        "action": header.action,
        "timestamp": header.timestamp,
        "time_to_live": header.time_to_live,
    }


def new_message_from_received(
    message: EbmsMessage,
    content_type: str,
    digest: str,
    *,
    status: str,
    reason: str | None = None,
    error_code: str | None = None,
    envelope: bytes = b"",
) -> NewMessage:
    return NewMessage(
        direction="in",
        kind=message.kind,
        status=status,
        status_reason=reason,
        content_digest=digest,
        envelope=envelope,
        content_type=content_type,
        sync_reply=message.sync_reply is not None,
        error_code=error_code,
        **_header_fields(message.header),  # type: ignore[arg-type]
    )


def new_message_from_built(built: BuiltMessage, *, sync: bool, status: str | None = None) -> NewMessage:
    """An outbound signal or message; sync ones leave in the HTTP response and are 'Sent' at once."""
    return NewMessage(
        direction="out",
        kind=built.kind,
        status=status or (Status.SENT if sync else Status.CREATED),
        status_reason=None,
        content_digest=None,
        envelope=built.envelope,
        content_type=SOAP_CONTENT_TYPE,
        sync_reply=sync,
        error_code=None,
        **_header_fields(built.header),  # type: ignore[arg-type]
    )
