"""Validate a CPA before it is stored or used: safety, schema, and the Digikoppeling rules.

The reference adapter refuses an import only for an XSD error, ``proposed``, Start not before End,
or expiry, and merely logs the rest (CPPA 2.0, docs/cpa.md). We refuse more and explain every finding, so the
productbeheerder learns at import time what would otherwise fail at the first message: each
finding names its rule (the table in docs/cpa.md), the element, and what to do.

Pure: the caller passes the bytes, the current time and the schema; nothing here reads a file
or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from lxml import etree

from ggk_ebms import ns
from ggk_ebms.cpa import algorithms
from ggk_ebms.cpa.certs import decode_key_info, oin_of
from ggk_ebms.cpa.duration import parse_duration
from ggk_ebms.cpa.findings import Finding, FindingSeverity, Validation, location_of
from ggk_ebms.cpa.model import Agreement, PartyInfo, PerMessage, Profile, SyncReplyMode
from ggk_ebms.cpa.parse import DEFAULT_MAX_CPA_BYTES, agreement_from_element, attr, child, children, text_of
from ggk_ebms.cpa.profile import derive_profile
from ggk_ebms.cpa.schema import load_schema, schema_problems
from ggk_ebms.errors import CpaInvalidError, UnsafeXmlError, XmlError, XmlTooLargeError
from ggk_ebms.xml import parse

__all__ = ["Finding", "Validation", "validate_cpa"]

# IDA6/OIN6: 20 characters; EB004: environment suffixes _O, _T, _A and combinations.
_OIN = re.compile(r"^(?P<oin>\d{20})(?:_(?P<suffix>O|T|A|OT|OA|TA|OTA))?$")
_TEST_OIN_PREFIX: Final = "00000099"
_MAX_SCHEMA_FINDINGS: Final = 50
_MAX_RETRIES: Final = 100
_MIN_RETRY_INTERVAL: Final = timedelta(minutes=1)
_MAX_RETRY_INTERVAL: Final = timedelta(days=7)
_LONG_AGREEMENT: Final = timedelta(days=3653)  # EB010: more than ten years is unusual


def _q(local: str) -> str:
    return f"{{{ns.CPPA}}}{local}"


class _Report:
    """Collects findings; one method so every finding has all four parts."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, severity: FindingSeverity, rule: str, location: str, message: str, advice: str) -> None:
        self.findings.append(Finding(severity, rule, location, message, advice))

    def error(self, rule: str, location: str, message: str, advice: str) -> None:
        self.add("error", rule, location, message, advice)

    def warning(self, rule: str, location: str, message: str, advice: str) -> None:
        self.add("warning", rule, location, message, advice)


def validate_cpa(
    data: bytes,
    *,
    now: datetime,
    allow_sha1: bool = False,
    schema: etree.XMLSchema | None = None,
    max_bytes: int = DEFAULT_MAX_CPA_BYTES,
) -> Validation:
    """Every finding about the CPA ``data``; ``agreement`` is set when the CPA could be read.

    ``schema`` defaults to our built-in CPPA 2.0 schema (``schema.load_schema()``); pass the
    official one to validate against that. ``allow_sha1`` turns SHA-1 from an error into a
    warning; it is reported either way (SIGN001).
    """
    report = _Report()
    try:
        root = parse(data, max_bytes=max_bytes, what="CPA")
    except XmlTooLargeError as exc:
        report.error(
            "CPA-SIZE", "/", str(exc), "Check that this is the right file; raise max_cpa_bytes only if so."
        )
        return Validation(report.findings)
    except UnsafeXmlError as exc:
        report.error(
            "CPA-XML-UNSAFE", "/", str(exc), "Remove the DOCTYPE and entity declarations; a CPA needs none."
        )
        return Validation(report.findings)
    except XmlError as exc:
        report.error("CPA-XML", "/", str(exc), "Supply the CPA XML file itself, as issued.")
        return Validation(report.findings)

    if root.tag != _q("CollaborationProtocolAgreement"):
        report.error(
            "CPA-XSD",
            location_of(root),
            f"the root element is {etree.QName(root).localname!r} "
            f"in {etree.QName(root).namespace or 'no namespace'}",
            f"A CPA's root is CollaborationProtocolAgreement in {ns.CPPA}.",
        )
        return Validation(report.findings)

    for n, problem in enumerate(schema_problems(root, schema or load_schema())):
        if n == _MAX_SCHEMA_FINDINGS:
            report.error(
                "CPA-XSD", "/", "more schema errors follow; fix these first", "Fix the errors above."
            )
            break
        report.error(
            "CPA-XSD",
            problem.location,
            f"line {problem.line}: {problem.message}",
            "Correct the element so the CPA is valid against the CPPA 2.0 schema.",
        )

    try:
        agreement = agreement_from_element(root, raw=data)
    except CpaInvalidError as exc:
        report.error("CPA-PARSE", "/", str(exc), "Correct the value; the CPA cannot be used as it is.")
        return Validation(report.findings)

    _check_agreement(report, root, agreement, now)
    party_elements = list(children(root, "PartyInfo"))
    if len(agreement.parties) != 2:
        report.error(
            "CPA-PARTIES",
            location_of(root),
            f"the CPA has {len(agreement.parties)} PartyInfo elements",
            "A CPA is an agreement between exactly two parties; ask for a corrected CPA.",
        )
    refs = _References(root)
    for index, (element, party) in enumerate(zip(party_elements, agreement.parties, strict=True)):
        other = party_elements[1 - index] if len(party_elements) == 2 else None
        _check_party_ids(report, element)
        _check_certificates(report, element, party, agreement, now)
        refs.check_party(report, element, other)
        _check_transports(report, element)
        _check_channels(report, element, party)
        _check_doc_exchanges(report, element, allow_sha1)
    if len(agreement.parties) == 2 and refs.complete:
        _check_profiles(report, root, agreement)
    return Validation(report.findings, agreement)


