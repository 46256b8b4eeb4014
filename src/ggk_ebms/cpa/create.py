"""Write a Digikoppeling CPA from what a productbeheerder fills in on the GGk portal.

The portal's CPA request ("CPA Beheer") asks each side for a profile name, OIN, start and end
date, connection type (Diginetwerk or Internet), endpoint URL and the server and client
certificate as PEM (GGk handleiding: CPA Beheer). ``create_agreement`` turns those fields for both
parties into a complete CPPA 2.0 agreement for one Digikoppeling profile, with the Best Practice
values (BP ch. 3): PartyId type urn:osb:oin, Service type urn:osb:services, Retries 8,
RetryInterval PT3H, PersistDuration P1D, MessageOrderSemantics NotGuaranteed, ackSignatureRequested
never, actor toPartyMSH, and the BEV5 algorithms (rsa-sha256/sha256, aes256-gcm).

Default exchange (docs/cpa.md "Services and actions"): one Service ``ggk:berichtenverkeer:1.0``
with one Action per StUF-GGk envelope root (``envelopHeenbericht-ggk_Di01``,
``envelopRetourbericht-ggk_Du01``, ``Fo01Bericht``), each sendable and receivable by both
parties. The GGk routes on the envelope, not on the payload, so new berichttypes need no new CPA.

Signals travel on each party's default MSH channel: the business channel for best effort, and for
reliable profiles a best-effort twin with the same signing, so acknowledgements are never
themselves acknowledged (CPPA 2.0, BP ch. 3: one MSH channel, the most secure profile).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from cryptography import x509
from lxml import etree

from ggk_ebms import ns
from ggk_ebms.clock import utc
from ggk_ebms.cpa import algorithms
from ggk_ebms.cpa.certs import choose_leaf, der_of
from ggk_ebms.cpa.duration import format_duration
from ggk_ebms.cpa.model import Profile
from ggk_ebms.errors import CpaInvalidError

DEFAULT_SERVICE: Final = "ggk:berichtenverkeer:1.0"
DEFAULT_ACTIONS: Final = ("envelopHeenbericht-ggk_Di01", "envelopRetourbericht-ggk_Du01", "Fo01Bericht")
DEFAULT_RETRIES: Final = 8
DEFAULT_RETRY_INTERVAL: Final = timedelta(hours=3)
DEFAULT_PERSIST_DURATION: Final = timedelta(days=1)
DEFAULT_TIME_TO_PERFORM: Final = timedelta(days=2)
PROCESS_NAME: Final = "GGk berichtenverkeer"

Connection = Literal["diginetwerk", "internet"]
_OIN: Final = re.compile(r"^\d{20}(?:_(?:O|T|A|OT|OA|TA|OTA))?$")
_CPA_ID_ODD: Final = re.compile(r"[^A-Za-z0-9-]+")
_NAME_ODD: Final = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class PartyRequest:
    """One side's fields of the GGk portal CPA request."""

    name: str  # profielnaam, e.g. "Gemeente Voorbeeld iWmo"
    oin: str
    endpoint: str  # https URL of this party's ebMS endpoint
    server_cert_pem: bytes
    client_cert_pem: bytes
    role: str
    connection: Connection = "diginetwerk"
    signing_cert_pem: bytes | None = None  # default: the client certificate
    encryption_cert_pem: bytes | None = None  # default: the client certificate


@dataclass(frozen=True)
class AgreementRequest:
    """Both parties plus what they agree on; defaults are the Best Practice values."""

    party: PartyRequest
    partner: PartyRequest
    start: datetime
    end: datetime
    profile: Profile = Profile.OSB_RM
    service: str = DEFAULT_SERVICE
    service_type: str = ns.SERVICE_TYPE_OSB
    actions: tuple[str, ...] = DEFAULT_ACTIONS
    retries: int = DEFAULT_RETRIES
    retry_interval: timedelta = DEFAULT_RETRY_INTERVAL
    persist_duration: timedelta = DEFAULT_PERSIST_DURATION
    time_to_perform: timedelta = DEFAULT_TIME_TO_PERFORM
    sync_reply: bool = False  # mshSignalsOnly; osb-rm variants only (EB015)
    cpa_id: str | None = None
    cpa_version: str = "1"
    comments: tuple[str, ...] = field(default=())


def default_cpa_id(service: str, party_oin: str, partner_oin: str, version: str) -> str:
    """BP3: ``[ServiceID]_[PartyId-A]_[PartyId-B]_[versie]``, no dots or odd characters."""
    parts = [_CPA_ID_ODD.sub("-", part).strip("-") for part in (service, party_oin, partner_oin, version)]
    return "_".join(parts)


