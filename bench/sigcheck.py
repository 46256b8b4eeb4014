"""One signature verification, in this process: the fast check beside libxmlsec doing all of it.

``verify_envelope`` on one signed osb-rm-s message (a 2.5 KB StUF Di01 in one MIME part, signed
the way our own sender signs: RSA-SHA256, SHA-256, ebMS 2.0 §4.1.3), first as it runs in the
server (the fast check of docs/signing.md "Fast signature check"), then as it ran before it
(libxmlsec evaluating the actor filter node by node), in alternating rounds so both see the same
machine. The figure is CPU time per verification; the libxmlsec row is the baseline of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bench.common import ACTION_DI01, DEV_CERTS, RINIS, SERVICE, Report
from bench.messages import stuf_di01
from ggk_ebms.ebms.build import build_business_message
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.mime.related import MimePart
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security import xmldsig
from ggk_ebms.security.keys import parse_private_key

COLUMNS: Final = ("path", "verifications", "cpu_ms_per_verification", "per_s_one_thread", "vs_libxmlsec")
_ROUNDS: Final = 5
_GEMEENTE_OIN: Final = "00000099000003630000"


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


def run_sigcheck(*, count: int) -> Report:
    report = Report("sigcheck", {"count": count, "rounds": _ROUNDS})
    envelope, parts, certificate = _signed_message()

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

    def libxmlsec_only() -> object:
        # The verifier as it was before the fast check: with no fast plan, libxmlsec verifies
        # the References (the actor filter node by node) and SignedInfo.
        with mock.patch.object(xmldsig, "_fast_plan", return_value=None):
            return verify()

    verify()
    libxmlsec_only()  # warm-up: imports, the cached certificate, xmlsec's transform tables
    fast = full = 0.0
    for _ in range(_ROUNDS):
        fast += _cpu_seconds(verify, count)
        full += _cpu_seconds(libxmlsec_only, count)
    total = count * _ROUNDS
    for path, seconds in (("libxmlsec (baseline)", full), ("fast check", fast)):
        per = seconds / total
        report.add(
            path=path,
            verifications=total,
            cpu_ms_per_verification=round(per * 1000, 3),
            per_s_one_thread=round(1 / per) if per else 0,
            vs_libxmlsec=round(full / seconds, 2) if seconds else 0,
        )
    report.note("vs_libxmlsec: how many times faster than libxmlsec verifying everything (CPU time)")
    return report
