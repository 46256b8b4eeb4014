"""CPA bytes -> ``Agreement``: read a CollaborationProtocolAgreement (CPPA 2.0) into the model.

Reading goes through the one hardened parser (``ggk_ebms.xml.parse``: no DTD, no entities, a size
cap). This module reads; it does not judge. References by id (ChannelId, transportId,
docExchangeId, certId, OtherPartyActionBinding) are kept as ids even when they point nowhere, so
``lint.validate_cpa`` can report them as findings; only values the model cannot hold at all (no
cpaid, an unreadable date or duration, not a CPA) raise ``CpaInvalidError``.

CPPA 2.0 qualifies its attributes (``attributeFormDefault="qualified"``: ``tns:cpaid``); an
unqualified attribute is read too, so a sloppy CPA still parses and the schema check names the
real problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from lxml import etree

from ggk_ebms import ns
from ggk_ebms.clock import parse_xsd_datetime
from ggk_ebms.cpa.certs import decode_key_info, der_of
from ggk_ebms.cpa.duration import parse_duration
from ggk_ebms.cpa.model import (
    ActionBinding,
    Agreement,
    BindingSide,
    BusinessTransactionCharacteristics,
    Certificate,
    DeliveryChannel,
    DigitalEnvelope,
    DocExchange,
    Endpoint,
    MessagingCharacteristics,
    NonRepudiation,
    PartyId,
    PartyInfo,
    PerMessage,
    ReliableMessaging,
    SyncReplyMode,
    Transport,
)
from ggk_ebms.errors import CpaInvalidError
from ggk_ebms.xml import parse

DEFAULT_MAX_CPA_BYTES = 5 * 1024 * 1024  # the default of the max_cpa_bytes setting


def _q(local: str) -> str:
    return f"{{{ns.CPPA}}}{local}"


def attr(element: etree._Element, name: str) -> str | None:
    """A CPPA attribute, qualified (as the schema demands) or, leniently, unqualified."""
    value = element.get(_q(name))
    if value is None:
        value = element.get(name)
    return value


def child(element: etree._Element, *path: str) -> etree._Element | None:
    """The first descendant along ``path`` of CPPA element names, or None."""
    found: etree._Element | None = element
    for local in path:
        if found is None:
            return None
        found = found.find(_q(local))
    return found


def children(element: etree._Element, local: str) -> Iterator[etree._Element]:
    return element.iterfind(_q(local))


def text_of(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None


def parse_agreement(data: bytes, *, max_bytes: int = DEFAULT_MAX_CPA_BYTES) -> Agreement:
    """Parse a CPA. Raises ``XmlError`` (unsafe, too large, not XML) or ``CpaInvalidError``."""
    root = parse(data, max_bytes=max_bytes, what="CPA")
    return agreement_from_element(root, raw=data)


def agreement_from_element(root: etree._Element, *, raw: bytes = b"") -> Agreement:
    """Build the ``Agreement`` from an already safely parsed root element."""
    if root.tag != _q("CollaborationProtocolAgreement"):
        raise CpaInvalidError(
            f"not a CPA: the root element is {etree.QName(root).localname!r}, "
            f"expected CollaborationProtocolAgreement in {ns.CPPA}"
        )
    cpa_id = attr(root, "cpaid")
    if not cpa_id or not cpa_id.strip():
        raise CpaInvalidError("the CPA has no cpaid attribute")
    status_el = child(root, "Status")
    status = attr(status_el, "value") if status_el is not None else None
    if not status:
        raise CpaInvalidError("the CPA has no Status/@value")
    start = _datetime(child(root, "Start"), "Start")
    end = _datetime(child(root, "End"), "End")
    parties = tuple(_party(el) for el in children(root, "PartyInfo"))
    return Agreement(
        cpa_id=cpa_id.strip(),
        version=attr(root, "version"),
        status=status,
        start=start,
        end=end,
        parties=parties,
        raw=raw,
    )


def parse_datetime(text: str) -> datetime:
    """xsd:dateTime as an aware UTC datetime; a zone-less value is taken as UTC (ebMS 2.0 §3.1, KVS ch. 5).

    ValueError for anything else, out-of-range values included (clock.parse_xsd_datetime).
    """
    return parse_xsd_datetime(text)[0]


def _datetime(element: etree._Element | None, name: str) -> datetime:
    value = text_of(element)
    if value is None:
        raise CpaInvalidError(f"the CPA has no {name}")
    try:
        return parse_datetime(value)
    except ValueError:
        raise CpaInvalidError(f"{name} {value!r} is not an xsd:dateTime") from None


def _duration(element: etree._Element | None, where: str) -> timedelta | None:
    value = text_of(element)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise CpaInvalidError(f"{where}: {exc}") from None


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip() in ("true", "1")


_E = TypeVar("_E", PerMessage, SyncReplyMode)


def _enum_value(kind: type[_E], value: str | None, default: _E) -> _E:
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        raise CpaInvalidError(f"{value!r} is not a valid {kind.__name__} value") from None


def _party(element: etree._Element) -> PartyInfo:
    party_ids = tuple(
        PartyId(value=(el.text or "").strip(), type=attr(el, "type")) for el in children(element, "PartyId")
    )
    roles: list[str] = []
    bindings: list[ActionBinding] = []
    for role_el in children(element, "CollaborationRole"):
        role_name_el = child(role_el, "Role")
        role = (attr(role_name_el, "name") if role_name_el is not None else None) or ""
        roles.append(role)
        for service_binding in children(role_el, "ServiceBinding"):
            service_el = child(service_binding, "Service")
            service = text_of(service_el) or ""
            service_type = attr(service_el, "type") if service_el is not None else None
            bindings.extend(_bindings(service_binding, role, service, service_type))
    certificates = {}
    for cert_el in children(element, "Certificate"):
        cert_id = attr(cert_el, "certId") or ""
        decoded = decode_key_info(cert_el.find(f"{{{ns.DS}}}KeyInfo"))
        der = der_of(decoded.leaf) if decoded.leaf is not None else None
        certificates[cert_id] = Certificate(cert_id=cert_id, der=der)
    security_details = {
        attr(el, "securityId") or "": tuple(
            attr(ref, "certId") or ""
            for ref in el.iterfind(f"{_q('TrustAnchors')}/{_q('AnchorCertificateRef')}")
        )
        for el in children(element, "SecurityDetails")
    }
    channels = {}
    for channel_el in children(element, "DeliveryChannel"):
        channel = _channel(channel_el)
        channels[channel.channel_id] = channel
    transports = {}
    for transport_el in children(element, "Transport"):
        transport = _transport(transport_el)
        transports[transport.transport_id] = transport
    doc_exchanges = {}
    for exchange_el in children(element, "DocExchange"):
        exchange = _doc_exchange(exchange_el)
        doc_exchanges[exchange.doc_exchange_id] = exchange
    overrides = {
        attr(el, "action") or "": attr(el, "channelId") or ""
        for el in children(element, "OverrideMshActionBinding")
    }
    return PartyInfo(
        party_name=attr(element, "partyName") or "",
        party_ids=party_ids,
        default_msh_channel_id=attr(element, "defaultMshChannelId") or "",
        roles=tuple(roles),
        bindings=tuple(bindings),
        certificates=certificates,
        channels=channels,
        transports=transports,
        doc_exchanges=doc_exchanges,
        security_details=security_details,
        msh_overrides=overrides,
    )


def _bindings(
    container: etree._Element, role: str, service: str, service_type: str | None
) -> Iterator[ActionBinding]:
    """CanSend/CanReceive under ``container``, nested ones included (CPPA allows nesting)."""
    for local, direction in (("CanSend", "send"), ("CanReceive", "receive")):
        for can in children(container, local):
            this = child(can, "ThisPartyActionBinding")
            if this is not None:
                yield ActionBinding(
                    binding_id=attr(this, "id") or "",
                    action=attr(this, "action") or "",
                    direction=direction,
                    role=role,
                    service=service,
                    service_type=service_type,
                    channel_ids=tuple(text_of(el) or "" for el in children(this, "ChannelId")),
                    other_party_binding_id=text_of(child(can, "OtherPartyActionBinding")),
                    characteristics=_btc(child(this, "BusinessTransactionCharacteristics")),
                )
            yield from _bindings(can, role, service, service_type)


def _btc(element: etree._Element | None) -> BusinessTransactionCharacteristics:
    if element is None:
        return BusinessTransactionCharacteristics()
    return BusinessTransactionCharacteristics(
        is_non_repudiation_required=_bool(attr(element, "isNonRepudiationRequired")),
        is_non_repudiation_receipt_required=_bool(attr(element, "isNonRepudiationReceiptRequired")),
        is_authenticated=attr(element, "isAuthenticated") or "none",
        is_tamper_proof=attr(element, "isTamperProof") or "none",
        is_confidential=attr(element, "isConfidential") or "none",
        is_authorization_required=_bool(attr(element, "isAuthorizationRequired")),
        is_intelligible_check_required=_bool(attr(element, "isIntelligibleCheckRequired")),
        time_to_perform=_duration_attr(attr(element, "timeToPerform"), "timeToPerform"),
    )


def _duration_attr(value: str | None, where: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise CpaInvalidError(f"{where}: {exc}") from None


def _channel(element: etree._Element) -> DeliveryChannel:
    mc = child(element, "MessagingCharacteristics")
    if mc is None:
        characteristics = MessagingCharacteristics()
    else:
        characteristics = MessagingCharacteristics(
            sync_reply_mode=_enum_value(SyncReplyMode, attr(mc, "syncReplyMode"), SyncReplyMode.NONE),
            ack_requested=_enum_value(PerMessage, attr(mc, "ackRequested"), PerMessage.PER_MESSAGE),
            ack_signature_requested=_enum_value(
                PerMessage, attr(mc, "ackSignatureRequested"), PerMessage.PER_MESSAGE
            ),
            duplicate_elimination=_enum_value(
                PerMessage, attr(mc, "duplicateElimination"), PerMessage.PER_MESSAGE
            ),
            actor=attr(mc, "actor"),
        )
    return DeliveryChannel(
        channel_id=attr(element, "channelId") or "",
        transport_id=attr(element, "transportId") or "",
        doc_exchange_id=attr(element, "docExchangeId") or "",
        characteristics=characteristics,
    )


def _transport(element: etree._Element) -> Transport:
    sender = child(element, "TransportSender")
    receiver = child(element, "TransportReceiver")
    client_sec = child(sender, "TransportClientSecurity") if sender is not None else None
    server_sec = child(receiver, "TransportServerSecurity") if receiver is not None else None
    client_proto = child(client_sec, "TransportSecurityProtocol") if client_sec is not None else None
    server_proto = child(server_sec, "TransportSecurityProtocol") if server_sec is not None else None
    client_ref = child(client_sec, "ClientCertificateRef") if client_sec is not None else None
    server_ref = child(server_sec, "ServerCertificateRef") if server_sec is not None else None
    endpoints: tuple[Endpoint, ...] = ()
    if receiver is not None:
        endpoints = tuple(
            Endpoint(uri=(attr(el, "uri") or "").strip(), type=attr(el, "type") or "allPurpose")
            for el in children(receiver, "Endpoint")
        )
    return Transport(
        transport_id=attr(element, "transportId") or "",
        sender_protocol=text_of(child(sender, "TransportProtocol")) if sender is not None else None,
        client_cert_id=attr(client_ref, "certId") if client_ref is not None else None,
        client_security_protocol=text_of(client_proto),
        client_security_version=attr(client_proto, "version") if client_proto is not None else None,
        receiver_protocol=text_of(child(receiver, "TransportProtocol")) if receiver is not None else None,
        endpoints=endpoints,
        server_cert_id=attr(server_ref, "certId") if server_ref is not None else None,
        server_security_protocol=text_of(server_proto),
        server_security_version=attr(server_proto, "version") if server_proto is not None else None,
    )


def _doc_exchange(element: etree._Element) -> DocExchange:
    exchange_id = attr(element, "docExchangeId") or ""
    return DocExchange(
        doc_exchange_id=exchange_id,
        sender=_binding_side(child(element, "ebXMLSenderBinding"), "Sender", exchange_id),
        receiver=_binding_side(child(element, "ebXMLReceiverBinding"), "Receiver", exchange_id),
    )


def _binding_side(element: etree._Element | None, side: str, exchange_id: str) -> BindingSide | None:
    if element is None:
        return None
    where = f"DocExchange {exchange_id!r} ebXML{side}Binding"
    rm_el = child(element, "ReliableMessaging")
    reliable = None
    if rm_el is not None:
        retries_text = text_of(child(rm_el, "Retries"))
        try:
            retries = int(retries_text) if retries_text is not None else None
        except ValueError:
            raise CpaInvalidError(f"{where}: Retries {retries_text!r} is not a whole number") from None
        reliable = ReliableMessaging(
            retries=retries,
            retry_interval=_duration(child(rm_el, "RetryInterval"), f"{where} RetryInterval"),
            message_order=text_of(child(rm_el, "MessageOrderSemantics")) or "NotGuaranteed",
        )
    nr_el = child(element, f"{side}NonRepudiation")
    non_repudiation = None
    if nr_el is not None:
        signing_ref = child(nr_el, "SigningCertificateRef")
        details_ref = child(nr_el, "SigningSecurityDetailsRef")
        non_repudiation = NonRepudiation(
            protocol=text_of(child(nr_el, "NonRepudiationProtocol")) or "",
            hash_function=text_of(child(nr_el, "HashFunction")) or "",
            signature_algorithm=text_of(child(nr_el, "SignatureAlgorithm")) or "",
            signing_cert_id=attr(signing_ref, "certId") if signing_ref is not None else None,
            security_details_id=attr(details_ref, "securityId") if details_ref is not None else None,
        )
    de_el = child(element, f"{side}DigitalEnvelope")
    envelope = None
    if de_el is not None:
        protocol_el = child(de_el, "DigitalEnvelopeProtocol")
        algorithm_el = child(de_el, "EncryptionAlgorithm")
        enc_ref = child(de_el, "EncryptionCertificateRef")
        details_ref = child(de_el, "EncryptionSecurityDetailsRef")
        strength = attr(algorithm_el, "minimumStrength") if algorithm_el is not None else None
        envelope = DigitalEnvelope(
            protocol=text_of(protocol_el) or "",
            protocol_version=attr(protocol_el, "version") if protocol_el is not None else None,
            encryption_algorithm=text_of(algorithm_el) or "",
            encryption_cert_id=attr(enc_ref, "certId") if enc_ref is not None else None,
            security_details_id=attr(details_ref, "securityId") if details_ref is not None else None,
            key_size=int(strength) if strength and strength.strip().isdigit() else None,
        )
    return BindingSide(
        version=attr(element, "version") or "",
        reliable_messaging=reliable,
        persist_duration=_duration(child(element, "PersistDuration"), f"{where} PersistDuration"),
        non_repudiation=non_repudiation,
        digital_envelope=envelope,
    )
