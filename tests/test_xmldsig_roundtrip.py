"""Sign -> verify round trips, the layout we write (ebMS 2.0
§4.1.3) and signed acknowledgements (ebMS 2.0 §6.3, KVS ch. 5)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest
from lxml import etree

from conftest import PROJECT_ROOT
from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.ebms.build import build_acknowledgment
from ggk_ebms.ebms.model import Acknowledgment, AckReference, PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import ConfigError, EbmsError, ErrorCode, XmlError
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import DS, SOAP_ENV
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security.xmldsig import (
    SignedReference,
    ack_references,
    check_ack_references,
    sign_envelope,
    signed_references,
)
from xmlsec_support import (
    RINIS_OIN,
    TIMESTAMP,
    business_envelope,
    certificate_der,
    payload_parts,
    private_key,
    sign,
    verify,
)

ALGORITHM_PAIRS = [
    (alg.RSA_SHA256, alg.SHA256),
    (alg.RSA_SHA384, alg.SHA384),
    (alg.RSA_SHA512, alg.SHA512),
]


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


@pytest.mark.parametrize("count", [0, 1, 3])
@pytest.mark.parametrize(("signature_method", "digest_method"), ALGORITHM_PAIRS)
def test_round_trip(count: int, signature_method: str, digest_method: str) -> None:
    parts = payload_parts(count)
    signed = sign(
        business_envelope(parts), parts, signature_algorithm=signature_method, digest_algorithm=digest_method
    )
    verified = verify(signed, parts, signature_algorithm=signature_method, digest_algorithm=digest_method)
    assert [r.uri for r in verified.references] == ["", *(f"cid:{p.content_id}" for p in parts)]
    assert {r.digest_method for r in verified.references} == {digest_method}
    assert verified.signature_method == signature_method
    assert signed_references(signed) == verified.references


def test_layout_follows_digest_7_2() -> None:
    parts = payload_parts(2)
    root = etree.fromstring(sign(business_envelope(parts), parts))
    header = root.find(f"{{{SOAP_ENV}}}Header")
    assert header is not None
    signature = header[-1]
    assert signature.tag == _ds("Signature"), "the Signature is the last child of the SOAP Header"
    signed_info = signature.find(_ds("SignedInfo"))
    assert signed_info is not None
    assert signed_info[0].get("Algorithm") == alg.C14N_INCLUSIVE
    envelope_ref = signed_info.find(_ds("Reference"))
    assert envelope_ref is not None
    assert envelope_ref.get("URI") == ""
    steps = envelope_ref.findall(f"{_ds('Transforms')}/{_ds('Transform')}")
    assert [s.get("Algorithm") for s in steps] == [
        alg.ENVELOPED_SIGNATURE,
        alg.XPATH_FILTER,
        alg.C14N_INCLUSIVE,
    ]
    xpath = steps[1].find(_ds("XPath"))
    assert xpath is not None
    assert xpath.text == alg.EBMS_ACTOR_FILTER
    assert b'<ds:XPath xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/">' in etree.tostring(root)
    cid_refs = signed_info.findall(_ds("Reference"))[1:]
    assert [r.get("URI") for r in cid_refs] == [f"cid:{p.content_id}" for p in parts]
    assert all(r.find(_ds("Transforms")) is None for r in cid_refs)
    key_info = signature.find(_ds("KeyInfo"))
    assert key_info is not None
    assert key_info.find(f"{_ds('KeyValue')}/{_ds('RSAKeyValue')}/{_ds('Modulus')}") is not None
    cert_text = key_info.findtext(f"{_ds('X509Data')}/{_ds('X509Certificate')}")
    assert cert_text is not None
    assert base64.b64decode(cert_text) == certificate_der("gemeente")


def test_signed_envelope_still_parses_as_the_same_message() -> None:
    parts = payload_parts(1)
    envelope = business_envelope(parts)
    signed = sign(envelope, parts)
    before = parse_envelope(envelope, max_bytes=1 << 20)
    after = parse_envelope(signed, max_bytes=1 << 20)
    assert after.header == before.header
    assert after.signature and not before.signature


def test_syncreply_may_be_dropped_by_an_intermediary() -> None:
    """SyncReply targets the next SOAP node, so the actor filter leaves it out (ebMS 2.0 §4.1.3)."""
    parts = payload_parts(1)
    signed = sign(business_envelope(parts, sync_reply=True), parts)
    root = etree.fromstring(signed)
    sync = root.find(".//{http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd}SyncReply")
    assert sync is not None
    sync.getparent().remove(sync)  # type: ignore[union-attr]
    verify(etree.tostring(root), parts)


def test_signing_refuses_a_key_of_another_certificate() -> None:
    with pytest.raises(ConfigError, match="does not belong"):
        sign_envelope(
            business_envelope([]),
            [],
            key=private_key("rinis"),
            certificate_der=certificate_der("gemeente"),
            signature_algorithm=alg.RSA_SHA256,
            digest_algorithm=alg.SHA256,
        )


def test_signing_refuses_an_envelope_signed_already() -> None:
    signed = sign(business_envelope([]), [])
    with pytest.raises(XmlError, match="already"):
        sign(signed, [])


def test_signing_refuses_a_forbidden_algorithm() -> None:
    with pytest.raises(ConfigError, match="SIGN003"):
        sign(business_envelope([]), [], digest_algorithm="http://www.w3.org/2001/04/xmldsig-more#sha224")


def _dev_route(profile: str) -> lookup.SendingRoute:
    agreement = parse_agreement((PROJECT_ROOT / "cpa" / f"dev-{profile}.xml").read_bytes())
    gemeente = lookup.own_party(agreement, ["00000099000003630000"])
    binding = next(b for b in gemeente.bindings if b.direction == "send")
    return lookup.sending_route(
        agreement,
        gemeente,
        role=binding.role,
        service=binding.service,
        service_type=binding.service_type,
        action=binding.action,
    )


@pytest.mark.parametrize("profile", ["osb-be-s", "osb-rm-s", "osb-be-e", "osb-rm-e"])
def test_dev_cpa_certificates_and_algorithms(profile: str) -> None:
    """Sign with our key as the dev CPA says; verify with the certificate the CPA names for us."""
    route = _dev_route(profile)
    channel = route.channel
    assert channel.signing_certificate is not None
    cpa_certificate = channel.signing_certificate.der
    assert cpa_certificate == certificate_der("gemeente"), "the dev CPA names the dev client certificate"
    policy = alg.signature_policy(channel.signature_algorithm, channel.hash_function)
    parts = payload_parts(2)
    signed = sign_envelope(
        business_envelope(parts),
        parts,
        key=private_key("gemeente"),
        certificate_der=cpa_certificate,
        signature_algorithm=policy.signature_method,
        digest_algorithm=policy.digest_method,
    )
    verify(
        signed, parts, signature_algorithm=channel.signature_algorithm, digest_algorithm=channel.hash_function
    )


def _acknowledge(signed: bytes, parts: Sequence[MimePart]) -> bytes:
    verified = verify(signed, parts)
    received = parse_envelope(signed, max_bytes=1 << 20)
    ack = build_acknowledgment(
        received,
        ids=SequenceIdGenerator("ack"),
        clock=FixedClock(TIMESTAMP),
        our_party=PartyId(RINIS_OIN, "urn:osb:oin"),
        references=ack_references(verified),
    )
    return ack.envelope


def test_signed_ack_echoes_the_references_and_is_accepted() -> None:
    parts = payload_parts(2)
    signed = sign(business_envelope(parts), parts)
    ack_envelope = sign(_acknowledge(signed, parts), [], party="rinis")
    verify(ack_envelope, [], party="rinis")  # the echoed ds:Reference copies do not disturb it
    ack = parse_envelope(ack_envelope, max_bytes=1 << 20).acknowledgment
    assert ack is not None
    assert len(ack.references) == 3
    check_ack_references(ack, signed_references(signed))


def test_ack_with_other_references_is_refused() -> None:
    parts = payload_parts(2)
    signed = sign(business_envelope(parts), parts)
    sent = signed_references(signed)
    ack = parse_envelope(_acknowledge(signed, parts), max_bytes=1 << 20).acknowledgment
    assert ack is not None
    wrong_digest = (*sent[:-1], SignedReference(sent[-1].uri, sent[-1].digest_method, "AAAA"))
    for expected in (wrong_digest, sent[:-1]):
        with pytest.raises(EbmsError) as caught:
            check_ack_references(ack, expected)
        assert caught.value.code == ErrorCode.SECURITY_FAILURE


def test_ack_without_references_is_refused() -> None:
    ack = Acknowledgment(timestamp=TIMESTAMP, ref_to_message_id="m", from_party=None, references=())
    with pytest.raises(EbmsError, match="no Reference"):
        check_ack_references(ack, (SignedReference("", alg.SHA256, "AAAA"),))


def test_ack_comparison_ignores_order_and_base64_line_breaks() -> None:
    sent = (SignedReference("", alg.SHA256, "YWJjZGVmZ2g="), SignedReference("cid:a", alg.SHA256, "aGlqaw=="))
    echoed = (
        AckReference("cid:a", alg.SHA256, "aGlq\naw=="),
        AckReference("", alg.SHA256, "YWJj ZGVmZ2g="),
    )
    ack = Acknowledgment(timestamp=TIMESTAMP, ref_to_message_id="m", from_party=None, references=echoed)
    check_ack_references(ack, sent)