# --- agreement-level rules ------------------------------------------------------------------------


def _check_agreement(report: _Report, root: etree._Element, agreement: Agreement, now: datetime) -> None:
    status_el = child(root, "Status")
    status_at = (
        location_of(status_el, "value") if status_el is not None else "/CollaborationProtocolAgreement"
    )
    if agreement.status == "proposed":
        report.error(
            "CPA-STATUS",
            status_at,
            "Status is 'proposed': the parties have not agreed to it yet",
            "Import the agreed CPA (Status 'agreed' or 'signed') from the CPA register or RINIS.",
        )
    elif agreement.status not in ("agreed", "signed"):
        report.error(
            "CPA-STATUS",
            status_at,
            f"Status {agreement.status!r} is unknown",
            "Status must be 'agreed' or 'signed'.",
        )
    start_at = "/CollaborationProtocolAgreement/Start[1]"
    end_at = "/CollaborationProtocolAgreement/End[1]"
    if agreement.start >= agreement.end:
        report.error(
            "CPA-VALIDITY",
            end_at,
            f"End {agreement.end.isoformat()} is not after Start {agreement.start.isoformat()}",
            "Ask for a CPA whose End lies after its Start.",
        )
    elif agreement.end - agreement.start > _LONG_AGREEMENT:
        report.warning(
            "CPA-VALIDITY",
            end_at,
            "the CPA is valid for more than ten years",
            "EB010: validity follows the certificates; agree a shorter period.",
        )
    if agreement.end <= now:
        report.error(
            "CPA-EXPIRED",
            end_at,
            f"the CPA expired at {agreement.end.isoformat()}",
            "Request a new CPA (GGk portal, CPA Beheer) and import that one.",
        )
    if agreement.start > now:
        report.warning(
            "CPA-VALIDITY",
            start_at,
            f"the CPA is not valid before {agreement.start.isoformat()}",
            "Messages are refused until Start; import early only on purpose.",
        )


