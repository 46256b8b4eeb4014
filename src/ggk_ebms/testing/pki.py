"""A small test PKI: CAs and PKIoverheid-shaped leaf certificates, minted in memory.

Everything this module makes is TEST MATERIAL. Subjects say so in their organisation name and the
OIN in ``subject.serialNumber`` must be a test OIN (prefix ``00000099``, OIN-stelsel ch. 6, IDA6),
so a certificate from here can never be mistaken for a production PKIoverheid certificate.

The shapes follow what the endpoint checks (Digikoppeling BEV ch. 3-5): the OIN in serialNumber (PKI001, OID
2.5.4.5), RSA 2048 keys because the ``-s``/``-e`` profiles sign with rsa-sha256 and transport keys
with RSA-OAEP (Digikoppeling BEV ch. 5), a server certificate for ``localhost`` and a client certificate that
also serves as signing and encryption certificate in the dev CPAs.

Pure: validity is always passed in (the core never reads the clock); only key generation and
serial numbers use the operating system's random source, as they must.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ggk_ebms.config import TEST_ORGANIZATION

TEST_OIN_PREFIX: Final = "00000099"
RSA_KEY_BITS: Final = 2048

_OIN = re.compile(r"[0-9]{20}")


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, as minted by this module."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM; unencrypted unless a passphrase is given (dev material is unencrypted)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def check_test_oin(oin: str) -> str:
    """Refuse anything but a 20-digit test OIN (OIN-stelsel ch. 6: prefix 00000099 marks a test OIN)."""
    if not _OIN.fullmatch(oin):
        raise ValueError(f"OIN must be 20 digits, got {oin!r}")
    if not oin.startswith(TEST_OIN_PREFIX):
        raise ValueError(f"test certificates carry test OINs only (prefix {TEST_OIN_PREFIX}), got {oin}")
    return oin


def generate_key() -> rsa.RSAPrivateKey:
    """RSA 2048: rsa-sha256 signing and RSA-OAEP key transport need RSA (Digikoppeling BEV ch. 5)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def labelled_subject(common_name: str, oin: str | None = None) -> x509.Name:
    """Subject with the test label in O and, when given, the OIN in serialNumber (PKI001)."""
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if oin is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, check_test_oin(oin)))
    return x509.Name(attributes)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("validity bounds must be timezone-aware datetimes")
    return moment.astimezone(UTC)


def _builder(
    subject: x509.Name,
    issuer: IssuedCertificate | None,
    public_key: rsa.RSAPublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    start, end = _aware(not_before), _aware(not_after)
    if end <= start:
        raise ValueError("not_after must lie after not_before")
    issuer_name = subject if issuer is None else issuer.certificate.subject
    issuer_key = public_key if issuer is None else issuer.private_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
    )


def create_ca(
    common_name: str,
    *,
    not_before: datetime,
    not_after: datetime,
    issuer: IssuedCertificate | None = None,
    path_length: int | None = None,
) -> IssuedCertificate:
    """A self-signed root CA, or an intermediate CA when ``issuer`` is given.

    PKIoverheid chains have four levels (Digikoppeling BEV ch. 3-5, CERT7); intermediates let tests build such
    chains. The dev PKI itself uses a single root to keep the committed set small.
    """
    key = generate_key()
    signer = key if issuer is None else issuer.private_key
    certificate = (
        _builder(labelled_subject(common_name), issuer, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signer, hashes.SHA256())
    )
    return IssuedCertificate(certificate, key)


def _issue_leaf(
    ca: IssuedCertificate,
    subject: x509.Name,
    not_before: datetime,
    not_after: datetime,
    *,
    eku: x509.ObjectIdentifier,
    non_repudiation: bool,
    alternative_names: Sequence[x509.GeneralName] = (),
) -> IssuedCertificate:
    """An end-entity certificate: RSA key, digitalSignature + keyEncipherment (plus
    nonRepudiation for signing certificates), one extended key usage, optional SANs."""
    key = generate_key()
    builder = (
        _builder(subject, ca, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=non_repudiation,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    )
    if alternative_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(alternative_names)), critical=False)
    return IssuedCertificate(builder.sign(ca.private_key, hashes.SHA256()), key)


def issue_server_certificate(
    ca: IssuedCertificate,
    *,
    oin: str | None,
    not_before: datetime,
    not_after: datetime,
    common_name: str = "localhost",
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
) -> IssuedCertificate:
    """A TLS server certificate (EKU serverAuth) for the given names, OIN in serialNumber."""
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    return _issue_leaf(
        ca,
        labelled_subject(common_name, oin),
        not_before,
        not_after,
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
        non_repudiation=False,
        alternative_names=names,
    )


def issue_client_certificate(
    ca: IssuedCertificate,
    *,
    oin: str | None,
    common_name: str,
    not_before: datetime,
    not_after: datetime,
) -> IssuedCertificate:
    """A TLS client certificate (EKU clientAuth) that doubles as signing and encryption certificate.

    keyUsage digitalSignature + nonRepudiation sign messages (``-s`` profiles); keyEncipherment lets
    the partner wrap the payload key with RSA-OAEP to it (``-e`` profiles; Digikoppeling BEV ch. 5).
    ``oin=None``
    mints a certificate without OIN, which the client-certificate
    rule must refuse (Digikoppeling BEV ch. 3-5).
    """
    return _issue_leaf(
        ca,
        labelled_subject(common_name, oin),
        not_before,
        not_after,
        eku=ExtendedKeyUsageOID.CLIENT_AUTH,
        non_repudiation=True,
    )


@dataclass(frozen=True)
class DevParty:
    """One party of the dev PKI: folder name under certs/dev/, display name and OIN."""

    folder: str
    name: str
    oin: str
    # Names the server certificate is for: a test set-up reached by host name needs that name in
    # it (the public endpoint URL's host must be in the server certificate, docs/operations.md).
    dns_names: tuple[str, ...] = ("localhost",)


def dev_pki_files(parties: Sequence[DevParty], *, not_before: datetime, days: int) -> dict[str, bytes]:
    """The dev PKI as ``{relative path: content}``: ca.pem, ca-key.pem and per party
    ``<folder>/{server,client}.pem`` and ``<folder>/{server,client}-key.pem``.

    Returned, not written: the caller (the ``dev-certs`` command) does the file I/O.
    """
    if days < 1:
        raise ValueError("validity must be at least one day")
    not_after = _aware(not_before) + timedelta(days=days)
    ca = create_ca("ggk-ebms TEST dev CA", not_before=not_before, not_after=not_after, path_length=0)
    files = {"ca.pem": ca.certificate_pem(), "ca-key.pem": ca.private_key_pem()}
    for party in parties:
        server = issue_server_certificate(
            ca,
            oin=party.oin,
            not_before=not_before,
            not_after=not_after,
            common_name=party.dns_names[0],
            dns_names=party.dns_names,
        )
        client = issue_client_certificate(
            ca,
            oin=party.oin,
            common_name=f"{party.name} TEST client",
            not_before=not_before,
            not_after=not_after,
        )
        files[f"{party.folder}/server.pem"] = server.certificate_pem()
        files[f"{party.folder}/server-key.pem"] = server.private_key_pem()
        files[f"{party.folder}/client.pem"] = client.certificate_pem()
        files[f"{party.folder}/client-key.pem"] = client.private_key_pem()
    return files
