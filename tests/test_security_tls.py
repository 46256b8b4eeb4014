"""Real TLS handshakes on loopback against the contexts of ggk_ebms.security.tls (Digikoppeling BEV ch. 3-5).

Each test runs one server handshake in a thread on an ephemeral port and one client handshake in
the test, then looks at what each side saw. A refusal must come from the server: the server-side
handshake has to fail, so a client that could not even send its offer does not count as a pass.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ggk_ebms.config import DEV_RINIS_OIN, Settings
from ggk_ebms.errors import ConfigError
from ggk_ebms.security import tls as tls_module
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.security.keys import load_private_key
from ggk_ebms.security.tls import (
    TLS12_CIPHERS,
    TLS13_CIPHERS,
    client_context,
    client_context_from_settings,
    is_safe_cipher,
    server_context,
    server_context_from_settings,
)
from ggk_ebms.testing.pki import (
    IssuedCertificate,
    create_ca,
    issue_client_certificate,
    issue_server_certificate,
)

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
CA = DEV / "ca.pem"
START = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT = 10.0


@dataclass
class Side:
    """What one side of a handshake ended with: the connection details, or the error."""

    error: BaseException | None = None
    version: str | None = None
    cipher: str | None = None
    peer_der: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _record(side: Side, tls: ssl.SSLSocket) -> None:
    side.version = tls.version()
    cipher = tls.cipher()
    side.cipher = cipher[0] if cipher else None
    side.peer_der = tls.getpeercert(binary_form=True)


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> tuple[Side, Side]:
    """One connection: the server answers b"ok" after its handshake, the client reads it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    server_side, client_side = Side(), Side()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            with server.wrap_socket(conn, server_side=True) as tls:
                _record(server_side, tls)
                tls.sendall(b"ok")
                tls.recv(1)  # wait for the client to close
        except (OSError, ssl.SSLError) as exc:
            if server_side.version is None:
                server_side.error = exc
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            client.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            _record(client_side, tls)
            # TLS 1.3: the server judges our certificate after the client's handshake ends,
            # so a refusal shows up on the first read.
            if tls.recv(2) != b"ok":
                raise ConnectionError("server closed the connection")
    except (OSError, ssl.SSLError, ConnectionError) as exc:
        client_side.error = exc
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "server thread hung"
    return server_side, client_side


def gemeente_server() -> ssl.SSLContext:
    return server_context(DEV / "gemeente" / "server.pem", DEV / "gemeente" / "server-key.pem", CA)


def rinis_client(check_hostname: bool = True) -> ssl.SSLContext:
    return client_context(
        DEV / "rinis" / "client.pem", DEV / "rinis" / "client-key.pem", CA, check_hostname=check_hostname
    )