def create_agreement(request: AgreementRequest) -> bytes:
    """The CPA as UTF-8 XML bytes. Raises ``CpaInvalidError`` when a field cannot be used."""
    _check_request(request)
    cpa_id = request.cpa_id or default_cpa_id(
        request.service, request.party.oin, request.partner.oin, request.cpa_version
    )
    if _CPA_ID_ODD.sub("", cpa_id.replace("_", "")) != cpa_id.replace("_", ""):
        raise CpaInvalidError(
            f"CPAId {cpa_id!r} has characters other than letters, digits, '-' and '_' (BP3)"
        )
    builder = _Builder(request)
    root = builder.build(cpa_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _check_request(request: AgreementRequest) -> None:
    if utc(request.start) >= utc(request.end):
        raise CpaInvalidError("the end date must lie after the start date")
    if request.sync_reply and not request.profile.reliable:
        raise CpaInvalidError("SyncReply (mshSignalsOnly) is only allowed for osb-rm profiles (EB015)")
    if request.retries < 0:
        raise CpaInvalidError("retries must be 0 or more")
    if request.retry_interval <= timedelta(0) or request.persist_duration <= timedelta(0):
        raise CpaInvalidError("retry interval and persist duration must be positive")
    if not request.actions:
        raise CpaInvalidError("at least one action is needed")
    for action in request.actions:
        if not action or any(ch.isspace() for ch in action):
            raise CpaInvalidError(f"action {action!r} must be non-empty without whitespace (KVS5)")
    if not request.service or any(ch.isspace() for ch in request.service):
        raise CpaInvalidError(f"service {request.service!r} must be non-empty without whitespace (KVS5)")
    for side in (request.party, request.partner):
        if not _OIN.fullmatch(side.oin):
            raise CpaInvalidError(f"OIN {side.oin!r} of {side.name!r} is not 20 digits (IDA6)")
        if not side.endpoint.lower().startswith("https://"):
            raise CpaInvalidError(f"endpoint {side.endpoint!r} of {side.name!r} must be an https URL (KVS4)")
        if not side.name.strip() or not side.role.strip():
            raise CpaInvalidError("each party needs a name and a role")
    if request.party.oin == request.partner.oin:
        raise CpaInvalidError("the two parties have the same OIN")
    if request.party.role == request.partner.role:
        raise CpaInvalidError("the two parties need different role names (EB007)")


def certificates_from_pem(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate in a PEM text, leaf first; ``CpaInvalidError`` when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise CpaInvalidError(f"{what} is not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    leaf = choose_leaf(certs)
    return [leaf, *[c for c in certs if c is not leaf]] if leaf is not None else certs


class _Builder:
    """Builds the element tree; ``A`` is the requesting party, ``B`` the partner."""

    def __init__(self, request: AgreementRequest) -> None:
        self.request = request
        self.profile = request.profile

    def el(
        self, parent: etree._Element | None, local: str, text: str | None = None, **attrs: str
    ) -> etree._Element:
        tag = f"{{{ns.CPPA}}}{local}"
        element = etree.Element(tag, nsmap=_NSMAP) if parent is None else etree.SubElement(parent, tag)
        for name, value in attrs.items():
            key = f"{{{ns.XLINK}}}{name[6:]}" if name.startswith("xlink_") else f"{{{ns.CPPA}}}{name}"
            element.set(key, value)
        if text is not None:
            element.text = text
        return element

    def build(self, cpa_id: str) -> etree._Element:
        r = self.request
        root = self.el(None, "CollaborationProtocolAgreement", cpaid=cpa_id, version=r.cpa_version)
        self.el(root, "Status", value="agreed")
        self.el(root, "Start", _xsd_datetime(r.start))
        self.el(root, "End", _xsd_datetime(r.end))
        self._party(root, "A", r.party, "B")
        self._party(root, "B", r.partner, "A")
        header = self.el(root, "SimplePart", id="SoapEnvelopePart", mimetype="text/xml")
        self.el(header, "NamespaceSupported", ns.EB, location=ns.EB, version="2.0")
        self.el(root, "SimplePart", id="StufEnvelopePart", mimetype="application/xml")
        self._packaging(root, "SignalPackage", ("SoapEnvelopePart",))
        self._packaging(root, "MessagePackage", ("SoapEnvelopePart", "StufEnvelopePart"))
        for side in (r.party, r.partner):
            self.el(
                root,
                "Comment",
                f"{side.name} ({side.oin}): connectietype {_connection_label(side.connection)}",
            )
        for comment in r.comments:
            self.el(root, "Comment", comment)
        for comment_el in root.iterfind(f"{{{ns.CPPA}}}Comment"):
            comment_el.set(f"{{{ns.XML}}}lang", "nl")
        return root

    def _packaging(self, root: etree._Element, package_id: str, parts: tuple[str, ...]) -> None:
        packaging = self.el(root, "Packaging", id=package_id)
        self.el(packaging, "ProcessingCapabilities", parse="true", generate="true")
        composite_list = self.el(packaging, "CompositeList")
        composite = self.el(
            composite_list,
            "Composite",
            id=f"{package_id}Composite",
            mimetype="multipart/related",
            mimeparameters="type=text/xml",
        )
        for part in parts:
            self.el(composite, "Constituent", idref=part)

    def _party(self, root: etree._Element, key: str, side: PartyRequest, other: str) -> None:
        r = self.request
        reliable = self.profile.reliable
        msh_channel = f"{key}_SignalChannel" if reliable else f"{key}_MessageChannel"
        party = self.el(
            root,
            "PartyInfo",
            partyName=side.name,
            defaultMshChannelId=msh_channel,
            defaultMshPackageId="SignalPackage",
        )
        self.el(party, "PartyId", side.oin, type=ns.PARTY_TYPE_OIN)
        self.el(party, "PartyRef", xlink_href=f"{ns.PARTY_TYPE_OIN}:{side.oin}", xlink_type="simple")
        role = self.el(party, "CollaborationRole")
        self.el(
            role,
            "ProcessSpecification",
            name=PROCESS_NAME,
            version="1.0",
            xlink_href=f"urn:ggk-ebms:process:{_name_id(r.service)}",
            xlink_type="simple",
        )
        self.el(
            role,
            "Role",
            name=side.role,
            xlink_href=f"urn:ggk-ebms:role:{_name_id(side.role)}",
            xlink_type="simple",
        )
        binding = self.el(role, "ServiceBinding")
        self.el(binding, "Service", r.service, type=r.service_type)
        for direction, peer_direction in (("CanSend", "R"), ("CanReceive", "S")):
            own_direction = "S" if direction == "CanSend" else "R"
            for action in r.actions:
                can = self.el(binding, direction)
                this = self.el(
                    can,
                    "ThisPartyActionBinding",
                    id=f"{key}_{own_direction}_{_name_id(action)}",
                    action=action,
                    packageId="MessagePackage",
                )
                self._btc(this)
                self.el(this, "ChannelId", f"{key}_MessageChannel")
                self.el(can, "OtherPartyActionBinding", f"{other}_{peer_direction}_{_name_id(action)}")
        certs = self._certificates(party, key, side)
        self._channel(party, f"{key}_MessageChannel", f"{key}_MessageExchange", key, reliable, r.sync_reply)
        if reliable:
            self._channel(party, f"{key}_SignalChannel", f"{key}_SignalExchange", key, False, r.sync_reply)
        transport = self.el(party, "Transport", transportId=f"{key}_Transport")
        sender = self.el(transport, "TransportSender")
        self.el(sender, "TransportProtocol", "HTTP", version="1.1")
        client_security = self.el(sender, "TransportClientSecurity")
        self.el(client_security, "TransportSecurityProtocol", "TLS", version="1.2")
        self.el(client_security, "ClientCertificateRef", certId=certs["client"])
        receiver = self.el(transport, "TransportReceiver")
        self.el(receiver, "TransportProtocol", "HTTP", version="1.1")
        self.el(receiver, "Endpoint", uri=side.endpoint, type="allPurpose")
        server_security = self.el(receiver, "TransportServerSecurity")
        self.el(server_security, "TransportSecurityProtocol", "TLS", version="1.2")
        self.el(server_security, "ServerCertificateRef", certId=certs["server"])
        self._doc_exchange(
            party, f"{key}_MessageExchange", certs, reliable, self.profile.signed, self.profile.encrypted
        )
        if reliable:
            self._doc_exchange(party, f"{key}_SignalExchange", certs, False, self.profile.signed, False)

    def _btc(self, parent: etree._Element) -> None:
        """BusinessTransactionCharacteristics per profile (Digikoppeling KVS ch. 3, BP ch. 3 last row)."""
        signed, encrypted = self.profile.signed, self.profile.encrypted
        self.el(
            parent,
            "BusinessTransactionCharacteristics",
            isNonRepudiationRequired=_bool(signed),
            isNonRepudiationReceiptRequired="false",
            isConfidential="transient-and-persistent" if encrypted else "transient",
            isAuthenticated="transient-and-persistent" if signed else "transient",
            isTamperProof="transient-and-persistent" if signed else "transient",
            isAuthorizationRequired="true",
            isIntelligibleCheckRequired="false",
            timeToPerform=format_duration(self.request.time_to_perform),
        )

    def _certificates(self, party: etree._Element, key: str, side: PartyRequest) -> dict[str, str]:
        """Certificate elements; the same certificate is written once and referenced by each use."""
        uses = {
            "client": (side.client_cert_pem, "ClientCert"),
            "server": (side.server_cert_pem, "ServerCert"),
            "signing": (side.signing_cert_pem or side.client_cert_pem, "SigningCert"),
            "encryption": (side.encryption_cert_pem or side.client_cert_pem, "EncryptionCert"),
        }
        if not self.profile.signed:
            del uses["signing"]
        if not self.profile.encrypted:
            del uses["encryption"]
        written: dict[bytes, str] = {}
        ids: dict[str, str] = {}
        for use, (pem, suffix) in uses.items():
            chain = certificates_from_pem(pem, f"{side.name} {use} certificate")
            der = der_of(chain[0])
            if der not in written:
                cert_id = f"{key}_{suffix}"
                cert_el = self.el(party, "Certificate", certId=cert_id)
                key_info = etree.SubElement(cert_el, f"{{{ns.DS}}}KeyInfo")
                x509_data = etree.SubElement(key_info, f"{{{ns.DS}}}X509Data")
                for cert in chain:
                    etree.SubElement(x509_data, f"{{{ns.DS}}}X509Certificate").text = _base64(der_of(cert))
                written[der] = cert_id
            ids[use] = written[der]
        return ids

    def _channel(
        self, party: etree._Element, channel_id: str, exchange_id: str, key: str, reliable: bool, sync: bool
    ) -> None:
        channel = self.el(
            party,
            "DeliveryChannel",
            channelId=channel_id,
            transportId=f"{key}_Transport",
            docExchangeId=exchange_id,
        )
        flag = "always" if reliable else "never"
        self.el(
            channel,
            "MessagingCharacteristics",
            syncReplyMode="mshSignalsOnly" if sync else "none",
            ackRequested=flag,
            ackSignatureRequested="never",
            duplicateElimination=flag,
            actor=ns.ACTOR_TO_PARTY_MSH,
        )

    def _doc_exchange(
        self,
        party: etree._Element,
        exchange_id: str,
        certs: dict[str, str],
        reliable: bool,
        signed: bool,
        encrypted: bool,
    ) -> None:
        exchange = self.el(party, "DocExchange", docExchangeId=exchange_id)
        for side in ("Sender", "Receiver"):
            binding = self.el(exchange, f"ebXML{side}Binding", version="2.0")
            if reliable:
                rm = self.el(binding, "ReliableMessaging")
                self.el(rm, "Retries", str(self.request.retries))
                self.el(rm, "RetryInterval", format_duration(self.request.retry_interval))
                self.el(rm, "MessageOrderSemantics", "NotGuaranteed")
                self.el(binding, "PersistDuration", format_duration(self.request.persist_duration))
            if signed:
                nr = self.el(binding, f"{side}NonRepudiation")
                self.el(nr, "NonRepudiationProtocol", algorithms.XMLDSIG_PROTOCOL)
                self.el(nr, "HashFunction", algorithms.DEFAULT_DIGEST)
                self.el(nr, "SignatureAlgorithm", algorithms.DEFAULT_SIGNATURE)
                if side == "Sender":
                    self.el(nr, "SigningCertificateRef", certId=certs["signing"])
            if encrypted:
                de = self.el(binding, f"{side}DigitalEnvelope")
                self.el(de, "DigitalEnvelopeProtocol", algorithms.XMLENC_PROTOCOL, version="1.0")
                self.el(de, "EncryptionAlgorithm", algorithms.DEFAULT_CIPHER, minimumStrength="256")
                if side == "Receiver":
                    self.el(de, "EncryptionCertificateRef", certId=certs["encryption"])


_NSMAP: Final = {"cppa": ns.CPPA, "ds": ns.DS, "xlink": ns.XLINK}


def _xsd_datetime(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _name_id(text: str) -> str:
    """``text`` made safe for an xs:ID/NCName (letters, digits, '-', '_'; not starting with a digit)."""
    cleaned = _NAME_ODD.sub("-", text).strip("-") or "x"
    return cleaned if not cleaned[0].isdigit() else f"n{cleaned}"


def _base64(der: bytes) -> str:
    text = base64.b64encode(der).decode("ascii")
    return "\n" + "\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n"


def _connection_label(connection: Connection) -> str:
    return {"diginetwerk": "Diginetwerk", "internet": "Internet"}[connection]
