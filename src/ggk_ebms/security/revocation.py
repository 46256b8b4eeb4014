"""Certificate chains and revocation: CRL, and OCSP where a certificate names a responder.

Used for partners' TLS client certificates (after the handshake, before any HTTP is read:
server/limits.py) and for signing certificates (before a signature is trusted:
pipeline/security.py). Digikoppeling requires PKIoverheid certificates (PKI001) and their
revocation status is published per CA as a CRL (CRL Distribution Points) and often via OCSP
(Authority Information Access); a revoked certificate must not be accepted.

- ``chain_to_trust``: the certificate is issued, through any intermediates in the trust store,
  by a root in the trust store: names match and every signature verifies (RFC 5280 §6, the
  signature and name-chaining parts; the TLS layer does the full path validation itself).
- ``RevocationChecker.status``: OCSP first when an http responder is named, then each http CRL
  distribution point. Answers are cached (a CRL until its nextUpdate, at most ``cache_seconds``;
  an OCSP answer likewise), downloads are size-capped and time-limited.
- A certificate naming neither CRL nor OCSP is "unchecked" and passes (the dev PKI in certs/dev
  has no CRL); when every named source fails, the mode decides: ``fail-closed`` refuses,
  ``fail-open`` accepts, each with a WARNING line saying which and why.

Fetching is blocking (urllib); callers run it off the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ggk_ebms.config import Settings
from ggk_ebms.inline import blocking_io
from ggk_ebms.logsafe import escape

log = logging.getLogger(__name__)

RevocationMode = Literal["fail-closed", "fail-open", "off"]
MAX_CRL_BYTES: Final = 20 * 1024 * 1024
MAX_OCSP_BYTES: Final = 64 * 1024
MAX_CHAIN: Final = 8

Fetch = Callable[[str, bytes | None, float], bytes]


@dataclass(frozen=True)
class Verdict:
    """The outcome for one certificate: ``ok`` or not, and a reason fit for a log line."""

    ok: bool
    status: Literal["good", "revoked", "unchecked", "unknown", "untrusted"]
    reason: str


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chain_to_trust(
    certificate: x509.Certificate, trust: Sequence[x509.Certificate], at: datetime | None = None
) -> list[x509.Certificate] | str:
    """The issuers from ``certificate`` up to a self-signed trust anchor, or why there is none."""
    moment = at or datetime.now(UTC)
    chain: list[x509.Certificate] = []
    current = certificate
    for _ in range(MAX_CHAIN):
        if current is not certificate and current.issuer == current.subject:
            return chain  # reached a self-signed certificate of the trust store
        issuer = next((c for c in trust if _signed_by(current, c)), None)
        if issuer is None:
            return f"no issuer of {escape(current.subject.rfc4514_string())} in the trust store"
        if not (issuer.not_valid_before_utc <= moment <= issuer.not_valid_after_utc):
            return f"issuer {escape(issuer.subject.rfc4514_string())} is not valid at {moment:%Y-%m-%d}"
        chain.append(issuer)
        current = issuer
    return "certificate chain too long"


def _http_fetch(url: str, body: bytes | None, timeout: float) -> bytes:
    """GET (or POST an OCSP request) over plain http; capped at MAX_CRL_BYTES."""
    if not url.lower().startswith("http://"):
        raise ValueError("only http:// CRL and OCSP addresses are fetched")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="POST" if body is not None else "GET"
    )
    if body is not None:
        request.add_header("Content-Type", "application/ocsp-request")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
        data: bytes = response.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise ValueError(f"answer from {url} larger than {MAX_CRL_BYTES} bytes")
    return data


def _http_urls(names: Sequence[x509.GeneralName]) -> list[str]:
    return [
        str(n.value)
        for n in names
        if isinstance(n, x509.UniformResourceIdentifier) and str(n.value).lower().startswith("http://")
    ]


def crl_urls(certificate: x509.Certificate) -> list[str]:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [url for point in points for url in _http_urls(point.full_name or [])]


def ocsp_urls(certificate: x509.Certificate) -> list[str]:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return _http_urls(
        [d.access_location for d in access if d.access_method == AuthorityInformationAccessOID.OCSP]
    )


@dataclass
class _Cached:
    expires: float
    crl: x509.CertificateRevocationList | None = None
    ocsp_status: Verdict | None = None


class RevocationChecker:
    """Chain and revocation checks with a cache; thread-safe."""

    def __init__(
        self,
        trust: Sequence[x509.Certificate],
        *,
        mode: RevocationMode = "fail-closed",
        cache_seconds: float = 3600.0,
        timeout: float = 5.0,
        fetch: Fetch = _http_fetch,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trust = list(trust)
        self.mode: RevocationMode = mode
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._fetch = fetch
        self._now = now
        self._monotonic = monotonic
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RevocationChecker:
        try:
            trust = x509.load_pem_x509_certificates(settings.tls_trust_store.read_bytes())
        except (OSError, ValueError):
            trust = []  # the TLS context reports a bad trust store with its own clear message
        mode: RevocationMode = settings.revocation_mode  # type: ignore[assignment]
        return cls(
            trust,
            mode=mode,
            cache_seconds=settings.revocation_cache_seconds,
            timeout=settings.revocation_fetch_timeout,
        )

    # -- public --------------------------------------------------------------------------------

    def check_der(self, der: bytes, *, what: str, chain: bool = False) -> Verdict:
        """Chain (when asked) and revocation of a DER certificate; logs a refusal or a fail-open."""
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            return Verdict(False, "untrusted", f"{what} is not a certificate")
        return self.check(certificate, what=what, chain=chain)

    def check(self, certificate: x509.Certificate, *, what: str, chain: bool = False) -> Verdict:
        issuers = chain_to_trust(certificate, self.trust, self._now())
        if isinstance(issuers, str):
            if chain:
                return self._log(Verdict(False, "untrusted", f"{what}: {issuers}"), certificate)
            issuer = None
        else:
            issuer = issuers[0] if issuers else None
        if self.mode == "off":
            return Verdict(True, "unchecked", "revocation checking is off")
        return self._log(self._revocation(certificate, issuer, what), certificate)

    # -- internals -----------------------------------------------------------------------------

    def _log(self, verdict: Verdict, certificate: x509.Certificate) -> Verdict:
        serial = format(certificate.serial_number, "x")
        if verdict.status in ("revoked", "untrusted"):
            log.warning("certificate refused (serial %s): %s", serial, verdict.reason)
        elif verdict.status == "unknown":
            if verdict.ok:
                log.warning(
                    "revocation status unknown, accepted (fail-open, serial %s): %s", serial, verdict.reason
                )
            else:
                log.warning(
                    "revocation status unknown, refused (fail-closed, serial %s): %s", serial, verdict.reason
                )
        return verdict

    def _revocation(
        self, certificate: x509.Certificate, issuer: x509.Certificate | None, what: str
    ) -> Verdict:
        ocsp_list, crl_list = ocsp_urls(certificate), crl_urls(certificate)
        if not ocsp_list and not crl_list:
            return Verdict(True, "unchecked", f"{what} names no CRL or OCSP responder")
        if issuer is None:
            return self._unknown(f"{what}: its issuer is not in the trust store, so no CRL can be checked")
        problems: list[str] = []
        for url in ocsp_list:
            try:
                verdict = self._ocsp(certificate, issuer, url, what)
            except Exception as exc:
                problems.append(f"OCSP {escape(url)}: {type(exc).__name__}: {escape(exc)}")
                continue
            if verdict.status in ("good", "revoked"):
                return verdict
            problems.append(verdict.reason)
        for url in crl_list:
            try:
                crl = self._crl(url, issuer)
            except Exception as exc:
                problems.append(f"CRL {escape(url)}: {type(exc).__name__}: {escape(exc)}")
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if revoked is not None:
                return Verdict(
                    False, "revoked", f"{what} was revoked on {revoked.revocation_date_utc:%Y-%m-%d} (CRL)"
                )
            return Verdict(True, "good", f"{what} is not on the CRL")
        return self._unknown("; ".join(problems))

    def _unknown(self, reason: str) -> Verdict:
        return Verdict(self.mode == "fail-open", "unknown", reason)

    def _cached(self, key: str) -> _Cached | None:
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None and entry.expires > self._monotonic():
            return entry
        return None

    def _store(self, key: str, entry: _Cached) -> None:
        with self._lock:
            if len(self._cache) > 1000:  # bounded, whatever the variety of certificates
                self._cache.clear()
            self._cache[key] = entry

    def _lifetime(self, next_update: datetime | None) -> float:
        if next_update is None:
            return self._cache_seconds
        return max(0.0, min(self._cache_seconds, (next_update - self._now()).total_seconds()))

    def _crl(self, url: str, issuer: x509.Certificate) -> x509.CertificateRevocationList:
        entry = self._cached(url)
        if entry is not None and entry.crl is not None:
            return entry.crl
        blocking_io("a CRL download")  # before the try of _revocation can see it
        data = self._fetch(url, None, self._timeout)
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise ValueError("the CRL is not signed by the certificate's issuer")
        next_update = crl.next_update_utc
        if next_update is not None and next_update < self._now():
            raise ValueError(f"the CRL expired at {next_update:%Y-%m-%dT%H:%M:%SZ}")
        self._store(url, _Cached(self._monotonic() + self._lifetime(next_update), crl=crl))
        return crl

    def _ocsp(self, certificate: x509.Certificate, issuer: x509.Certificate, url: str, what: str) -> Verdict:
        key = f"ocsp:{url}:{certificate.serial_number:x}:{issuer.fingerprint(hashes.SHA256()).hex()}"
        entry = self._cached(key)
        if entry is not None and entry.ocsp_status is not None:
            return entry.ocsp_status
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
        blocking_io("an OCSP request")
        data = self._fetch(url, request.public_bytes(serialization.Encoding.DER), self._timeout)
        if len(data) > MAX_OCSP_BYTES:
            raise ValueError("OCSP answer too large")
        response = ocsp.load_der_ocsp_response(data)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return Verdict(False, "unknown", f"OCSP {escape(url)}: {response.response_status.name}")
        if response.serial_number != certificate.serial_number:
            raise ValueError("OCSP answer is about another certificate")
        _verify_ocsp_signature(response, issuer)
        if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            when = response.revocation_time_utc
            verdict = Verdict(
                False,
                "revoked",
                f"{what} was revoked on {when:%Y-%m-%d} (OCSP)" if when else f"{what} was revoked (OCSP)",
            )
        elif response.certificate_status == ocsp.OCSPCertStatus.GOOD:
            verdict = Verdict(True, "good", f"{what} is good (OCSP)")
        else:
            return Verdict(False, "unknown", f"OCSP {escape(url)}: status unknown")
        self._store(
            key, _Cached(self._monotonic() + self._lifetime(response.next_update_utc), ocsp_status=verdict)
        )
        return verdict


def _verify_ocsp_signature(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """RFC 6960 §4.2.2.2: signed by the issuer itself or by a responder it delegated (EKU OCSPSigning)."""
    signer = issuer
    for candidate in response.certificates:
        if _signed_by(candidate, issuer):
            try:
                eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
                signer = candidate
                break
    public_key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            raise ValueError("unsupported OCSP signature")
    except InvalidSignature:
        raise ValueError("the OCSP answer's signature does not verify") from None
