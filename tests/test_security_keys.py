"""Private key loading with passphrases from the environment or a file, and key/certificate matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ggk_ebms.errors import ConfigError
from ggk_ebms.security.keys import (
    key_matches_certificate,
    load_private_key,
    parse_private_key,
    read_passphrase,
)
from ggk_ebms.testing.pki import IssuedCertificate, create_ca, issue_client_certificate

START = datetime(2026, 1, 1, tzinfo=UTC)
PASSPHRASE = "s3cret passphrase"
DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"


@pytest.fixture(scope="module")
def leaf() -> IssuedCertificate:
    ca = create_ca("keys TEST CA", not_before=START, not_after=START + timedelta(days=30))
    return issue_client_certificate(
        ca, oin=None, common_name="keys", not_before=START, not_after=START + timedelta(days=30)
    )


@pytest.fixture
def encrypted_key(tmp_path: Path, leaf: IssuedCertificate) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(leaf.private_key_pem(passphrase=PASSPHRASE.encode()))
    return path


def test_unencrypted_dev_key_loads_and_matches_its_certificate() -> None:
    key = load_private_key(DEV / "gemeente" / "client-key.pem")
    cert = (DEV / "gemeente" / "client.pem").read_bytes()
    der = x509.load_pem_x509_certificate(cert).public_bytes(Encoding.DER)
    assert key_matches_certificate(key, der)
    other = x509.load_pem_x509_certificate((DEV / "gemeente" / "server.pem").read_bytes())
    assert not key_matches_certificate(key, other.public_bytes(Encoding.DER))


def test_key_matching(leaf: IssuedCertificate) -> None:
    assert key_matches_certificate(leaf.private_key, leaf.der)
    assert not key_matches_certificate(ec.generate_private_key(ec.SECP256R1()), leaf.der)
    assert not key_matches_certificate(leaf.private_key, b"not a certificate")


def test_encrypted_key_with_passphrase_from_environment(encrypted_key: Path, leaf: IssuedCertificate) -> None:
    key = load_private_key(encrypted_key, passphrase_env="KEY_PASS", environ={"KEY_PASS": PASSPHRASE})
    assert key_matches_certificate(key, leaf.der)


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_encrypted_key_with_passphrase_from_file(
    tmp_path: Path, encrypted_key: Path, leaf: IssuedCertificate, ending: str
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_bytes((PASSPHRASE + ending).encode())
    key = load_private_key(encrypted_key, passphrase_file=secret, environ={})
    assert key_matches_certificate(key, leaf.der)


def test_encrypted_key_without_passphrase(encrypted_key: Path) -> None:
    with pytest.raises(ConfigError, match=r"key\.pem is encrypted; give its passphrase"):
        load_private_key(encrypted_key, environ={})


def test_wrong_passphrase_names_the_file_not_the_passphrase(encrypted_key: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_private_key(encrypted_key, passphrase_env="KEY_PASS", environ={"KEY_PASS": "guess-123"})
    assert str(encrypted_key) in str(refused.value)
    assert "wrong passphrase" in str(refused.value)
    assert "guess-123" not in str(refused.value)
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__


def test_configured_passphrase_with_unencrypted_key_is_accepted(leaf: IssuedCertificate) -> None:
    key = parse_private_key(leaf.private_key_pem(), b"shared passphrase", source="k.pem")
    assert key_matches_certificate(key, leaf.der)


def test_der_key_is_read(leaf: IssuedCertificate) -> None:
    der = leaf.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert key_matches_certificate(parse_private_key(der, None, source="k.der"), leaf.der)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"passphrase_env": "MISSING"}, "environment variable MISSING .* is not set"),
        ({"passphrase_env": "EMPTY"}, "environment variable EMPTY .* is not set or empty"),
        ({"passphrase_file": Path("/nonexistent/passphrase")}, "passphrase file /nonexistent/passphrase"),
        (
            {"passphrase_env": "KEY_PASS", "passphrase_file": Path("p")},
            "key_passphrase_env or key_passphrase_file, not both",
        ),
    ],
)
def test_passphrase_source_problems(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_passphrase(environ={"EMPTY": "", "KEY_PASS": "x"}, **kwargs)  # type: ignore[arg-type]


def test_empty_passphrase_file(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_passphrase(passphrase_file=secret)


def test_no_passphrase_configured() -> None:
    assert read_passphrase(environ={}) is None


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_not_a_key(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad-key.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"bad-key\.pem"):
        load_private_key(path, environ={})


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"private key file .*absent\.pem cannot be read"):
        load_private_key(tmp_path / "absent.pem", environ={})
