"""Test helpers for XMLDSig and XML Encryption: dev keys, a business message, one-call sign/verify.

Keys and certificates come from certs/dev (the client certificates double as signing and
encryption certificates in the dev CPAs); the envelope is built by ``build_business_message`` the
way the outbound worker builds it, with a Manifest naming the given parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from conftest import PROJECT_ROOT
from ggk_ebms.ebms.build import build_business_message
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.mime.related import MimePart
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security.keys import parse_private_key
from ggk_ebms.security.xmldsig import VerifiedSignature, sign_envelope, verify_envelope

DEV_CERTS = PROJECT_ROOT / "certs" / "dev"
TIMESTAMP = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
GEMEENTE_OIN = "00000099000003630000"
RINIS_OIN = "00000099000001000000"


@cache
def private_key(party: str) -> PrivateKeyTypes:
    path = DEV_CERTS / party / "client-key.pem"
    return parse_private_key(path.read_bytes(), None, source=str(path))


@cache
def certificate_der(party: str) -> bytes:
    pem = (DEV_CERTS / party / "client.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def certificate_pem_path(party: str) -> Path:
    return DEV_CERTS / party / "client.pem"


def payload_parts(count: int) -> list[MimePart]:
    """``count`` parts of different types, one of them binary with every byte value."""
    samples = [
        ("application/xml", b'<?xml version="1.0"?><bericht xmlns="urn:example">inhoud</bericht>'),
        ("application/octet-stream", bytes(range(256)) * 3),
        ("text/plain; charset=UTF-8", "tekst met é en €\r\n".encode()),
    ]
    return [
        MimePart(f"part{i}-{TIMESTAMP:%Y%m%d}@gemeente.example", *samples[i % len(samples)])
        for i in range(count)
    ]


def business_envelope(parts: Sequence[MimePart], *, sync_reply: bool = True) -> bytes:
    return build_business_message(
        cpa_id="dev-osb-rm-s",
        from_party=PartyId(GEMEENTE_OIN, "urn:osb:oin"),
        from_role="Gemeente",
        to_party=PartyId(RINIS_OIN, "urn:osb:oin"),
        to_role="GGk",
        service="ggk:berichtenverkeer:1.0",
        service_type="urn:osb:services",
        action="envelopHeenbericht-ggk_Di01",
        conversation_id="conv-1@gemeente.example",
        message_id="msg-1@gemeente.example",
        timestamp=TIMESTAMP,
        time_to_live=None,
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=sync_reply,
        content_ids=[p.content_id or "" for p in parts],
    ).envelope


def sign(
    envelope: bytes,
    parts: Sequence[MimePart],
    *,
    party: str = "gemeente",
    signature_algorithm: str = alg.RSA_SHA256,
    digest_algorithm: str = alg.SHA256,
) -> bytes:
    return sign_envelope(
        envelope,
        parts,
        key=private_key(party),
        certificate_der=certificate_der(party),
        signature_algorithm=signature_algorithm,
        digest_algorithm=digest_algorithm,
    )


def verify(
    envelope: bytes,
    parts: Sequence[MimePart],
    *,
    party: str = "gemeente",
    signature_algorithm: str | None = alg.RSA_SHA256,
    digest_algorithm: str | None = alg.SHA256,
    allow_sha1: bool = False,
) -> VerifiedSignature:
    return verify_envelope(
        envelope,
        parts,
        certificate_der=certificate_der(party),
        allowed_signature_algorithms=alg.accepted_signature_methods(allow_sha1=allow_sha1),
        allowed_digest_algorithms=alg.accepted_digests(allow_sha1=allow_sha1),
        expected_digest=digest_algorithm,
        expected_signature=signature_algorithm,
        allow_sha1=allow_sha1,
        at=TIMESTAMP,
    )