def _check_party_ids(report: _Report, party_el: etree._Element) -> None:
    for pid_el in children(party_el, "PartyId"):
        value = (pid_el.text or "").strip()
        pid_type = attr(pid_el, "type")
        where = location_of(pid_el)
        match = _OIN.fullmatch(value)
        if pid_type is None:
            report.error(
                "CPA-PARTYID-TYPE",
                where,
                f"PartyId {value!r} has no type",
                f"KVS5: give the PartyId type {ns.PARTY_TYPE_OIN!r} for an OIN.",
            )
        elif pid_type != ns.PARTY_TYPE_OIN:
            # KVS5/EB014: other identifier schemes may use another type; an OIN may not.
            if match:
                report.error(
                    "CPA-PARTYID-TYPE",
                    where,
                    f"PartyId {value!r} is an OIN but has type {pid_type!r}",
                    f"KVS5: an OIN PartyId must have type {ns.PARTY_TYPE_OIN!r}.",
                )
            else:
                report.warning(
                    "CPA-PARTYID-TYPE",
                    where,
                    f"PartyId has type {pid_type!r}, not {ns.PARTY_TYPE_OIN!r}",
                    "EB014: only for identifiers that are not OINs; check with the partner.",
                )
            continue
        if not match:
            report.error(
                "CPA-OIN",
                where,
                f"PartyId {value!r} is not a 20-digit OIN",
                "IDA6/OIN6: an OIN has 20 digits, optionally followed by _O, _T, _A or _OTA.",
            )
            continue
        if match.group("suffix"):
            report.warning(
                "CPA-OIN",
                where,
                f"PartyId carries the environment suffix _{match.group('suffix')}",
                "EB004: suffixes mark non-production environments; never use them in production.",
            )
        if match.group("oin").startswith(_TEST_OIN_PREFIX):
            report.warning(
                "CPA-OIN",
                where,
                f"{match.group('oin')} is a test OIN (prefix {_TEST_OIN_PREFIX})",
                "OIN6: fine for test and development, never for production.",
            )


def _check_certificates(
    report: _Report, party_el: etree._Element, party: PartyInfo, agreement: Agreement, now: datetime
) -> None:
    tls_client_ids = {
        attr(ref, "certId")
        for ref in party_el.iterfind(f".//{_q('ClientCertificateRef')}")
        if attr(ref, "certId")
    }
    party_oins = {
        m.group("oin")
        for pid in party.party_ids
        if pid.type == ns.PARTY_TYPE_OIN and (m := _OIN.fullmatch(pid.value))
    }
    for cert_el in children(party_el, "Certificate"):
        cert_id = attr(cert_el, "certId") or ""
        where = location_of(cert_el)
        decoded = decode_key_info(cert_el.find(f"{{{ns.DS}}}KeyInfo"))
        for problem in decoded.problems:
            report.error(
                "CPA-CERT",
                where,
                f"Certificate {cert_id!r}: {problem}",
                "Put the PEM body (base64 DER) of the certificate in ds:X509Data/ds:X509Certificate.",
            )
        leaf = decoded.leaf
        if leaf is None:
            continue
        not_after = leaf.not_valid_after_utc
        if not_after <= now:
            report.error(
                "CPA-CERT-EXPIRED",
                where,
                f"Certificate {cert_id!r} expired at {not_after.isoformat()}",
                "Request a CPA with the renewed certificate.",
            )
        elif not_after < agreement.end:
            report.warning(
                "CPA-CERT-EXPIRED",
                where,
                f"Certificate {cert_id!r} expires at {not_after.isoformat()}, before the CPA ends",
                "EB010: plan a new CPA before the certificate expires.",
            )
        if leaf.not_valid_before_utc > now:
            report.warning(
                "CPA-CERT",
                where,
                f"Certificate {cert_id!r} is not valid before {leaf.not_valid_before_utc.isoformat()}",
                "Connections using it fail until then.",
            )
        if cert_id in tls_client_ids and party_oins:
            oin = oin_of(leaf)
            if oin is None:
                report.warning(
                    "CPA-CERT",
                    where,
                    f"TLS client certificate {cert_id!r} has no OIN in subject serialNumber",
                    "PKI001/BP3: a PKIoverheid certificate carries the OIN of the party it authenticates.",
                )
            elif oin not in party_oins:
                report.warning(
                    "CPA-CERT",
                    where,
                    f"TLS client certificate {cert_id!r} carries OIN {oin}, not the party's PartyId",
                    "BP3/EB005: the client certificate's OIN should equal the PartyId (or act for it).",
                )


# --- references ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RefKind:
    """One kind of id reference: where it stands, what it must name, and how bad a miss is."""

    what: str
    target: str  # the element whose id attribute it names, inside a PartyInfo
    target_attr: str
    find: Callable[[etree._Element], Iterator[tuple[etree._Element, str | None, str]]]
    other_party_ok: bool = False


def _texts(path: str) -> Callable[[etree._Element], Iterator[tuple[etree._Element, str | None, str]]]:
    def find(party_el: etree._Element) -> Iterator[tuple[etree._Element, str | None, str]]:
        for el in party_el.iterfind(path):
            yield el, None, text_of(el) or ""

    return find


