"""The test PKI minting functions, the committed dev PKI in certs/dev/, and ``ggk-ebms dev-certs``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ggk_ebms.cli.devcerts_cmd import dev_certs
from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN
from ggk_ebms.security.identity import oin_of
from ggk_ebms.security.keys import key_matches_certificate, load_private_key
from ggk_ebms.testing.pki import (
    TEST_ORGANIZATION,
    DevParty,
    IssuedCertificate,
    check_test_oin,
    create_ca,
    dev_pki_files,
    issue_client_certificate,
    issue_server_certificate,
)

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=3650)
PARTY_OINS = {"gemeente": DEV_GEMEENTE_OIN, "rinis": DEV_RINIS_OIN}
LEAVES = [(party, kind) for party in PARTY_OINS for kind in ("server", "client")]


def issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    """Signature check of ``certificate`` with the CA's key (RSA PKCS#1 v1.5, as minted)."""
    public_key = ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert certificate.signature_hash_algorithm is not None
    try:
        public_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            certificate.signature_hash_algorithm,
        )
    except Exception:
        return False
    return certificate.issuer == ca.subject


def extended_key_usage(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture(scope="module")
def ca() -> IssuedCertificate:
    return create_ca("pki TEST CA", not_before=START, not_after=END)


# --- minting --------------------------------------------------------------------------------------


def test_ca_is_a_self_signed_ca(ca: IssuedCertificate) -> None:
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert issued_by(ca.certificate, ca.certificate)
    assert ca.private_key.key_size == 2048


def test_intermediate_ca_chains_to_its_root(ca: IssuedCertificate) -> None:
    intermediate = create_ca(
        "pki TEST intermediate", not_before=START, not_after=END, issuer=ca, path_length=0
    )
    leaf = issue_client_certificate(
        intermediate, oin=DEV_RINIS_OIN, common_name="leaf", not_before=START, not_after=END
    )
    assert issued_by(intermediate.certificate, ca.certificate)
    assert issued_by(leaf.certificate, intermediate.certificate)
    assert not issued_by(leaf.certificate, ca.certificate)


def test_server_certificate_shape(ca: IssuedCertificate) -> None:
    server = issue_server_certificate(ca, oin=DEV_GEMEENTE_OIN, not_before=START, not_after=END)
    cert = server.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == TEST_ORGANIZATION
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert extended_key_usage(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert oin_of(cert) == DEV_GEMEENTE_OIN
    assert server.private_key.key_size == 2048


def test_client_certificate_shape(ca: IssuedCertificate) -> None:
    client = issue_client_certificate(ca, oin=DEV_RINIS_OIN, common_name="c", not_before=START, not_after=END)
    usage = client.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment  # nonRepudiation
    assert usage.key_encipherment
    assert not usage.key_cert_sign
    assert extended_key_usage(client.certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oin_of(client.certificate) == DEV_RINIS_OIN


def test_certificate_without_oin(ca: IssuedCertificate) -> None:
    client = issue_client_certificate(ca, oin=None, common_name="c", not_before=START, not_after=END)
    assert client.certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER) == []


def test_expired_certificate_can_be_minted(ca: IssuedCertificate) -> None:
    old = issue_client_certificate(
        ca,
        oin=DEV_RINIS_OIN,
        common_name="old",
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2020, 6, 1, tzinfo=UTC),
    )
    assert old.certificate.not_valid_after_utc < START


@pytest.mark.parametrize(
    ("oin", "message"),
    [
        ("00000001000001000000", "test OINs only"),  # a production prefix
        ("0000009900000100000", "20 digits"),
        ("0000009900000100000X", "20 digits"),
    ],
)
def test_only_test_oins_are_minted(oin: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_test_oin(oin)


def test_validity_bounds_are_checked(ca: IssuedCertificate) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_ca("x", not_before=datetime(2026, 1, 1), not_after=END)
    with pytest.raises(ValueError, match="after not_before"):
        issue_client_certificate(ca, oin=None, common_name="x", not_before=END, not_after=START)


def test_encrypted_key_pem(ca: IssuedCertificate, tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(ca.private_key_pem(passphrase=b"pw"))
    assert b"ENCRYPTED" in path.read_bytes()
    key = load_private_key(path, passphrase_env="PW", environ={"PW": "pw"})
    assert key_matches_certificate(key, ca.der)


def test_dev_pki_files_layout() -> None:
    files = dev_pki_files([DevParty("a", "A", DEV_GEMEENTE_OIN)], not_before=START, days=2)
    assert sorted(files) == [
        "a/client-key.pem",
        "a/client.pem",
        "a/server-key.pem",
        "a/server.pem",
        "ca-key.pem",
        "ca.pem",
    ]
    server = x509.load_pem_x509_certificate(files["a/server.pem"])
    assert server.not_valid_after_utc == START + timedelta(days=2)


# --- the committed dev PKI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_ca() -> x509.Certificate:
    return x509.load_pem_x509_certificate((DEV / "ca.pem").read_bytes())


def test_committed_ca_key_matches(dev_ca: x509.Certificate) -> None:
    key = load_private_key(DEV / "ca-key.pem", environ={})
    assert key_matches_certificate(key, dev_ca.public_bytes(Encoding.DER))


@pytest.mark.parametrize(("party", "kind"), LEAVES)
def test_committed_certificate(dev_ca: x509.Certificate, party: str, kind: str) -> None:
    cert = x509.load_pem_x509_certificate((DEV / party / f"{kind}.pem").read_bytes())
    assert issued_by(cert, dev_ca)
    assert oin_of(cert) == PARTY_OINS[party]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == TEST_ORGANIZATION
    assert cert.not_valid_before_utc == START
    assert cert.not_valid_after_utc == END
    # In date for the foreseeable future of this project: the check is against the real date on
    # purpose, so an outdated committed set fails loudly instead of breaking TLS tests obscurely.
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    expected = ExtendedKeyUsageOID.SERVER_AUTH if kind == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    assert extended_key_usage(cert) == [expected]
    key = load_private_key(DEV / party / f"{kind}-key.pem", environ={})
    assert key_matches_certificate(key, cert.public_bytes(Encoding.DER))


def test_committed_readme_says_test_material() -> None:
    text = (DEV / "README.md").read_text(encoding="utf-8")
    assert "NEVER FOR PRODUCTION" in text
    assert DEV_GEMEENTE_OIN in text
    assert DEV_RINIS_OIN in text


# --- ggk-ebms dev-certs ---------------------------------------------------------------------------


def test_dev_certs_command_writes_the_set_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    runner = CliRunner()
    first = runner.invoke(dev_certs, ["--out", str(out), "--days", "30", "--not-before", "2026-03-01"])
    assert first.exit_code == 0, first.output
    assert "TEST MATERIAL" in first.output
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == sorted(
        ["README.md", "ca.pem", "ca-key.pem"]
        + [f"{party}/{kind}{suffix}.pem" for party, kind in LEAVES for suffix in ("", "-key")]
    )
    ca_cert = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    rinis = x509.load_pem_x509_certificate((out / "rinis" / "client.pem").read_bytes())
    assert issued_by(rinis, ca_cert)
    assert oin_of(rinis) == DEV_RINIS_OIN
    assert rinis.not_valid_before_utc == datetime(2026, 3, 1, tzinfo=UTC)
    assert rinis.not_valid_after_utc == datetime(2026, 3, 31, tzinfo=UTC)
    assert "--not-before 2026-03-01 --days 30" in (out / "README.md").read_text(encoding="utf-8")

    before = (out / "ca.pem").read_bytes()
    again = runner.invoke(dev_certs, ["--out", str(out)])
    assert again.exit_code == 1
    assert "use --force" in again.output
    assert (out / "ca.pem").read_bytes() == before

    forced = runner.invoke(dev_certs, ["--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert (out / "ca.pem").read_bytes() != before


def test_dev_certs_rejects_zero_days(tmp_path: Path) -> None:
    result = CliRunner().invoke(dev_certs, ["--out", str(tmp_path), "--days", "0"])
    assert result.exit_code == 2
    assert not (tmp_path / "ca.pem").exists()
