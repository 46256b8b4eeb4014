"""Who is on the other end of the TLS connection, and may they speak for the message's From party.

The handshake (``tls.server_context``) proves that the client certificate chains to a trusted CA.
This module takes the next step of the client-certificate rule (Digikoppeling BEV ch. 3-5, "Rule (Decision)"):
for the party whose PartyId is ``eb:From/eb:PartyId`` in the CPA named by ``eb:CPAId``, accept only if

1. the certificate is DER-identical to that party's ``ClientCertificateRef`` certificate, or
2. its OIN (``subject.serialNumber``, PKI001) equals the From OIN with any ``_O``/``_T``/``_A``
   suffix stripped (EB004: certificates carry the bare OIN; IDA4/EB005: authorise on the OIN), or
3. its OIN is on the CPA's explicit "may act for" list (gateways, EB014).

Anything else is an ``AuthenticationError``: HTTP 403 with a SOAP Fault, nothing stored. Strict
mode allows (1) only. Pure: certificates in, a decision out.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ggk_ebms.errors import AuthenticationError

ClientCertMode = Literal["strict", "cpa-or-oin"]

ACCEPTED_CPA_CERTIFICATE: Final = "certificate equals the CPA's client certificate"
ACCEPTED_OIN: Final = "certificate OIN equals the From PartyId"
ACCEPTED_GATEWAY: Final = "gateway OIN allowed"

# RFC 4514 only names a few attributes; spell out the one that carries the OIN for operators.
_READABLE_NAMES: Final = {NameOID.SERIAL_NUMBER: "serialNumber"}

# EB004: an environment suffix of O, T and/or A, each letter at most once (_O, _T, _OTA, _TA ...).
_SUFFIX = re.compile(r"^(?P<oin>.+)_(?P<env>(?!.*(.).*\3)[OTA]{1,3})$")


@dataclass(frozen=True)
class PeerIdentity:
    """A certificate as the authorisation rule sees it."""

    der: bytes
    fingerprint_sha256: str
    subject: str
    issuer: str
    oin: str | None
    not_before: datetime
    not_after: datetime
    serial_number: int

    @classmethod
    def from_der(cls, der: bytes) -> PeerIdentity:
        """Read a DER certificate; ValueError when it is not one.

        Every request on a connection presents the same certificate, and a partner has only a
        few: the identity is read once per certificate (bounded cache; it is immutable and
        depends on the bytes alone), not once per message (docs/performance.md).
        """
        return _identity_of_der(bytes(der))

    @classmethod
    def from_pem(cls, pem: bytes | str) -> PeerIdentity:
        """Read the first certificate of a PEM text; ValueError when there is none."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise ValueError("not a PEM-encoded X.509 certificate") from None
        return cls._of(certificate)

    @classmethod
    def _of(cls, certificate: x509.Certificate) -> PeerIdentity:
        der = certificate.public_bytes(Encoding.DER)
        return cls(
            der=der,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            subject=certificate.subject.rfc4514_string(_READABLE_NAMES),
            issuer=certificate.issuer.rfc4514_string(_READABLE_NAMES),
            oin=oin_of(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            serial_number=certificate.serial_number,
        )

    def valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment <= self.not_after


@functools.lru_cache(maxsize=256)
def _identity_of_der(der: bytes) -> PeerIdentity:
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError("not a DER-encoded X.509 certificate") from None
    return PeerIdentity._of(certificate)


def oin_of(certificate: x509.Certificate) -> str | None:
    """The OIN in ``subject.serialNumber`` (OID 2.5.4.5, PKI001), or None.

    A subject with several differing serialNumber values names no single OIN, so it gets None
    rather than whichever value happens to come first.
    """
    values = {
        str(attribute.value).strip()
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    }
    return values.pop() if len(values) == 1 else None


def strip_oin_suffix(party_id: str) -> str:
    """The bare OIN of a PartyId: ``..._T`` -> ``...`` (EB004; certificates carry the bare OIN)."""
    match = _SUFFIX.match(party_id)
    return match.group("oin") if match else party_id


def authorize_client(
    peer: PeerIdentity | None,
    *,
    cpa_client_cert_der: bytes | None,
    from_party_id: str,
    mode: ClientCertMode,
    may_act_for: Collection[str] = (),
) -> str:
    """Decide whether ``peer`` may send as ``from_party_id``; return why, or raise why not.

    ``cpa_client_cert_der`` is the From party's ``ClientCertificateRef`` certificate in the CPA
    (None when the CPA names none); ``may_act_for`` holds the gateway OINs the CPA allows to send
    for that party. Raises AuthenticationError (403) with a reason fit for the log and the Fault.
    """
    if mode not in ("strict", "cpa-or-oin"):
        raise ValueError(f"unknown client certificate mode {mode!r}")
    if peer is None:
        raise AuthenticationError("no TLS client certificate was presented")
    if cpa_client_cert_der is not None and peer.der == cpa_client_cert_der:
        return ACCEPTED_CPA_CERTIFICATE
    if mode == "strict":
        if cpa_client_cert_der is None:
            raise AuthenticationError(
                f"strict client certificate mode: the CPA names no client certificate for {from_party_id}"
            )
        raise AuthenticationError(
            f"strict client certificate mode: the TLS client certificate (SHA-256 "
            f"{peer.fingerprint_sha256}) is not the CPA's client certificate for {from_party_id}"
        )
    if peer.oin is None:
        raise AuthenticationError(
            "the TLS client certificate carries no OIN in subject serialNumber and is not the "
            f"CPA's client certificate for {from_party_id}"
        )
    expected = strip_oin_suffix(from_party_id)
    if peer.oin == expected:
        return ACCEPTED_OIN
    if peer.oin in {strip_oin_suffix(gateway) for gateway in may_act_for}:
        return ACCEPTED_GATEWAY
    gateways = " nor on the CPA's may-act-for list" if may_act_for else ""
    raise AuthenticationError(
        f"TLS client certificate OIN {peer.oin} does not equal the From PartyId OIN {expected}{gateways}"
    )


def certificate_info(der: bytes) -> dict[str, str]:
    """Subject, issuer, OIN, fingerprint and validity as text, for ``cpa show``-style output."""
    peer = PeerIdentity.from_der(der)
    return {
        "subject": peer.subject,
        "issuer": peer.issuer,
        "oin": peer.oin or "",
        "fingerprint_sha256": peer.fingerprint_sha256,
        "serial_number": format(peer.serial_number, "x"),
        "not_before": peer.not_before.isoformat(),
        "not_after": peer.not_after.isoformat(),
    }