def _attrs(
    path: str, name: str
) -> Callable[[etree._Element], Iterator[tuple[etree._Element, str | None, str]]]:
    def find(party_el: etree._Element) -> Iterator[tuple[etree._Element, str | None, str]]:
        for el in party_el.iterfind(path):
            yield el, name, attr(el, name) or ""

    return find


_CERT_REFS = (
    "ClientCertificateRef",
    "ServerCertificateRef",
    "SigningCertificateRef",
    "EncryptionCertificateRef",
)
_SECURITY_REFS = (
    "ServerSecurityDetailsRef",
    "ClientSecurityDetailsRef",
    "SigningSecurityDetailsRef",
    "EncryptionSecurityDetailsRef",
    "ApplicationSecurityDetailsRef",
)

_REF_KINDS: Final = (
    _RefKind("ChannelId", "DeliveryChannel", "channelId",
             _texts(f".//{_q('ThisPartyActionBinding')}/{_q('ChannelId')}")),
    _RefKind("OverrideMshActionBinding channelId", "DeliveryChannel", "channelId",
             _attrs(_q("OverrideMshActionBinding"), "channelId")),
    _RefKind("transportId", "Transport", "transportId", _attrs(_q("DeliveryChannel"), "transportId")),
    _RefKind("docExchangeId", "DocExchange", "docExchangeId", _attrs(_q("DeliveryChannel"), "docExchangeId")),
    *(_RefKind(name, "Certificate", "certId", _attrs(f".//{_q(name)}", "certId")) for name in _CERT_REFS),
    _RefKind("AnchorCertificateRef", "Certificate", "certId",
             _attrs(f".//{_q('AnchorCertificateRef')}", "certId"),
             other_party_ok=True),
    _RefKind("ApplicationCertificateRef", "Certificate", "certId",
             _attrs(f".//{_q('ApplicationCertificateRef')}", "certId"), other_party_ok=True),
    *(_RefKind(name, "SecurityDetails", "securityId", _attrs(f".//{_q(name)}", "securityId"),
               other_party_ok=True)
      for name in _SECURITY_REFS),
)  # fmt: skip


class _References:
    """Checks that every id reference names something (CPPA 2.0 schema; CPA-REF)."""

    def __init__(self, root: etree._Element) -> None:
        self.packages = {attr(el, "id") for el in children(root, "Packaging")}
        self.complete = True

    def check_party(self, report: _Report, party_el: etree._Element, other_el: etree._Element | None) -> None:
        for kind in _REF_KINDS:
            own = _ids(party_el, kind.target, kind.target_attr)
            theirs = _ids(other_el, kind.target, kind.target_attr) if other_el is not None else set()
            for el, attribute, value in kind.find(party_el):
                if value in own:
                    continue
                if value in theirs and kind.other_party_ok:
                    continue
                self.complete = False
                where = location_of(el, attribute)
                if value in theirs:
                    report.error(
                        "CPA-REF",
                        where,
                        f"{kind.what} {value!r} names a {kind.target} of the other party",
                        f"Each party's references must name its own {kind.target}; correct the CPA.",
                    )
                else:
                    report.error(
                        "CPA-REF",
                        where,
                        f"{kind.what} {value!r} names no {kind.target}",
                        f"Add the {kind.target} or correct the reference; the CPA cannot be used as it is.",
                    )
        self._check_other_party_bindings(report, party_el, other_el)
        self._check_packages(report, party_el)
        self._check_msh_channel(report, party_el)

    def _check_other_party_bindings(
        self, report: _Report, party_el: etree._Element, other_el: etree._Element | None
    ) -> None:
        theirs = _ids(other_el, "ThisPartyActionBinding", "id", deep=True) if other_el is not None else set()
        for el in party_el.iterfind(f".//{_q('OtherPartyActionBinding')}"):
            value = text_of(el) or ""
            if value not in theirs:
                self.complete = False
                report.error(
                    "CPA-REF",
                    location_of(el),
                    f"OtherPartyActionBinding {value!r} names no ThisPartyActionBinding of the other party",
                    "Point it at the counterpart's binding for the same service and action.",
                )

    def _check_packages(self, report: _Report, party_el: etree._Element) -> None:
        refs = [(party_el, "defaultMshPackageId")] + [
            (el, "packageId") for el in party_el.iterfind(f".//{_q('ThisPartyActionBinding')}")
        ]
        for el, name in refs:
            value = attr(el, name)
            if value is not None and value not in self.packages:
                report.error(
                    "CPA-REF",
                    location_of(el, name),
                    f"{name} {value!r} names no Packaging",
                    "Add the Packaging element or correct the reference.",
                )

    def _check_msh_channel(self, report: _Report, party_el: etree._Element) -> None:
        value = attr(party_el, "defaultMshChannelId") or ""
        if value not in _ids(party_el, "DeliveryChannel", "channelId"):
            self.complete = False
            report.error(
                "CPA-MSH-CHANNEL",
                location_of(party_el, "defaultMshChannelId"),
                f"defaultMshChannelId {value!r} names no DeliveryChannel of this party",
                "Acknowledgments and errors travel on this channel; point it at an existing one.",
            )


