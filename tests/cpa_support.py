"""Shared material for the CPA tests: throwaway certificates and CPA requests built from them.

Certificates use P-256 keys (fast to make); a CPA only carries the certificate, and our CPA code
does not care about the key type. Nothing here is a test.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from conftest import require_shared
from ggk_ebms.cpa.create import AgreementRequest, PartyRequest, create_agreement
from ggk_ebms.cpa.model import Profile
from ggk_ebms.cpa.schema import load_schema

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GEMEENTE_OIN = "00000099000003630000"
RINIS_OIN = "00000099000001000000"
CERT_START = datetime(2026, 1, 1, tzinfo=UTC)
CERT_END = datetime(2030, 1, 1, tzinfo=UTC)


def make_cert(
    cn: str,
    oin: str | None,
    *,
    not_before: datetime = CERT_START,
    not_after: datetime = CERT_END,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if oin:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
    subject = x509.Name(attrs)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(signing_key, hashes.SHA256())
    )
    return cert, key


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


@functools.cache
def party_pems(oin: str) -> tuple[bytes, bytes]:
    """(server PEM, client PEM) for a party, made once per test run."""
    server, _ = make_cert("localhost", oin)
    client, _ = make_cert(f"client {oin}", oin)
    return pem(server), pem(client)


def party(name: str, oin: str, endpoint: str, role: str, **changes: object) -> PartyRequest:
    server, client = party_pems(oin)
    fields: dict[str, object] = {
        "name": name,
        "oin": oin,
        "endpoint": endpoint,
        "server_cert_pem": server,
        "client_cert_pem": client,
        "role": role,
    }
    fields.update(changes)
    return PartyRequest(**fields)  # type: ignore[arg-type]


def request(profile: Profile = Profile.OSB_RM, **changes: object) -> AgreementRequest:
    fields: dict[str, object] = {
        "party": party("Gemeente Test", GEMEENTE_OIN, "https://gemeente.example/ebms", "Gemeente"),
        "partner": party("RINIS Test", RINIS_OIN, "https://rinis.example/ebms", "GGk"),
        "start": datetime(2026, 1, 1, tzinfo=UTC),
        "end": datetime(2029, 12, 31, tzinfo=UTC),
        "profile": profile,
    }
    fields.update(changes)
    return AgreementRequest(**fields)  # type: ignore[arg-type]


@functools.cache
def cpa_bytes(profile: Profile = Profile.OSB_RM) -> bytes:
    return create_agreement(request(profile))


def mutate(data: bytes, old: str, new: str, count: int = -1) -> bytes:
    """``data`` with ``old`` replaced; fails loudly when ``old`` is absent, so a test cannot go stale."""
    assert old.encode() in data, f"{old!r} not in the CPA"
    return data.replace(old.encode(), new.encode(), count)


def official_schema_path() -> Path:
    return require_shared("spec", "ebms-xsd", "ebms-core-local", "cpp-cpa-2_0.xsd")


def official_schema():  # type: ignore[no-untyped-def]
    return load_schema(official_schema_path())


def shared_cpas() -> list[Path]:
    folder = require_shared("interop", "ebms-core")
    return sorted(p for p in folder.glob("*cpas/*.xml") if p.name != "keystore.cer.keyinfo.xml")


def shared_cpa(folder: str, name: str) -> bytes:
    return require_shared("interop", "ebms-core", folder, name).read_bytes()


def later(days: int) -> datetime:
    return NOW + timedelta(days=days)
