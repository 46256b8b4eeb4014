"""One signature verification and one signed Acknowledgment, in this process: our fast paths
beside libxmlsec doing all of it.

``verify_envelope`` on one signed osb-rm-s message (a 2.5 KB StUF Di01 in one MIME part, signed
the way our own sender signs: RSA-SHA256, SHA-256, ebMS 2.0 §4.1.3), first as it runs in the
server (the fast check of docs/signing.md "Fast signature check"), then as it ran before it
(libxmlsec evaluating the actor filter node by node); and ``sign_envelope`` on the signed
Acknowledgment of that message (ebMS 2.0 §6.3, echoing its References), with the fast signer
(docs/signing.md "Fast signing") and with libxmlsec's ``sign``. Each pair runs in alternating
rounds so both see the same machine. The figure is CPU time per operation; the libxmlsec row of
each operation is its baseline in the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from bench.common import ACTION_DI01, DEV_CERTS, RINIS, SERVICE, Report
from bench.messages import stuf_di01
from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.ebms.build import build_acknowledgment, build_business_message
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import DS
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security import xmldsig
from ggk_ebms.security.keys import parse_private_key

COLUMNS: Final = (
    "operation",
    "path",
    "operations",
    "cpu_ms_per_operation",
    "per_s_one_thread",
    "vs_libxmlsec",
)
_ROUNDS: Final = 5
_GEMEENTE_OIN: Final = "00000099000003630000"


def _gemeente_signer() -> tuple[PrivateKeyTypes, bytes]:
    """The receiving gemeente's signing key and certificate (DER): it signs the Acknowledgment."""
    key_path = DEV_CERTS / "gemeente" / "client-key.pem"
    key = parse_private_key(key_path.read_bytes(), None, source=str(key_path))
    pem = (DEV_CERTS / "gemeente" / "client.pem").read_bytes()
    return key, x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _acknowledgment(signed: bytes) -> bytes:
    """The unsigned Acknowledgment of ``signed``, echoing its References (ebMS 2.0 §6.3, KVS ch. 5)."""
    message = parse_envelope(signed, max_bytes=1 << 20)
    references = etree.fromstring(signed).findall(f".//{{{DS}}}SignedInfo/{{{DS}}}Reference")
    return build_acknowledgment(
        message,
        ids=SequenceIdGenerator("gemeente.bench.test"),
        clock=FixedClock(datetime.now(UTC)),
        our_party=PartyId(_GEMEENTE_OIN, "urn:osb:oin"),
        references=references,
    ).envelope


def _signed_message() -> tuple[bytes, list[MimePart], bytes]:
    """A signed business message from RINIS with one StUF part, and RINIS's certificate (DER)."""
    part = MimePart("di01-1@rinis.bench.test", "application/xml", stuf_di01(2_500))
    envelope = build_business_message(
        cpa_id="bench-osb-rm-s",
        from_party=PartyId(RINIS, "urn:osb:oin"),
        from_role="GGk",
        to_party=PartyId(_GEMEENTE_OIN, "urn:osb:oin"),
        to_role="Gemeente",
        service=SERVICE,
        service_type="urn:osb:services",
        action=ACTION_DI01,
        conversation_id="conv-1@rinis.bench.test",
        message_id="msg-1@rinis.bench.test",
        timestamp=datetime.now(UTC),
        time_to_live=None,
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=True,
        content_ids=[part.content_id or ""],
    ).envelope
    key_path = DEV_CERTS / "rinis" / "client-key.pem"
    key = parse_private_key(key_path.read_bytes(), None, source=str(key_path))
    pem = (DEV_CERTS / "rinis" / "client.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    signed = xmldsig.sign_envelope(
        envelope,
        [part],
        key=key,
        certificate_der=certificate,
        signature_algorithm=alg.RSA_SHA256,
        digest_algorithm=alg.SHA256,
    )
    return signed, [part], certificate


def _cpu_seconds(verify: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        verify()
    return time.process_time() - start


def _alternating(fast: Callable[[], object], full: Callable[[], object], count: int) -> tuple[float, float]:
    """CPU seconds of ``count`` calls of each, over ``_ROUNDS`` alternating rounds, after a warm-up."""
    fast()
    full()  # warm-up: imports, the cached certificate, xmlsec's transform tables
    fast_seconds = full_seconds = 0.0
    for _ in range(_ROUNDS):
        fast_seconds += _cpu_seconds(fast, count)
        full_seconds += _cpu_seconds(full, count)
    return fast_seconds, full_seconds


def run_sigcheck(*, count: int) -> Report:
    report = Report("sigcheck", {"count": count, "rounds": _ROUNDS})
    envelope, parts, certificate = _signed_message()
    ack = _acknowledgment(envelope)
    ack_key, ack_certificate = _gemeente_signer()

    def verify() -> object:
        return xmldsig.verify_envelope(
            envelope,
            parts,
            certificate_der=certificate,
            allowed_signature_algorithms=alg.accepted_signature_methods(allow_sha1=False),
            allowed_digest_algorithms=alg.accepted_digests(allow_sha1=False),
            expected_digest=alg.SHA256,
            expected_signature=alg.RSA_SHA256,
        )

    def verify_libxmlsec_only() -> object:
        # The verifier as it was before the fast check: with no fast plan, libxmlsec verifies
        # the References (the actor filter node by node) and SignedInfo.
        with mock.patch.object(xmldsig, "_fast_plan", return_value=None):
            return verify()

    def sign_ack() -> object:
        return xmldsig.sign_envelope(
            ack,
            [],
            key=ack_key,
            certificate_der=ack_certificate,
            signature_algorithm=alg.RSA_SHA256,
            digest_algorithm=alg.SHA256,
        )

    def sign_ack_libxmlsec_only() -> object:
        # The signer as it was before the fast signer: libxmlsec's sign fills the template.
        with mock.patch.object(xmldsig, "_signed_without_xpath", return_value=False):
            return sign_ack()

    if sign_ack() != sign_ack_libxmlsec_only():
        raise AssertionError("the fast signer and libxmlsec wrote different Acknowledgments")
    total = count * _ROUNDS
    for operation, fast_path, fast, full in (
        ("verify message", "fast check", verify, verify_libxmlsec_only),
        ("sign Acknowledgment", "fast signer", sign_ack, sign_ack_libxmlsec_only),
    ):
        fast_seconds, full_seconds = _alternating(fast, full, count)
        for path, seconds in (("libxmlsec (baseline)", full_seconds), (fast_path, fast_seconds)):
            per = seconds / total
            report.add(
                operation=operation,
                path=path,
                operations=total,
                cpu_ms_per_operation=round(per * 1000, 3),
                per_s_one_thread=round(1 / per) if per else 0,
                vs_libxmlsec=round(full_seconds / seconds, 2) if seconds else 0,
            )
    report.note("vs_libxmlsec: how many times faster than libxmlsec doing all of it (CPU time)")
    report.note("sign Acknowledgment: both paths wrote the same bytes (checked before timing)")
    return report