def _ids(party_el: etree._Element | None, local: str, id_attr: str, *, deep: bool = False) -> set[str]:
    if party_el is None:
        return set()
    path = f".//{_q(local)}" if deep else _q(local)
    return {value for el in party_el.iterfind(path) if (value := attr(el, id_attr))}


# --- transport -----------------------------------------------------------------------------------


def _check_transports(report: _Report, party_el: etree._Element) -> None:
    for transport_el in children(party_el, "Transport"):
        transport_id = attr(transport_el, "transportId")
        for endpoint_el in transport_el.iterfind(f"{_q('TransportReceiver')}/{_q('Endpoint')}"):
            uri = (attr(endpoint_el, "uri") or "").strip()
            scheme = urlsplit(uri).scheme.lower()
            where = location_of(endpoint_el, "uri")
            if scheme == "http":
                report.error(
                    "CPA-ENDPOINT-HTTPS",
                    where,
                    f"endpoint {uri} is plain http",
                    "KVS4/TLS001: Digikoppeling endpoints are https with mutual TLS; ask for https.",
                )
            elif scheme != "https" or not urlsplit(uri).hostname:
                report.error(
                    "CPA-ENDPOINT-HTTPS",
                    where,
                    f"endpoint {uri!r} is not an https URL",
                    "Give the endpoint as https://host[:port]/path.",
                )
        for protocol_el in transport_el.iterfind(f".//{_q('TransportSecurityProtocol')}"):
            name = (text_of(protocol_el) or "").upper()
            version = attr(protocol_el, "version")
            if name == "SSL":
                report.warning(
                    "CPA-TLS",
                    location_of(protocol_el),
                    f"transport security is labelled 'SSL {version or ''}'".rstrip(),
                    "TLS003/TLS004: we use TLS 1.2 or 1.3 whatever the label; label it 'TLS' in new CPAs.",
                )
            elif name != "TLS":
                report.warning(
                    "CPA-TLS",
                    location_of(protocol_el),
                    f"transport security protocol {name!r} is not TLS",
                    "Digikoppeling requires mutual TLS (TLS001/002).",
                )
        sender = child(transport_el, "TransportSender")
        if sender is not None and child(sender, "TransportClientSecurity", "ClientCertificateRef") is None:
            report.error(
                "CPA-TLS",
                location_of(sender),
                f"Transport {transport_id!r} names no TLS client certificate (ClientCertificateRef)",
                "KVS6/BP3: mutual TLS is mandatory; add the sender's client certificate.",
            )


# --- channels and document exchanges ----------------------------------------------------------------


