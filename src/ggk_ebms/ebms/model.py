"""An ebMS 2.0 message as values: what the SOAP header and body say, nothing resolved yet.

``parse.parse_envelope`` fills these from the wire and ``build`` writes them back. Attribute values
that the receive-side validation has to judge (``eb:version``, ``SOAP:actor``) are kept as sent, so
the catalogue's addressable errors (docs/ebms.md catalogue #12, #29–#35, #38) are raised by ``validate`` with
the exact location instead of being lost while parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from ggk_ebms.ns import EBMS_SERVICE, EBMS_VERSION


class SignalAction(StrEnum):
    """Actions of the MSH signal service ``urn:oasis:names:tc:ebxml-msg:service``
    (Digikoppeling KVS ch. 5; ebMS 2.0 §7-§8)."""

    ACKNOWLEDGMENT = "Acknowledgment"
    MESSAGE_ERROR = "MessageError"
    PING = "Ping"
    PONG = "Pong"
    STATUS_REQUEST = "StatusRequest"
    STATUS_RESPONSE = "StatusResponse"


class MessageStatus(StrEnum):
    """``eb:StatusResponse/@eb:messageStatus`` values (ebMS 2.0 §7.3.2, §7-§8)."""

    UNAUTHORIZED = "UnAuthorized"
    NOT_RECOGNIZED = "NotRecognized"
    RECEIVED = "Received"
    PROCESSED = "Processed"
    FORWARDED = "Forwarded"


SIGNAL_ACTIONS: Final = frozenset(a.value for a in SignalAction)


@dataclass(frozen=True)
class PartyId:
    """``eb:PartyId``: the value and its ``eb:type`` (KVS5: ``urn:osb:oin`` for OINs)."""

    value: str
    type: str | None


@dataclass(frozen=True)
class Party:
    """``eb:From`` or ``eb:To``: one or more PartyIds naming one party, and its Role if any."""

    party_ids: tuple[PartyId, ...]
    role: str | None = None


@dataclass(frozen=True)
class Service:
    value: str
    type: str | None = None


@dataclass(frozen=True)
class Description:
    text: str
    lang: str


@dataclass(frozen=True)
class MessageHeader:
    """``eb:MessageHeader`` (ebMS 2.0 §3.1, KVS ch. 5). Timestamps are aware, in UTC."""

    from_party: Party
    to_party: Party
    cpa_id: str
    conversation_id: str
    service: Service
    action: str
    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None = None
    time_to_live: datetime | None = None
    duplicate_elimination: bool = False
    descriptions: tuple[Description, ...] = ()
    version: str = EBMS_VERSION

    @property
    def is_signal(self) -> bool:
        return self.service.value == EBMS_SERVICE


@dataclass(frozen=True)
class AckRequested:
    """``eb:AckRequested`` (ebMS 2.0 §6.3.1). ``actor`` None: the attribute was absent."""

    signed: bool
    actor: str | None
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class SyncReply:
    """``eb:SyncReply`` (ebMS 2.0 §4.3): answer MSH signals in the HTTP response (ebMS 2.0 §4.3, BP EB015)."""

    actor: str
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class AckReference:
    """A ``ds:Reference`` echoed in a signed Acknowledgment (ebMS 2.0 §6.3, KVS ch. 5)."""

    uri: str | None
    digest_method: str | None
    digest_value: str | None


@dataclass(frozen=True)
class Acknowledgment:
    """``eb:Acknowledgment`` (ebMS 2.0 §6.3.2)."""

    timestamp: datetime
    ref_to_message_id: str
    from_party: Party | None
    references: tuple[AckReference, ...] = ()
    actor: str | None = None
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class ErrorEntry:
    """One ``eb:Error`` (ebMS 2.0 §4.2.3.2). ``code`` is kept as sent: peers may use other codes."""

    code: str
    severity: str
    location: str | None
    description: str | None
    code_context: str | None = None


@dataclass(frozen=True)
class ErrorList:
    highest_severity: str
    errors: tuple[ErrorEntry, ...]
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class ManifestReference:
    """``eb:Reference``: ``href`` is ``cid:<content-id>`` for a payload part (KVS5)."""

    href: str
    reference_id: str | None = None
    role: str | None = None

    @property
    def content_id(self) -> str | None:
        """The Content-ID this reference points at, or None when it is not a ``cid:`` URI."""
        if self.href[:4].lower() != "cid:" or len(self.href) == 4:
            return None
        return self.href[4:]


@dataclass(frozen=True)
class Manifest:
    references: tuple[ManifestReference, ...]
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class StatusRequest:
    ref_to_message_id: str
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class StatusResponse:
    ref_to_message_id: str
    status: str
    timestamp: datetime | None = None
    version: str = EBMS_VERSION


@dataclass(frozen=True)
class SoapFault:
    """A SOAP 1.1 Fault a peer answered with. ``faultcode`` is the local name (``Client``)."""

    faultcode: str
    faultstring: str
    faultactor: str | None = None
    detail: bytes | None = None


@dataclass(frozen=True)
class EbmsMessage:
    """One received or built ebMS message. ``notes`` are parse remarks worth a log line."""

    header: MessageHeader
    ack_requested: AckRequested | None = None
    sync_reply: SyncReply | None = None
    acknowledgment: Acknowledgment | None = None
    error_list: ErrorList | None = None
    message_order: bool = False
    signature: bool = False
    manifest: Manifest | None = None
    status_request: StatusRequest | None = None
    status_response: StatusResponse | None = None
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """'business', or the signal action: 'Acknowledgment', 'MessageError', 'Ping', 'Pong',
        'StatusRequest', 'StatusResponse'. A signal service with another action counts as business
        here; validation refuses it (ValueNotRecognized at Action)."""
        if self.header.is_signal and self.header.action in SIGNAL_ACTIONS:
            return self.header.action
        return "business"

    @property
    def is_signal(self) -> bool:
        return self.kind != "business"
