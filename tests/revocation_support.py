"""A test CA that publishes a CRL and answers OCSP over loopback HTTP (a free port).

``TestCa.issue(...)`` mints client certificates whose CRL Distribution Point (and, when asked,
OCSP responder) point at this CA's little HTTP server; ``revoke`` puts a certificate on the next
CRL and makes the responder say "revoked".
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from ggk_ebms.testing.pki import IssuedCertificate, create_ca, issue_client_certificate
from tests.peer import DEV

NOW = datetime.now(UTC)


class TestCa:
    __test__ = False  # not a test class for pytest

    def __init__(self, name: str = "revocation TEST CA") -> None:
        self.ca = create_ca(name, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=365))
        self.revoked: dict[int, datetime] = {}
        self.requests: list[str] = []
        self.available = True
        ca = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self, body: bytes, content_type: str) -> None:
                if not ca.available:
                    self.send_response(503)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                ca.requests.append(self.path)
                self._answer(ca.crl_der(), "application/pkix-crl")

            def do_POST(self) -> None:
                ca.requests.append(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                request = ocsp.load_der_ocsp_request(self.rfile.read(length))
                self._answer(ca.ocsp_answer(request), "application/ocsp-response")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def crl_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ca.crl"

    @property
    def ocsp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def issue(self, oin: str, *, ocsp_responder: bool = False, crl: bool = True) -> IssuedCertificate:
        plain = issue_client_certificate(
            self.ca,
            oin=oin,
            common_name=f"client {oin}",
            not_before=NOW - timedelta(hours=1),
            not_after=NOW + timedelta(days=90),
        )
        old = plain.certificate
        builder = (
            x509.CertificateBuilder()
            .subject_name(old.subject)
            .issuer_name(old.issuer)
            .public_key(plain.private_key.public_key())
            .serial_number(old.serial_number)
            .not_valid_before(old.not_valid_before_utc)
            .not_valid_after(old.not_valid_after_utc)
        )
        for extension in old.extensions:
            builder = builder.add_extension(extension.value, extension.critical)
        if crl:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        if ocsp_responder:
            access = x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(self.ocsp_url)
            )
            builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
        return IssuedCertificate(builder.sign(self.ca.private_key, hashes.SHA256()), plain.private_key)

    def revoke(self, issued: IssuedCertificate) -> None:
        self.revoked[issued.certificate.serial_number] = NOW - timedelta(minutes=5)

    def crl_der(self) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca.certificate.subject)
            .last_update(NOW - timedelta(hours=1))
            .next_update(NOW + timedelta(days=1))
        )
        for serial, when in self.revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(self.ca.private_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp_answer(self, request: ocsp.OCSPRequest) -> bytes:
        serial = request.serial_number
        revoked_at = self.revoked.get(serial)
        # The responder needs the certificate itself; a stand-in with the asked serial suffices
        # for the CertID (it hashes the issuer's name and key, and takes the serial).
        stand_in = (
            x509.CertificateBuilder()
            .subject_name(self.ca.certificate.subject)
            .issuer_name(self.ca.certificate.subject)
            .public_key(self.ca.private_key.public_key())
            .serial_number(serial)
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=1))
            .sign(self.ca.private_key, hashes.SHA256())
        )
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=stand_in,
                issuer=self.ca.certificate,
                algorithm=hashes.SHA256(),
                cert_status=ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD,
                this_update=NOW - timedelta(minutes=1),
                next_update=NOW + timedelta(hours=1),
                revocation_time=revoked_at,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca.certificate)
        )
        return builder.sign(self.ca.private_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def trust_bundle(self, folder: Path) -> Path:
        """The dev CA (our server's issuer) plus this CA, as one PEM trust store."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "trust.pem"
        path.write_bytes((DEV / "ca.pem").read_bytes() + self.ca.certificate_pem())
        return path