def _check_channels(report: _Report, party_el: etree._Element, party: PartyInfo) -> None:
    # A best-effort channel that only carries signals (the MSH channel next to an osb-rm channel)
    # follows the sync mode of the business channel; only business messages are bound by KVS3.
    business = {channel_id for binding in party.bindings for channel_id in binding.channel_ids}
    for channel_el in children(party_el, "DeliveryChannel"):
        mc_el = child(channel_el, "MessagingCharacteristics")
        channel = party.channels.get(attr(channel_el, "channelId") or "")
        if mc_el is None or channel is None:
            continue
        mc = channel.characteristics
        mode = mc.sync_reply_mode
        if mode not in (SyncReplyMode.NONE, SyncReplyMode.MSH_SIGNALS_ONLY):
            report.error(
                "CPA-SYNCREPLY",
                location_of(mc_el, "syncReplyMode"),
                f"syncReplyMode {mode} is not allowed",
                "EB015/KVS5: use 'none' (or 'mshSignalsOnly' for osb-rm when both sides support it).",
            )
        elif (
            mode == SyncReplyMode.MSH_SIGNALS_ONLY
            and mc.ack_requested != PerMessage.ALWAYS
            and channel.channel_id in business
        ):
            report.error(
                "CPA-SYNCREPLY",
                location_of(mc_el, "syncReplyMode"),
                "syncReplyMode mshSignalsOnly on a best-effort channel",
                "KVS3/KVS5: best effort never uses SyncReply; use 'none'.",
            )
        elif mode == SyncReplyMode.MSH_SIGNALS_ONLY and channel.channel_id in business:
            report.warning(
                "CPA-SYNCREPLY",
                location_of(mc_el, "syncReplyMode"),
                "syncReplyMode mshSignalsOnly: acknowledgements come back on the HTTP response",
                "EB015: discouraged; only for high volumes when every MSH and intermediary supports it.",
            )
        if mc.actor == ns.ACTOR_NEXT_MSH:
            report.error(
                "CPA-ACTOR",
                location_of(mc_el, "actor"),
                "actor nextMSH: multi-hop is not part of Digikoppeling",
                f"KVS3/KVS5: use actor {ns.ACTOR_TO_PARTY_MSH}.",
            )


def _check_doc_exchanges(report: _Report, party_el: etree._Element, allow_sha1: bool) -> None:
    for exchange_el in children(party_el, "DocExchange"):
        for binding_el in exchange_el:
            if not isinstance(binding_el.tag, str):
                continue
            _check_reliability(report, binding_el)
            for el in binding_el.iterfind(f"*/{_q('HashFunction')}"):
                _check_algorithm(report, el, algorithms.DIGESTS, "digest", allow_sha1)
            for el in binding_el.iterfind(f"*/{_q('SignatureAlgorithm')}"):
                _check_algorithm(report, el, algorithms.SIGNATURES, "signature algorithm", allow_sha1)
            for el in binding_el.iterfind(f"*/{_q('EncryptionAlgorithm')}"):
                _check_algorithm(report, el, algorithms.CIPHERS, "encryption algorithm", allow_sha1)
            for el in binding_el.iterfind(f"*/{_q('NonRepudiationProtocol')}"):
                if (text_of(el) or "") != algorithms.XMLDSIG_PROTOCOL:
                    report.warning(
                        "CPA-ALGORITHM",
                        location_of(el),
                        f"non-repudiation protocol {text_of(el)!r} is not XML Signature",
                        f"SIGN001: use {algorithms.XMLDSIG_PROTOCOL}.",
                    )
            for el in binding_el.iterfind(f"*/{_q('DigitalEnvelopeProtocol')}"):
                if (text_of(el) or "") != algorithms.XMLENC_PROTOCOL:
                    report.warning(
                        "CPA-ALGORITHM",
                        location_of(el),
                        f"digital envelope protocol {text_of(el)!r} is not XMLENC",
                        "ENC002: use XML Encryption ('XMLENC').",
                    )


def _check_algorithm(
    report: _Report, el: etree._Element, table: dict[str, algorithms.Verdict], what: str, allow_sha1: bool
) -> None:
    uri = text_of(el) or ""
    verdict = algorithms.verdict(table, uri)
    where = location_of(el)
    if verdict == "sha1":
        report.add(
            "warning" if allow_sha1 else "error",
            "CPA-ALGORITHM",
            where,
            f"{what} {uri} uses SHA-1"
            + (" (accepted because allow_sha1 is on)" if allow_sha1 else ", which is forbidden"),
            "SIGN001/002: agree SHA-256 or better (xmlenc#sha256, xmldsig-more#rsa-sha256) with the partner.",
        )
    elif verdict == "weak":
        report.warning(
            "CPA-ALGORITHM",
            where,
            f"{what} {uri} is CBC mode",
            "ENC003: agree AES-GCM (xmlenc11#aes128-gcm or #aes256-gcm) in the next CPA.",
        )
    elif verdict == "forbidden":
        report.error(
            "CPA-ALGORITHM",
            where,
            f"{what} {uri!r} is not allowed",
            "Digikoppeling BEV ch. 5: use one of the listed SHA-2 digests, RSA/ECDSA-SHA-2 signatures"
            " or AES-GCM.",
        )


