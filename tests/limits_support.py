"""Helpers for the limit and hostile-traffic tests: raw TLS connections and extra dev certificates."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ggk_ebms.security.keys import load_private_key
from ggk_ebms.testing.pki import IssuedCertificate, issue_client_certificate
from tests.peer import DEV, client_ssl

UNKNOWN_OIN = "00000099000009990000"  # a test OIN that is a party of no CPA


def dev_ca() -> IssuedCertificate:
    key = load_private_key(DEV / "ca-key.pem")
    assert isinstance(key, rsa.RSAPrivateKey)
    return IssuedCertificate(x509.load_pem_x509_certificate((DEV / "ca.pem").read_bytes()), key)


def write_identity(folder: Path, name: str, issued: IssuedCertificate) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert.write_bytes(issued.certificate_pem())
    key.write_bytes(
        issued.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


def stranger_ssl(folder: Path, oin: str = UNKNOWN_OIN) -> ssl.SSLContext:
    """A client context with a certificate the trust store accepts but no CPA names."""
    now = datetime.now(UTC)
    issued = issue_client_certificate(
        dev_ca(),
        oin=oin,
        common_name="stranger",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    cert, key = write_identity(folder, "stranger", issued)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(DEV / "ca.pem"))
    context.load_cert_chain(str(cert), str(key))
    return context


async def tls_connect(
    port: int, context: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", port, ssl=context or client_ssl(), server_hostname="localhost"
    )


async def closed_by_server(reader: asyncio.StreamReader, deadline: float = 30.0) -> bytes:
    """Everything the server still sends until it closes; fails when it does not close in time.

    The deadline is generous (many times any configured timeout): this waits for an event.
    """
    data = b""
    async with asyncio.timeout(deadline):
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk
