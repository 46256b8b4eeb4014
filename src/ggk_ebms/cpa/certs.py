"""Certificates as a CPA carries them: ``Certificate/ds:KeyInfo/ds:X509Data/ds:X509Certificate``.

A KeyInfo may hold a whole chain in any order; the one that matters for TLS, signing and
encryption is the leaf. The leaf is the certificate whose subject is no other certificate's
issuer; when that does not single one out (one certificate, or a self-signed set) the first is
taken, as CPPA 2.0 §8.4.36 lists the end-entity certificate first by convention.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from ggk_ebms import ns

_X509_CERTIFICATE = f"{{{ns.DS}}}X509Data/{{{ns.DS}}}X509Certificate"


@dataclass(frozen=True)
class DecodedKeyInfo:
    """What a KeyInfo yielded: the leaf (if any), every certificate read, and what went wrong."""

    leaf: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]
    problems: tuple[str, ...]


def decode_key_info(key_info: etree._Element | None) -> DecodedKeyInfo:
    """Decode every X509Certificate (base64, whitespace allowed) under ``key_info``."""
    if key_info is None:
        return DecodedKeyInfo(None, (), ("no ds:KeyInfo",))
    certs: list[x509.Certificate] = []
    problems: list[str] = []
    for n, element in enumerate(key_info.iterfind(_X509_CERTIFICATE), start=1):
        text = "".join((element.text or "").split())
        try:
            der = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"X509Certificate {n} is not valid base64")
            continue
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            problems.append(f"X509Certificate {n} is not a DER X.509 certificate")
    if not certs and not problems:
        problems.append("no ds:X509Data/ds:X509Certificate in the KeyInfo")
    return DecodedKeyInfo(choose_leaf(certs), tuple(certs), tuple(problems))


def choose_leaf(certs: list[x509.Certificate]) -> x509.Certificate | None:
    """The certificate that issued none of the others; the first one when that is ambiguous."""
    if not certs:
        return None
    issuers = {c.issuer for c in certs if c.issuer != c.subject}
    leaves = [c for c in certs if c.subject not in issuers]
    return leaves[0] if leaves else certs[0]


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def sha256_fingerprint(der: bytes) -> str:
    """Colon-separated upper-case SHA-256 fingerprint, as certificate viewers show it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def oin_of(cert: x509.Certificate) -> str | None:
    """The OIN in ``subject.serialNumber`` (OID 2.5.4.5; PKI001, IDA6), or None."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def validity(cert: x509.Certificate) -> tuple[datetime, datetime]:
    """notBefore and notAfter as aware UTC datetimes."""
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def load_der(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)
