"""The CPA as values: what a CollaborationProtocolAgreement (CPPA 2.0) says, already resolved.

References by id (ChannelId, transportId, docExchangeId, certId, OtherPartyActionBinding) are kept
as ids here and resolved by ``ggk_ebms.cpa.lookup``; ``parse`` guarantees each one points at
something that exists or records a finding. Everything is immutable so one parsed agreement can be
shared by every request of every worker.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ggk_ebms.cpa.lookup import ResolvedChannel


class Profile(StrEnum):
    """The six Digikoppeling ebMS 2.0 profiles (Digikoppeling KVS ch. 2-3, BP ch. 3)."""

    OSB_BE = "osb-be"
    OSB_RM = "osb-rm"
    OSB_BE_S = "osb-be-s"
    OSB_RM_S = "osb-rm-s"
    OSB_BE_E = "osb-be-e"
    OSB_RM_E = "osb-rm-e"

    @property
    def reliable(self) -> bool:
        return self in (Profile.OSB_RM, Profile.OSB_RM_S, Profile.OSB_RM_E)

    @property
    def signed(self) -> bool:
        return self not in (Profile.OSB_BE, Profile.OSB_RM)

    @property
    def encrypted(self) -> bool:
        return self in (Profile.OSB_BE_E, Profile.OSB_RM_E)


class SyncReplyMode(StrEnum):
    NONE = "none"
    MSH_SIGNALS_ONLY = "mshSignalsOnly"
    SIGNALS_ONLY = "signalsOnly"
    RESPONSE_ONLY = "responseOnly"
    SIGNALS_AND_RESPONSE = "signalsAndResponse"


class PerMessage(StrEnum):
    """Values of ackRequested, ackSignatureRequested, duplicateElimination (CPPA 2.0 §8.4.8)."""

    ALWAYS = "always"
    NEVER = "never"
    PER_MESSAGE = "perMessage"


@dataclass(frozen=True)
class PartyId:
    value: str
    type: str | None  # None: untyped, then the value must be a URI (ebMS 2.0 §3.1.1.1)


@dataclass(frozen=True)
class Certificate:
    cert_id: str
    der: bytes | None  # the leaf X509Certificate, DER; None when the KeyInfo carries none


@dataclass(frozen=True)
class ReliableMessaging:
    retries: int | None
    retry_interval: timedelta | None
    message_order: str  # "NotGuaranteed" | "Guaranteed"


@dataclass(frozen=True)
class NonRepudiation:
    """SenderNonRepudiation / ReceiverNonRepudiation: XMLDSig settings (ebMS 2.0 §4.1)."""

    protocol: str
    hash_function: str
    signature_algorithm: str
    signing_cert_id: str | None  # SigningCertificateRef (sender side)
    security_details_id: str | None = None  # SigningSecurityDetailsRef (receiver side)


@dataclass(frozen=True)
class DigitalEnvelope:
    """SenderDigitalEnvelope / ReceiverDigitalEnvelope: XML
    Encryption settings (ebMS 2.0 §4.1.4, XML Encryption 1.0)."""

    protocol: str
    protocol_version: str | None
    encryption_algorithm: str
    encryption_cert_id: str | None  # EncryptionCertificateRef (receiver side)
    security_details_id: str | None = None
    key_size: int | None = None


@dataclass(frozen=True)
class BindingSide:
    """ebXMLSenderBinding or ebXMLReceiverBinding of a DocExchange."""

    version: str
    reliable_messaging: ReliableMessaging | None
    persist_duration: timedelta | None
    non_repudiation: NonRepudiation | None
    digital_envelope: DigitalEnvelope | None


@dataclass(frozen=True)
class DocExchange:
    doc_exchange_id: str
    sender: BindingSide | None
    receiver: BindingSide | None


@dataclass(frozen=True)
class Endpoint:
    uri: str
    type: str  # allPurpose | request | response | error | login


@dataclass(frozen=True)
class Transport:
    transport_id: str
    sender_protocol: str | None  # TransportSender/TransportProtocol, e.g. "HTTP"
    client_cert_id: str | None  # TransportSender/TransportClientSecurity/ClientCertificateRef
    client_security_protocol: str | None  # e.g. "TLS"
    client_security_version: str | None
    receiver_protocol: str | None
    endpoints: tuple[Endpoint, ...]
    server_cert_id: str | None  # TransportReceiver/TransportServerSecurity/ServerCertificateRef
    server_security_protocol: str | None
    server_security_version: str | None


@dataclass(frozen=True)
class MessagingCharacteristics:
    sync_reply_mode: SyncReplyMode = SyncReplyMode.NONE
    ack_requested: PerMessage = PerMessage.PER_MESSAGE
    ack_signature_requested: PerMessage = PerMessage.PER_MESSAGE
    duplicate_elimination: PerMessage = PerMessage.PER_MESSAGE
    actor: str | None = None


@dataclass(frozen=True)
class DeliveryChannel:
    channel_id: str
    transport_id: str
    doc_exchange_id: str
    characteristics: MessagingCharacteristics


@dataclass(frozen=True)
class BusinessTransactionCharacteristics:
    is_non_repudiation_required: bool = False
    is_non_repudiation_receipt_required: bool = False
    is_authenticated: str = "none"
    is_tamper_proof: str = "none"
    is_confidential: str = "none"
    is_authorization_required: bool = False
    is_intelligible_check_required: bool = False
    time_to_perform: timedelta | None = None


@dataclass(frozen=True)
class ActionBinding:
    """A ThisPartyActionBinding under CanSend or CanReceive, with its CollaborationRole context."""

    binding_id: str
    action: str
    direction: str  # "send" | "receive"
    role: str  # Role/@name of the CollaborationRole it sits in
    service: str
    service_type: str | None
    channel_ids: tuple[str, ...]
    other_party_binding_id: str | None  # OtherPartyActionBinding (IDREF)
    characteristics: BusinessTransactionCharacteristics


@dataclass(frozen=True)
class PartyInfo:
    party_name: str
    party_ids: tuple[PartyId, ...]
    default_msh_channel_id: str
    roles: tuple[str, ...]
    bindings: tuple[ActionBinding, ...]
    certificates: dict[str, Certificate]
    channels: dict[str, DeliveryChannel]
    transports: dict[str, Transport]
    doc_exchanges: dict[str, DocExchange]
    security_details: dict[str, tuple[str, ...]]  # securityId -> anchor certIds
    # OverrideMshActionBinding: signal action (e.g. "Acknowledgment") -> channelId used instead of
    # defaultMshChannelId for that signal (CPPA 2.0 §8.4.7; CPPA 2.0, BP ch. 3 "Signals").
    msh_overrides: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def resolved_channels(self) -> dict[str, ResolvedChannel]:
        """``cpa.lookup.resolve_channel``'s answers for this party, filled as they are asked for.

        Not a field: equality, repr and the JSON of a party stay what the CPA says. A
        cached_property writes to the instance dictionary, which a frozen dataclass allows.
        """
        return {}


@dataclass(frozen=True)
class Agreement:
    """One parsed CPA. ``parties`` always has the order of the document."""

    cpa_id: str
    version: str | None
    status: str  # agreed | signed | proposed
    start: datetime
    end: datetime
    parties: tuple[PartyInfo, ...]
    raw: bytes = field(repr=False, compare=False, default=b"")