def bare_client(*, maximum: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    """A client without our policy, to play the peer that offers what we refuse."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(CA)
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def write(tmp_path: Path, name: str, issued: IssuedCertificate) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
    cert.write_bytes(issued.certificate_pem())
    key.write_bytes(issued.private_key_pem())
    return cert, key


@pytest.fixture(scope="module")
def dev_ca() -> IssuedCertificate:
    """The committed dev CA with its key, to mint extra certificates it vouches for."""
    key = load_private_key(DEV / "ca-key.pem")
    assert isinstance(key, rsa.RSAPrivateKey)
    return IssuedCertificate(x509.load_pem_x509_certificate(CA.read_bytes()), key)


@pytest.fixture(scope="module")
def other_ca() -> IssuedCertificate:
    return create_ca("another TEST CA", not_before=START, not_after=START + timedelta(days=3650))


def test_mutual_handshake_succeeds_and_exposes_the_client_certificate() -> None:
    server, client = handshake(gemeente_server(), rinis_client())
    assert server.ok, server.error
    assert client.ok, client.error
    assert server.peer_der is not None
    assert PeerIdentity.from_der(server.peer_der).oin == DEV_RINIS_OIN
    assert server.version == "TLSv1.3"
    assert server.cipher in TLS13_CIPHERS


def test_tls12_handshake_negotiates_an_ecdhe_aead_suite() -> None:
    client = rinis_client()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    server, client_side = handshake(gemeente_server(), client)
    assert server.ok, server.error
    assert client_side.ok, client_side.error
    assert server.version == "TLSv1.2"
    assert server.cipher is not None
    assert is_safe_cipher(server.cipher, server.version)
    assert server.cipher == TLS12_CIPHERS[1]  # server preference: ECDHE-RSA-AES256-GCM first for RSA


def test_handshake_without_client_certificate_is_refused() -> None:
    server, client = handshake(gemeente_server(), bare_client())
    assert isinstance(server.error, ssl.SSLError)
    assert "did not return a certificate" in str(server.error)
    assert not client.ok


def test_client_certificate_from_another_ca_is_refused(tmp_path: Path, other_ca: IssuedCertificate) -> None:
    # Same OIN and shape as the real RINIS certificate, only the issuer differs.
    forged = issue_client_certificate(
        other_ca,
        oin=DEV_RINIS_OIN,
        common_name="RINIS TEST client",
        not_before=START,
        not_after=START + timedelta(days=3650),
    )
    cert, key = write(tmp_path, "forged", forged)
    server, client = handshake(gemeente_server(), client_context(cert, key, CA))
    assert isinstance(server.error, ssl.SSLError)
    assert "certificate verify failed" in str(server.error)
    assert not client.ok


def test_expired_client_certificate_is_refused(tmp_path: Path, dev_ca: IssuedCertificate) -> None:
    expired = issue_client_certificate(
        dev_ca,
        oin=DEV_RINIS_OIN,
        common_name="RINIS TEST client (expired)",
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2021, 1, 1, tzinfo=UTC),
    )
    cert, key = write(tmp_path, "expired", expired)
    server, client = handshake(gemeente_server(), client_context(cert, key, CA))
    assert isinstance(server.error, ssl.SSLError)
    assert "expired" in str(server.error)
    assert not client.ok


def test_tls11_offer_is_refused() -> None:
    # SECLEVEL=0 lets this OpenSSL build even offer TLS 1.1 with its legacy suites.
    client = bare_client(maximum=ssl.TLSVersion.TLSv1_2, ciphers="ALL:@SECLEVEL=0")
    client.load_cert_chain(DEV / "rinis" / "client.pem", DEV / "rinis" / "client-key.pem")
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        client.maximum_version = ssl.TLSVersion.TLSv1_1
    server, client_side = handshake(gemeente_server(), client)
    assert isinstance(server.error, ssl.SSLError), "the server must see and refuse the TLS 1.1 offer"
    assert "unsupported protocol" in str(server.error).lower()
    assert not client_side.ok


def test_tls12_offer_of_only_cbc_and_rsa_key_exchange_suites_is_refused() -> None:
    legacy = ":".join(
        (
            "AES128-SHA",  # RSA key exchange, CBC
            "AES256-GCM-SHA384",  # RSA key exchange, AEAD
            "ECDHE-RSA-AES128-SHA",  # ECDHE, CBC
            "ECDHE-RSA-AES256-SHA384",  # ECDHE, CBC
        )
    )
    client = bare_client(maximum=ssl.TLSVersion.TLSv1_2, ciphers=legacy)
    client.load_cert_chain(DEV / "rinis" / "client.pem", DEV / "rinis" / "client-key.pem")
    server, client_side = handshake(gemeente_server(), client)
    assert isinstance(server.error, ssl.SSLError)
    assert "no shared cipher" in str(server.error)
    assert not client_side.ok


def test_every_enabled_suite_is_on_the_safe_list() -> None:
    for context in (gemeente_server(), rinis_client()):
        ciphers = context.get_ciphers()
        assert ciphers
        for cipher in ciphers:
            assert is_safe_cipher(cipher["name"], cipher["protocol"]), cipher["name"]
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.options & ssl.OP_NO_COMPRESSION
        assert context.options & ssl.OP_NO_RENEGOTIATION
    # Only good suites are enabled, so the client's order decides.
    assert not gemeente_server().options & ssl.OP_CIPHER_SERVER_PREFERENCE


def _only_group(context: ssl.SSLContext, group: str) -> ssl.SSLContext:
    """Make a client offer one key exchange group only (via the same OpenSSL call as the server)."""
    lib = tls_module._libssl()
    pointer = tls_module._ssl_ctx_pointer(context, lib)
    assert pointer is not None
    assert lib.SSL_CTX_ctrl(pointer, 92, 0, group.encode("ascii")) == 1
    return context


@pytest.mark.parametrize("group", ["ffdhe2048", "secp521r1", "X448"])
@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_groups_outside_the_shortlist_are_refused(group: str, maximum: ssl.TLSVersion) -> None:
    client = rinis_client()
    client.maximum_version = maximum
    server_side, client_side = handshake(gemeente_server(), _only_group(client, group))
    assert not server_side.ok and not client_side.ok


@pytest.mark.parametrize("group", ["X25519", "secp256r1", "secp384r1"])
def test_groups_on_the_shortlist_are_accepted(group: str) -> None:
    server_side, client_side = handshake(gemeente_server(), _only_group(rinis_client(), group))
    assert server_side.ok and client_side.ok, (server_side.error, client_side.error)


def test_server_groups_are_the_shortlist() -> None:
    groups = tls_module.set_groups(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert groups[-3:] == ("X25519", "secp256r1", "secp384r1")
    assert set(groups) <= {"X25519MLKEM768", "X25519", "secp256r1", "secp384r1"}


def test_the_client_order_of_suites_decides() -> None:
    for first, second in (TLS12_CIPHERS[4:6], TLS12_CIPHERS[0:2]):
        client = rinis_client()
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.set_ciphers(f"{first}:{second}:{':'.join(TLS12_CIPHERS)}")
        _server_side, client_side = handshake(gemeente_server(), client)
        assert client_side.ok, client_side.error
        # The dev certificates are RSA: the first RSA suite in the client's list wins.
        rsa_first = first if "RSA" in first else second
        assert client_side.cipher == rsa_first


@pytest.mark.parametrize(
    ("name", "protocol", "safe"),
    [
        ("TLS_AES_256_GCM_SHA384", "TLSv1.3", True),
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2", True),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLSv1.2", True),
        ("AES256-GCM-SHA384", "TLSv1.2", False),  # RSA key exchange: no forward secrecy
        ("ECDHE-RSA-AES256-SHA384", "TLSv1.2", False),  # CBC
        ("DES-CBC3-SHA", "TLSv1.2", False),
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.1", False),
        ("TLS_AES_256_GCM_SHA384", "TLSv1.2", False),
    ],
)
def test_safe_cipher_table(name: str, protocol: str, safe: bool) -> None:
    assert is_safe_cipher(name, protocol) is safe


def test_client_refuses_server_from_another_ca(tmp_path: Path, other_ca: IssuedCertificate) -> None:
    impostor = issue_server_certificate(
        other_ca, oin=None, not_before=START, not_after=START + timedelta(days=3650)
    )
    cert, key = write(tmp_path, "impostor", impostor)
    # The impostor trusts the dev CA, so only our client's verification can stop this.
    server, client = handshake(server_context(cert, key, CA), rinis_client())
    assert isinstance(client.error, ssl.SSLCertVerificationError)
    assert not server.ok


def test_client_checks_the_host_name() -> None:
    server, client = handshake(gemeente_server(), rinis_client(), server_hostname="partner.example")
    assert not server.ok
    assert isinstance(client.error, ssl.SSLCertVerificationError)
    assert "hostname" in str(client.error).lower() or "host name" in str(client.error).lower()


def test_client_without_host_name_check_still_verifies_the_chain() -> None:
    server, client = handshake(gemeente_server(), rinis_client(check_hostname=False), server_hostname="x")
    assert server.ok, server.error
    assert client.ok, client.error


# --- configuration problems name the file ------------------------------------------------------


def test_missing_certificate_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"TLS server certificate file .*nope\.pem does not exist"):
        server_context(missing, DEV / "gemeente" / "server-key.pem", CA)


def test_key_of_another_certificate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"client-key\.pem does not belong to TLS server certificate"):
        server_context(DEV / "gemeente" / "server.pem", DEV / "gemeente" / "client-key.pem", CA)


def test_trust_store_without_certificates_is_a_config_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"trust store file .*empty\.pem holds no PEM certificate"):
        client_context(DEV / "gemeente" / "client.pem", DEV / "gemeente" / "client-key.pem", empty)


def test_encrypted_key_needs_its_passphrase(tmp_path: Path, other_ca: IssuedCertificate) -> None:
    leaf = issue_server_certificate(other_ca, oin=None, not_before=START, not_after=START + timedelta(days=1))
    cert, key = tmp_path / "s.pem", tmp_path / "s-key.pem"
    cert.write_bytes(leaf.certificate_pem())
    key.write_bytes(leaf.private_key_pem(passphrase=b"correct horse"))
    with pytest.raises(ConfigError, match=r"s-key\.pem is encrypted"):
        server_context(cert, key, CA)
    with pytest.raises(ConfigError, match=r"s-key\.pem cannot be decrypted") as refused:
        server_context(cert, key, CA, passphrase=b"wrong")
    assert "wrong" not in str(refused.value).replace("wrong passphrase", "")
    context = server_context(cert, key, CA, passphrase=b"correct horse")
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_contexts_from_settings_use_the_configured_passphrase(
    tmp_path: Path, dev_ca: IssuedCertificate
) -> None:
    server = issue_server_certificate(
        dev_ca, oin=None, not_before=START, not_after=START + timedelta(days=3650)
    )
    client = issue_client_certificate(
        dev_ca, oin=DEV_RINIS_OIN, common_name="c", not_before=START, not_after=START + timedelta(days=3650)
    )
    for name, issued in (("server", server), ("client", client)):
        (tmp_path / f"{name}.pem").write_bytes(issued.certificate_pem())
        (tmp_path / f"{name}-key.pem").write_bytes(issued.private_key_pem(passphrase=b"from-env"))
    settings = Settings(
        tls_server_cert=tmp_path / "server.pem",
        tls_server_key=tmp_path / "server-key.pem",
        tls_client_cert=tmp_path / "client.pem",
        tls_client_key=tmp_path / "client-key.pem",
        tls_trust_store=CA,
        key_passphrase_env="TLS_KEY_PASS",
    )
    environ = {"TLS_KEY_PASS": "from-env"}
    server_side, client_side = handshake(
        server_context_from_settings(settings, environ), client_context_from_settings(settings, environ)
    )
    assert server_side.ok, server_side.error
    assert client_side.ok, client_side.error
    with pytest.raises(ConfigError, match="TLS_KEY_PASS"):
        server_context_from_settings(settings, {})