def _check_reliability(report: _Report, binding_el: etree._Element) -> None:
    rm_el = child(binding_el, "ReliableMessaging")
    if rm_el is None:
        return
    where = location_of(rm_el)
    retries_el = child(rm_el, "Retries")
    interval_el = child(rm_el, "RetryInterval")
    order_el = child(rm_el, "MessageOrderSemantics")
    if (text_of(order_el) or "") == "Guaranteed":
        report.error(
            "CPA-MESSAGE-ORDER",
            location_of(order_el) if order_el is not None else where,
            "MessageOrderSemantics Guaranteed is not supported",
            "KVS3/EB011: ordered delivery is strongly discouraged and unsupported here; agree NotGuaranteed.",
        )
    retries: int | None = None
    interval: timedelta | None = None
    if retries_el is None:
        report.warning(
            "CPA-RM-VALUES", where, "ReliableMessaging has no Retries", "EB008: agree Retries (BP default 8)."
        )
    else:
        try:
            retries = int(text_of(retries_el) or "")
        except ValueError:
            retries = None
        if retries is None or retries < 0:
            report.error(
                "CPA-RM-VALUES", location_of(retries_el), "Retries is not a whole number ≥ 0", "Use e.g. 8."
            )
        elif retries > _MAX_RETRIES:
            report.warning(
                "CPA-RM-VALUES",
                location_of(retries_el),
                f"Retries {retries} is unusually high",
                "EB008: agree a retry schedule with the partner (BP default 8 × PT3H).",
            )
    if interval_el is None:
        report.warning(
            "CPA-RM-VALUES",
            where,
            "ReliableMessaging has no RetryInterval",
            "EB008: agree RetryInterval (BP default PT3H).",
        )
    else:
        try:
            interval = parse_duration(text_of(interval_el) or "")
        except ValueError as exc:
            report.error(
                "CPA-RM-VALUES", location_of(interval_el), str(exc), "Use an xsd:duration such as PT3H."
            )
        if interval is not None and not _MIN_RETRY_INTERVAL <= interval <= _MAX_RETRY_INTERVAL:
            report.warning(
                "CPA-RM-VALUES",
                location_of(interval_el),
                f"RetryInterval {text_of(interval_el)} is outside one minute to seven days",
                "KVS5: transport retries must fit within one interval; BP default PT3H.",
            )
    persist_el = child(binding_el, "PersistDuration")
    if persist_el is None:
        report.warning(
            "CPA-RM-VALUES",
            location_of(binding_el),
            "reliable messaging without PersistDuration",
            "Agree PersistDuration (BP default P1D); we keep message ids at least that long.",
        )
    elif retries is not None and interval is not None:
        try:
            persist = parse_duration(text_of(persist_el) or "")
        except ValueError as exc:
            report.error(
                "CPA-RM-VALUES", location_of(persist_el), str(exc), "Use an xsd:duration such as P1D."
            )
            return
        if persist < interval * (retries + 1) / 2:
            report.warning(
                "CPA-RM-VALUES",
                location_of(persist_el),
                f"PersistDuration {text_of(persist_el)} is far shorter than the retry period "
                f"({retries + 1} × {text_of(interval_el)})",
                "KVS5: keep message ids at least (1 + Retries) × RetryInterval to catch all duplicates.",
            )


# --- profiles (per action, per channel, per CPA) -----------------------------------------------


