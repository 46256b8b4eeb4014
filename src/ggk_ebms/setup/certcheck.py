"""Checks on a gemeente's own PKIoverheid certificates before they go into the settings file.

What ``ggk-ebms init`` asks of each certificate (Digikoppeling Koppelvlakstandaard ebMS2 and the
PKIoverheid programme of requirements, as digested in docs/security.md):

- the private key belongs to the certificate;
- the certificate chains, through the intermediates in its own file, to a CA in the trust store,
  and every signature on the way verifies;
- the OIN in ``subject.serialNumber`` (PKI001) is the organisation's OIN;
- it is valid now, and not about to expire (a warning, so renewal is planned in time);
- its key usage fits its job: a server certificate for TLS server authentication, a client
  certificate for TLS client authentication and for signing (digitalSignature).

Pure: certificates, a key and the time come in, findings go out; files are read by the caller.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ggk_ebms.security.identity import oin_of
from ggk_ebms.security.keys import key_matches_certificate

Role = Literal["server", "client"]
EXPIRY_WARNING: Final = timedelta(days=30)
MAX_CHAIN: Final = 8


@dataclass(frozen=True)
class CertFinding:
    error: bool
    text: str


def is_test_certificate(certificate: x509.Certificate) -> bool:
    """True for the project's own test PKI (``ggk-ebms dev-certs``): its subject or issuer says so.

    The marker is declared in config.py, so this check never imports the test-only package.
    """
    from ggk_ebms.config import TEST_ORGANIZATION

    for name in (certificate.subject, certificate.issuer):
        for attribute in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
            if attribute.value == TEST_ORGANIZATION:
                return True
    return False


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def chain_problem(
    chain: Sequence[x509.Certificate], trust: Sequence[x509.Certificate], now: datetime
) -> str | None:
    """None when ``chain[0]`` chains to a trust-store CA; otherwise why not.

    ``chain[1:]`` are intermediates sent along in the certificate file. Each step must have the
    issuer's subject as its issuer name and a signature that verifies with the issuer's key.
    """
    trusted = {_der(c) for c in trust}
    candidates = list(trust) + list(chain[1:])
    current = chain[0]
    for _ in range(MAX_CHAIN):
        if _der(current) in trusted:
            return None
        issuers = [c for c in candidates if c.subject == current.issuer and _der(c) != _der(current)]
        verified = None
        for issuer in issuers:
            try:
                current.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            verified = issuer
            break
        if verified is None:
            return f"does not chain to the trust store: no trusted issuer {current.issuer.rfc4514_string()}"
        if not verified.not_valid_before_utc <= now <= verified.not_valid_after_utc:
            return f"CA {verified.subject.rfc4514_string()} on its chain is not valid now"
        if _der(verified) in trusted:
            return None
        current = verified
    return "chain too long"


def _usage_problems(certificate: x509.Certificate, role: Role) -> list[str]:
    problems = []
    wanted = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if wanted not in eku:
            problems.append(f"extended key usage lacks {'serverAuth' if role == 'server' else 'clientAuth'}")
    except x509.ExtensionNotFound:
        pass  # no EKU: not restricted
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return problems
    if role == "server" and not (usage.digital_signature or usage.key_encipherment):
        problems.append("key usage allows neither digitalSignature nor keyEncipherment (TLS server)")
    if role == "client" and not usage.digital_signature:
        problems.append("key usage lacks digitalSignature (TLS client authentication and signing)")
    return problems


def check_certificate(
    role: Role,
    chain: Sequence[x509.Certificate],
    key: PrivateKeyTypes,
    trust: Sequence[x509.Certificate],
    *,
    oin: str,
    now: datetime,
    allow_test: bool,
) -> list[CertFinding]:
    """Every finding about one certificate (file content ``chain``) and its key."""
    findings: list[CertFinding] = []
    leaf = chain[0]
    if not key_matches_certificate(key, _der(leaf)):
        findings.append(CertFinding(True, "the private key does not belong to this certificate"))
    problem = chain_problem(chain, trust, now)
    if problem:
        findings.append(CertFinding(True, problem))
    found = oin_of(leaf)
    if found != oin:
        findings.append(CertFinding(True, f"carries OIN {found or '(none)'} in serialNumber, not {oin}"))
    if leaf.not_valid_before_utc > now:
        findings.append(CertFinding(True, f"not valid before {leaf.not_valid_before_utc:%Y-%m-%d}"))
    elif leaf.not_valid_after_utc < now:
        findings.append(CertFinding(True, f"expired on {leaf.not_valid_after_utc:%Y-%m-%d}"))
    elif leaf.not_valid_after_utc < now + EXPIRY_WARNING:
        findings.append(
            CertFinding(False, f"expires on {leaf.not_valid_after_utc:%Y-%m-%d}: order its successor")
        )
    findings += [CertFinding(True, text) for text in _usage_problems(leaf, role)]
    if is_test_certificate(leaf) and not allow_test:
        findings.append(
            CertFinding(
                True,
                "is a ggk-ebms TEST certificate (dev-certs): only with --test-setup, never in production",
            )
        )
    return findings


def names_of(certificate: x509.Certificate) -> list[str]:
    """The host names and addresses a server certificate is for (SAN; the CN without a SAN)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(address) for address in san.get_values_for_type(x509.IPAddress)]
    return names


def host_in_certificate(host: str, certificate: x509.Certificate) -> bool:
    """RFC 6125 matching as TLS clients do it: exact name, a one-label wildcard, or an IP address."""
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in names_of(certificate):
        name = name.lower().rstrip(".")
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                continue
            continue
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False
