"""``validate_cpa``: one case per rule, the reference CPAs' known defects, and hostile input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from lxml import etree

from cpa_support import NOW, cpa_bytes, make_cert, mutate, official_schema, party, pem, request, shared_cpa
from ggk_ebms import ns
from ggk_ebms.cpa.create import create_agreement
from ggk_ebms.cpa.lint import Finding, validate_cpa
from ggk_ebms.cpa.model import Profile


def _rules(findings: list[Finding], severity: str) -> set[str]:
    return {f.rule for f in findings if f.severity == severity}


@pytest.mark.parametrize("profile", list(Profile))
def test_generated_cpas_have_no_errors(profile: Profile) -> None:
    validation = validate_cpa(cpa_bytes(profile), now=NOW)
    assert validation.errors == []
    # The only warnings: the two test OINs (prefix 00000099).
    assert {(f.rule, f.location) for f in validation.warnings} == {
        ("CPA-OIN", "/CollaborationProtocolAgreement/PartyInfo[1]/PartyId[1]"),
        ("CPA-OIN", "/CollaborationProtocolAgreement/PartyInfo[2]/PartyId[1]"),
    }
    assert validation.agreement is not None
    assert validation.ok


def _edit(data: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(data)
    change(root)
    return etree.tostring(root)


def _q(local: str) -> str:
    return f"{{{ns.CPPA}}}{local}"


def _drop_signal_signing(root: etree._Element) -> None:
    exchange = root.find(f".//{_q('DocExchange')}[@{_q('docExchangeId')}='A_SignalExchange']")
    assert exchange is not None
    for nr in exchange.iterfind(f"*/{_q('SenderNonRepudiation')}"):
        nr.getparent().remove(nr)
    for nr in exchange.iterfind(f"*/{_q('ReceiverNonRepudiation')}"):
        nr.getparent().remove(nr)


# (case, profile, old, new, severity, rule, location prefix); old/new replace the first occurrence.
ROOT = "/CollaborationProtocolAgreement"
P1 = ROOT + "/PartyInfo[1]"
P2 = ROOT + "/PartyInfo[2]"
START_2026 = "<cppa:Start>2026-01-01T00:00:00Z<"

RULE_CASES = [
    ("proposed", Profile.OSB_RM, 'cppa:value="agreed"', 'cppa:value="proposed"', "error", "CPA-STATUS",
     ROOT + "/Status[1]/@value"),
    ("start after end", Profile.OSB_RM, START_2026, "<cppa:Start>2030-01-01T00:00:00Z<",
     "error", "CPA-VALIDITY", ROOT + "/End[1]"),
    ("start in future", Profile.OSB_RM, START_2026, "<cppa:Start>2027-01-01T00:00:00Z<",
     "warning", "CPA-VALIDITY", ROOT + "/Start[1]"),
    ("expired", Profile.OSB_RM, "<cppa:End>2029-12-31T00:00:00Z<", "<cppa:End>2026-06-01T00:00:00Z<",
     "error", "CPA-EXPIRED", ROOT + "/End[1]"),
    ("untyped PartyId", Profile.OSB_RM, ' cppa:type="urn:osb:oin">00000099000001000000',
     ">00000099000001000000", "error", "CPA-PARTYID-TYPE", P2 + "/PartyId[1]"),
    ("OIN with other type", Profile.OSB_RM, 'cppa:type="urn:osb:oin">00000099000001000000',
     'cppa:type="urn:cv:oin">00000099000001000000', "error", "CPA-PARTYID-TYPE",
     P2 + "/PartyId[1]"),
    ("other scheme", Profile.OSB_RM, 'cppa:type="urn:osb:oin">00000099000001000000',
     'cppa:type="urn:example:hrn">HRN12345', "warning", "CPA-PARTYID-TYPE",
     P2 + "/PartyId[1]"),
    ("OIN too short", Profile.OSB_RM, ">00000099000001000000<", ">0000009900000100000<", "error", "CPA-OIN",
     P2 + "/PartyId[1]"),
    ("OIN suffix", Profile.OSB_RM,
     ">00000099000001000000<", ">00000099000001000000_OTA<", "warning", "CPA-OIN",
     P2 + "/PartyId[1]"),
    ("dangling ChannelId", Profile.OSB_RM, "<cppa:ChannelId>A_MessageChannel<", "<cppa:ChannelId>A_Nowhere<",
     "error", "CPA-REF", P1 + "/CollaborationRole[1]"),
    ("dangling transportId", Profile.OSB_RM, 'cppa:transportId="A_Transport"', 'cppa:transportId="A_Gone"',
     "error", "CPA-REF", P1 + "/DeliveryChannel[1]/@transportId"),
    ("dangling docExchangeId", Profile.OSB_RM, 'cppa:docExchangeId="A_MessageExchange"',
     'cppa:docExchangeId="A_Gone"', "error", "CPA-REF",
     P1 + "/DeliveryChannel[1]/@docExchangeId"),
    ("dangling certId", Profile.OSB_RM, '<cppa:ClientCertificateRef cppa:certId="A_ClientCert"/>',
     '<cppa:ClientCertificateRef cppa:certId="A_Missing"/>', "error", "CPA-REF",
     P1 + "/Transport[1]"),
    ("cert of the other party", Profile.OSB_RM, '<cppa:ClientCertificateRef cppa:certId="A_ClientCert"/>',
     '<cppa:ClientCertificateRef cppa:certId="B_ClientCert"/>', "error", "CPA-REF",
     P1 + "/Transport[1]"),
    ("dangling OtherPartyActionBinding", Profile.OSB_RM,
     ">B_R_Fo01Bericht<", ">B_R_Nothing<", "error", "CPA-REF",
     P1 + "/CollaborationRole[1]"),
    ("dangling packageId", Profile.OSB_RM, 'cppa:packageId="MessagePackage"', 'cppa:packageId="NoPackage"',
     "error", "CPA-REF", P1 + "/CollaborationRole[1]"),
    ("dangling MSH channel", Profile.OSB_RM, 'cppa:defaultMshChannelId="A_SignalChannel"',
     'cppa:defaultMshChannelId="A_Nowhere"', "error", "CPA-MSH-CHANNEL",
     P1 + "/@defaultMshChannelId"),
    ("plain http", Profile.OSB_RM,
     'cppa:uri="https://rinis.example/ebms"', 'cppa:uri="http://rinis.example/ebms"',
     "error", "CPA-ENDPOINT-HTTPS", P2 + "/Transport[1]"),
    ("not a URL", Profile.OSB_RM, 'cppa:uri="https://rinis.example/ebms"', 'cppa:uri="rinis"',
     "error", "CPA-ENDPOINT-HTTPS", P2 + "/Transport[1]"),
    ("SSL 3.0 label", Profile.OSB_RM,
     'cppa:version="1.2">TLS<', 'cppa:version="3.0">SSL<', "warning", "CPA-TLS",
     P1 + "/Transport[1]"),
    ("no client certificate", Profile.OSB_RM, '<cppa:ClientCertificateRef cppa:certId="A_ClientCert"/>', "",
     "error", "CPA-TLS", P1 + "/Transport[1]/TransportSender[1]"),
    ("signalsAndResponse", Profile.OSB_RM,
     'cppa:syncReplyMode="none"', 'cppa:syncReplyMode="signalsAndResponse"',
     "error", "CPA-SYNCREPLY", P1 + "/DeliveryChannel[1]"),
    ("sync on best effort", Profile.OSB_BE,
     'cppa:syncReplyMode="none"', 'cppa:syncReplyMode="mshSignalsOnly"',
     "error", "CPA-SYNCREPLY", P1 + "/DeliveryChannel[1]"),
    ("nextMSH", Profile.OSB_RM, 'cppa:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"',
     'cppa:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"', "error", "CPA-ACTOR",
     P1 + "/DeliveryChannel[1]"),
    ("ack without duplicate elimination", Profile.OSB_RM,
     'cppa:ackSignatureRequested="never" cppa:duplicateElimination="always"',
     'cppa:ackSignatureRequested="never" cppa:duplicateElimination="never"', "error", "CPA-PROFILE",
     P1 + "/DeliveryChannel[1]"),
    ("SHA-1 digest", Profile.OSB_RM_S, "http://www.w3.org/2001/04/xmlenc#sha256",
     "http://www.w3.org/2000/09/xmldsig#sha1", "error", "CPA-ALGORITHM",
     P1 + "/DocExchange[1]"),
    ("SHA-1 signature", Profile.OSB_BE_S, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
     "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "error", "CPA-ALGORITHM",
     P1 + "/DocExchange[1]"),
    ("unknown digest", Profile.OSB_BE_S, "http://www.w3.org/2001/04/xmlenc#sha256", "urn:example:md5",
     "error", "CPA-ALGORITHM", P1 + "/DocExchange[1]"),
    ("AES-CBC", Profile.OSB_RM_E, "http://www.w3.org/2009/xmlenc11#aes256-gcm",
     "http://www.w3.org/2001/04/xmlenc#aes256-cbc", "warning", "CPA-ALGORITHM",
     P1 + "/DocExchange[1]"),
    ("3DES", Profile.OSB_RM_E, "http://www.w3.org/2009/xmlenc11#aes256-gcm",
     "http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "error", "CPA-ALGORITHM",
     P1 + "/DocExchange[1]"),
    ("no Retries", Profile.OSB_RM, "<cppa:Retries>8</cppa:Retries>", "", "warning", "CPA-RM-VALUES",
     P1 + "/DocExchange[1]"),
    ("no RetryInterval", Profile.OSB_RM, "<cppa:RetryInterval>PT3H</cppa:RetryInterval>", "", "warning",
     "CPA-RM-VALUES", P1 + "/DocExchange[1]"),
    ("absurd RetryInterval", Profile.OSB_RM,
     "<cppa:RetryInterval>PT3H<", "<cppa:RetryInterval>PT1S<", "warning",
     "CPA-RM-VALUES", P1 + "/DocExchange[1]"),
    ("absurd Retries", Profile.OSB_RM, "<cppa:Retries>8<", "<cppa:Retries>5000<", "warning", "CPA-RM-VALUES",
     P1 + "/DocExchange[1]"),
    ("short PersistDuration", Profile.OSB_RM, "<cppa:PersistDuration>P1D<", "<cppa:PersistDuration>PT1H<",
     "warning", "CPA-RM-VALUES", P1 + "/DocExchange[1]"),
    ("Guaranteed order", Profile.OSB_RM, ">NotGuaranteed<", ">Guaranteed<", "error", "CPA-MESSAGE-ORDER",
     P1 + "/DocExchange[1]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "profile", "old", "new", "severity", "rule", "where"), RULE_CASES, ids=[c[0] for c in RULE_CASES]
)
def test_rule(case: str, profile: Profile, old: str, new: str, severity: str, rule: str, where: str) -> None:
    before = validate_cpa(cpa_bytes(profile), now=NOW)
    assert rule not in _rules(before.findings, severity) or rule == "CPA-OIN"
    validation = validate_cpa(mutate(cpa_bytes(profile), old, new, 1), now=NOW)
    matching = [f for f in validation.findings if f.rule == rule and f.severity == severity]
    assert matching, f"{case}: {[str(f) for f in validation.findings]}"
    assert any(f.location.startswith(where) for f in matching), [f.location for f in matching]
    assert all(f.message and f.advice for f in validation.findings)
    if severity == "error":
        assert not validation.ok


def test_profile_mismatch_between_sender_and_receiver() -> None:
    data = mutate(
        cpa_bytes(Profile.OSB_RM),
        'cppa:transportId="B_Transport" cppa:docExchangeId="B_MessageExchange"',
        'cppa:transportId="B_Transport" cppa:docExchangeId="B_SignalExchange"',
    )
    data = _edit(data, lambda root: _set_flags(root, "B_MessageChannel", "never"))
    findings = validate_cpa(data, now=NOW).findings
    assert any(f.rule == "CPA-PROFILE" and "osb-rm" in f.message and "osb-be" in f.message for f in findings)


def _set_flags(root: etree._Element, channel_id: str, value: str) -> None:
    channel = root.find(f".//{_q('DeliveryChannel')}[@{_q('channelId')}='{channel_id}']")
    assert channel is not None
    mc = channel.find(_q("MessagingCharacteristics"))
    assert mc is not None
    mc.set(_q("ackRequested"), value)
    mc.set(_q("duplicateElimination"), value)


def test_unsigned_signals_with_signed_messages_warn() -> None:
    data = _edit(cpa_bytes(Profile.OSB_RM_S), _drop_signal_signing)
    validation = validate_cpa(data, now=NOW)
    assert [f for f in validation.warnings if f.rule == "CPA-MSH-CHANNEL"]
    assert validation.ok


def test_sha1_is_a_warning_only_when_allowed() -> None:
    data = mutate(
        cpa_bytes(Profile.OSB_RM_S),
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    )
    strict = validate_cpa(data, now=NOW)
    lenient = validate_cpa(data, now=NOW, allow_sha1=True)
    assert "CPA-ALGORITHM" in _rules(strict.findings, "error")
    assert "CPA-ALGORITHM" not in _rules(lenient.findings, "error")
    sha1 = [f for f in lenient.warnings if f.rule == "CPA-ALGORITHM"]
    assert sha1  # reported either way: never silently accepted
    assert all("allow_sha1" in f.message for f in sha1)
    assert lenient.ok


def test_expired_certificate() -> None:
    expired, _ = make_cert("old client", "00000099000003630000", not_after=datetime(2026, 6, 1, tzinfo=UTC))
    req = request()
    req = replace(req, party=replace(req.party, client_cert_pem=pem(expired)))
    findings = validate_cpa(create_agreement(req), now=NOW).findings
    assert any(f.rule == "CPA-CERT-EXPIRED" and f.severity == "error" for f in findings)


def test_certificate_expiring_before_the_cpa_warns() -> None:
    short, _ = make_cert("client", "00000099000003630000", not_after=datetime(2028, 1, 1, tzinfo=UTC))
    req = request()
    req = replace(req, party=replace(req.party, client_cert_pem=pem(short)))
    findings = validate_cpa(create_agreement(req), now=NOW).findings
    assert any(f.rule == "CPA-CERT-EXPIRED" and f.severity == "warning" for f in findings)


def test_client_certificate_with_another_oin_warns() -> None:
    other, _ = make_cert("client", "00000099000009990000")
    req = request(party=party("Gemeente", "00000099000003630000", "https://g.example/ebms", "Gemeente",
                              client_cert_pem=pem(other)))  # fmt: skip
    findings = validate_cpa(create_agreement(req), now=NOW).findings
    assert any(f.rule == "CPA-CERT" and "00000099000009990000" in f.message for f in findings)


def test_undecodable_certificate() -> None:
    data = cpa_bytes()
    start = data.index(b"<ds:X509Certificate>") + len(b"<ds:X509Certificate>")
    end = data.index(b"</ds:X509Certificate>")
    validation = validate_cpa(data[:start] + b"AAAA" + data[end:], now=NOW)
    cert = [f for f in validation.errors if f.rule == "CPA-CERT"]
    assert cert
    assert cert[0].location == "/CollaborationProtocolAgreement/PartyInfo[1]/Certificate[1]"


def test_official_schema_can_be_used() -> None:
    validation = validate_cpa(cpa_bytes(), now=NOW, schema=official_schema())
    assert validation.ok


def test_schema_errors_are_reported_with_location() -> None:
    data = mutate(cpa_bytes(), '<cppa:Status cppa:value="agreed"/>', "")
    validation = validate_cpa(data, now=NOW)
    xsd = [f for f in validation.errors if f.rule == "CPA-XSD"]
    assert xsd
    assert xsd[0].location.startswith("/CollaborationProtocolAgreement")


# --- the reference adapter's CPAs: their known deviations
# (Digikoppeling KVS ch. 3, BP ch. 3 last line) -----------------------


@pytest.mark.parametrize(
    ("folder", "name", "severity", "rule", "text"),
    [
        ("cpas", "cpaStubEBF.be.http.unsigned.xml", "error", "CPA-ENDPOINT-HTTPS", "http://"),
        ("cpas", "cpaStubEBF.rm.https.signed.xml", "error", "CPA-ALGORITHM", "SHA-1"),
        ("cpas", "cpaStubEBF.rm.https.signed.xml", "warning", "CPA-TLS", "SSL 3.0"),
        ("cpas", "cpaStubEBF.be.http.unsigned.sync.xml", "error", "CPA-SYNCREPLY", "signalsAndResponse"),
        ("cpas", "cpaStubEBF.rm.http.unsigned.sync.xml", "error", "CPA-SYNCREPLY", "signalsAndResponse"),
        ("cpas", "cpa-cv-https.xml", "error", "CPA-PARTYID-TYPE", "urn:cv:oin"),
        ("cpas", "cpaStubEBF.rm.https.signed.encrypted.xml", "warning", "CPA-ALGORITHM", "aes256-cbc"),
        ("admin-cpas", "cpa-cv-http.xml", "error", "CPA-EXPIRED", "2026-01-01"),
        ("admin-cpas", "cpa-cv-https.xml", "error", "CPA-EXPIRED", "2026-01-01"),
    ],
)
def test_reference_cpa_findings(folder: str, name: str, severity: str, rule: str, text: str) -> None:
    validation = validate_cpa(shared_cpa(folder, name), now=NOW)
    assert any(
        f.severity == severity and f.rule == rule and text in f.message for f in validation.findings
    ), [str(f) for f in validation.findings]


def test_reference_cv_cpa_not_expired_in_the_core_copy() -> None:
    validation = validate_cpa(shared_cpa("cpas", "cpa-cv-https.xml"), now=NOW)
    assert "CPA-EXPIRED" not in validation.rules()


def test_reference_sha256_https_cpa_has_only_warnings() -> None:
    validation = validate_cpa(shared_cpa("cpas", "cpaStubEBF.rm.https.signed-sha256.xml"), now=NOW)
    assert validation.ok, [str(f) for f in validation.errors]
    assert "CPA-TLS" in validation.rules()


# --- hostile input ---------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<CollaborationProtocolAgreement>&lol3;</CollaborationProtocolAgreement>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE cpa [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<cppa:CollaborationProtocolAgreement xmlns:cppa="http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd"
 cppa:cpaid="&xxe;"/>"""


@pytest.mark.parametrize(
    ("case", "data", "rule"),
    [
        ("billion laughs", BILLION_LAUGHS, "CPA-XML-UNSAFE"),
        ("external entity", EXTERNAL_ENTITY, "CPA-XML-UNSAFE"),
        ("not XML", b"\x89PNG\r\n\x1a\n not a CPA", "CPA-XML"),
        ("empty", b"", "CPA-XML"),
        ("truncated", cpa_bytes()[:500], "CPA-XML"),
        ("other XML", b'<x xmlns="urn:other"/>', "CPA-XSD"),
    ],
)
def test_hostile_input_is_one_clear_error(case: str, data: bytes, rule: str) -> None:
    validation = validate_cpa(data, now=NOW)
    assert [f.rule for f in validation.findings] == [rule], case
    assert validation.agreement is None


def test_oversized_input_is_refused_before_parsing() -> None:
    data = b"<x>" + b" " * (50 * 1024 * 1024) + b"</x>"
    validation = validate_cpa(data, now=NOW, max_bytes=5 * 1024 * 1024)
    assert [f.rule for f in validation.findings] == ["CPA-SIZE"]
    assert validation.agreement is None