def _check_profiles(report: _Report, root: etree._Element, agreement: Agreement) -> None:
    party_elements = list(children(root, "PartyInfo"))
    business_profiles: set[Profile] = set()
    for party_el, party in zip(party_elements, agreement.parties, strict=True):
        channel_els = {attr(el, "channelId"): el for el in children(party_el, "DeliveryChannel")}
        used: dict[str, Profile] = {}
        for binding in party.bindings:
            for channel_id in binding.channel_ids:
                channel = party.channels[channel_id]
                derivation = derive_profile(channel, party.doc_exchanges.get(channel.doc_exchange_id))
                if channel_id not in used:
                    for problem in derivation.problems:
                        report.error(
                            "CPA-PROFILE",
                            location_of(channel_els[channel_id]),
                            f"channel {channel_id!r}: {problem}",
                            "KVS2: every exchange follows one of the six profiles; correct the channel.",
                        )
                used[channel_id] = derivation.profile
                business_profiles.add(derivation.profile)
            if len(binding.channel_ids) > 1:
                report.warning(
                    "CPA-PROFILE",
                    f"{location_of(party_el)}//ThisPartyActionBinding[@id='{binding.binding_id}']",
                    f"binding {binding.binding_id!r} lists {len(binding.channel_ids)} channels; "
                    "only the first is used",
                    "Give each action one ChannelId.",
                )
        _check_action_pairs(report, party_el, party, agreement)
        _check_msh_channel_profile(report, party_el, party, used)
    if len(business_profiles) > 1:
        report.warning(
            "CPA-PROFILE",
            "/CollaborationProtocolAgreement",
            "the CPA mixes profiles: " + ", ".join(sorted(p.value for p in business_profiles)),
            "KVS6/BP3: one profile per CPA (signals follow one default MSH channel); split the CPA.",
        )


def _check_action_pairs(
    report: _Report, party_el: etree._Element, party: PartyInfo, agreement: Agreement
) -> None:
    """Sender and receiver of one action must agree on the profile (KVS2: chosen per direction)."""
    others = [p for p in agreement.parties if p is not party]
    if not others:
        return
    other = others[0]
    peers = {b.binding_id: b for b in other.bindings}
    for binding in party.bindings:
        if binding.direction != "send" or not binding.channel_ids or binding.other_party_binding_id is None:
            continue
        peer = peers.get(binding.other_party_binding_id)
        if peer is None or not peer.channel_ids:
            continue
        mine = party.channels[binding.channel_ids[0]]
        theirs = other.channels[peer.channel_ids[0]]
        my_profile = derive_profile(mine, party.doc_exchanges.get(mine.doc_exchange_id)).profile
        their_profile = derive_profile(theirs, other.doc_exchanges.get(theirs.doc_exchange_id)).profile
        if my_profile != their_profile:
            report.error(
                "CPA-PROFILE",
                f"{location_of(party_el)}//ThisPartyActionBinding[@id='{binding.binding_id}']",
                f"action {binding.action!r}: the sender's channel is {my_profile} but the receiver's "
                f"({peer.binding_id!r}) is {their_profile}",
                "Both sides of an action must use the same profile; correct one of the channels.",
            )
        if mine.characteristics.sync_reply_mode != theirs.characteristics.sync_reply_mode:
            report.error(
                "CPA-SYNCREPLY",
                f"{location_of(party_el)}//ThisPartyActionBinding[@id='{binding.binding_id}']",
                f"action {binding.action!r}: sender and receiver channels disagree on syncReplyMode",
                "Use the same syncReplyMode on both channels of an action.",
            )


def _check_msh_channel_profile(
    report: _Report,
    party_el: etree._Element,
    party: PartyInfo,
    used: dict[str, Profile],
) -> None:
    """One acknowledgement profile: the default MSH channel signs when the business channels do."""
    msh = party.channels.get(party.default_msh_channel_id)
    if msh is None:
        return
    msh_profile = derive_profile(msh, party.doc_exchanges.get(msh.doc_exchange_id)).profile
    where = location_of(party_el, "defaultMshChannelId")
    signed_business = any(p.signed for p in used.values())
    if signed_business and not msh_profile.signed:
        report.warning(
            "CPA-MSH-CHANNEL",
            where,
            f"signals go out unsigned on {party.default_msh_channel_id!r} while business messages are signed",
            "BP3/KVS6: the default MSH channel takes the most secure profile of the CPA; sign it too.",
        )
    if not signed_business and used and msh_profile.signed:
        report.warning(
            "CPA-MSH-CHANNEL",
            where,
            f"signals are signed on {party.default_msh_channel_id!r} while business messages are not",
            "Harmless, but check that both sides have signing keys configured.",
        )
    modes = {party.channels[c].characteristics.sync_reply_mode for c in used}
    if modes and msh.characteristics.sync_reply_mode not in modes:
        report.warning(
            "CPA-MSH-CHANNEL",
            where,
            f"the default MSH channel has syncReplyMode {msh.characteristics.sync_reply_mode}, "
            f"the business channels {', '.join(sorted(modes))}",
            "Give the MSH channel the same syncReplyMode as the business channels.",
        )
