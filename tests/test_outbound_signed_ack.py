"""Signed Acks, sending side: a signed Ack must echo the references we signed (ebMS 2.0 §6.3, KVS ch. 5);
one that echoes other references is ignored, so the message is not taken as delivered."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.ebms.build import build_acknowledgment, build_business_message
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.mime.related import MimePart
from ggk_ebms.pipeline.outbound import acknowledgment_matches, references_we_signed
from ggk_ebms.security.keys import load_private_key
from ggk_ebms.security.xmldsig import sign_envelope
from tests.endpoint import DEV, GEMEENTE, RINIS

DS = "{http://www.w3.org/2000/09/xmldsig#}"
CLOCK = FixedClock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))


def _signed_message() -> tuple[bytes, MimePart]:
    part = MimePart("p1@test", "application/xml", b"<x>payload</x>")
    built = build_business_message(
        cpa_id="cpa",
        from_party=PartyId(GEMEENTE, "urn:osb:oin"),
        from_role="Gemeente",
        to_party=PartyId(RINIS, "urn:osb:oin"),
        to_role="GGk",
        service="ggk:berichtenverkeer:1.0",
        service_type="urn:osb:services",
        action="envelopHeenbericht-ggk_Di01",
        conversation_id="c1",
        message_id="m1@test",
        timestamp=CLOCK.now(),
        time_to_live=None,
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=False,
        content_ids=["p1@test"],
    )
    certificate = (DEV / "gemeente" / "client.pem").read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(certificate).public_bytes(Encoding.DER)
    signed = sign_envelope(
        built.envelope,
        [part],
        key=load_private_key(DEV / "gemeente" / "client-key.pem"),
        certificate_der=der,
        signature_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256",
    )
    return signed, part


def _ack_echoing(signed: bytes, *, tamper: bool) -> bytes:
    message = parse_envelope(signed, max_bytes=1 << 20)
    references = etree.fromstring(signed).findall(f".//{DS}SignedInfo/{DS}Reference")
    if tamper:
        references[-1].find(f"{DS}DigestValue").text = (
            "AAAA" + references[-1].find(f"{DS}DigestValue").text[4:]
        )
    ack = build_acknowledgment(
        message,
        ids=SequenceIdGenerator(),
        clock=CLOCK,
        our_party=PartyId(RINIS, "urn:osb:oin"),
        references=references,
    )
    return ack.envelope


def test_an_ack_echoing_what_we_signed_counts() -> None:
    signed, _ = _signed_message()
    sent = references_we_signed(signed)
    assert len(sent) == 2  # URI="" and the cid: part
    ack = parse_envelope(_ack_echoing(signed, tamper=False), max_bytes=1 << 20)
    assert acknowledgment_matches(ack, sent)


def test_an_ack_echoing_other_references_is_ignored() -> None:
    signed, _ = _signed_message()
    ack = parse_envelope(_ack_echoing(signed, tamper=True), max_bytes=1 << 20)
    assert not acknowledgment_matches(ack, references_we_signed(signed))


def test_an_unsigned_message_has_no_references_to_check() -> None:
    assert references_we_signed(b"<SOAP:Envelope/>") == ()
