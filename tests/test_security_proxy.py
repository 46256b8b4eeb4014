"""The proxy client-certificate header is honoured only from
allow-listed TCP peers (Digikoppeling BEV ch. 3-5, SEC26 F2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from ggk_ebms.config import DEV_RINIS_OIN
from ggk_ebms.errors import ConfigError
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.security.proxy import client_cert_from_proxy, parse_allowlist, peer_is_allowed
from ggk_ebms.testing.pki import IssuedCertificate, create_ca, issue_client_certificate

START = datetime(2026, 1, 1, tzinfo=UTC)
ALLOWLIST = ("10.0.0.5", "192.168.10.0/24", "fd00::/64")


@pytest.fixture(scope="module")
def issued() -> IssuedCertificate:
    ca = create_ca("proxy TEST CA", not_before=START, not_after=START + timedelta(days=30))
    return issue_client_certificate(
        ca, oin=DEV_RINIS_OIN, common_name="via proxy", not_before=START, not_after=START + timedelta(days=30)
    )


@pytest.fixture(scope="module")
def header(issued: IssuedCertificate) -> str:
    """The certificate as an offloader sends it: URL-encoded PEM (nginx $ssl_client_escaped_cert)."""
    return quote(issued.certificate_pem().decode("ascii"), safe="")


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("10.0.0.5", True),
        ("::ffff:10.0.0.5", True),  # the same proxy seen through a dual-stack socket
        ("192.168.10.77", True),
        ("fd00::1", True),
        ("10.0.0.6", False),
        ("192.168.11.1", False),
        ("127.0.0.1", False),
        ("fd01::1", False),
        ("", False),
        ("proxy.example", False),
        ("/run/ggk.sock", False),
    ],
)
def test_peer_allow_list(peer: str, allowed: bool) -> None:
    assert peer_is_allowed(peer, ALLOWLIST) is allowed


def test_header_from_allow_listed_proxy_is_used(issued: IssuedCertificate, header: str) -> None:
    der = client_cert_from_proxy(header, "10.0.0.5", ALLOWLIST)
    assert der == issued.der
    assert PeerIdentity.from_der(der).oin == DEV_RINIS_OIN


def test_forged_header_from_other_address_is_ignored(header: str) -> None:
    # A direct caller that sends the header itself claims someone else's certificate: ignored.
    assert client_cert_from_proxy(header, "203.0.113.9", ALLOWLIST) is None
    assert client_cert_from_proxy(header, "10.0.0.5", ()) is None


@pytest.mark.parametrize("value", [None, "", "   ", "not%20a%20certificate", "-----BEGIN CERTIFICATE-----"])
def test_missing_or_unreadable_header_gives_nothing(value: str | None) -> None:
    assert client_cert_from_proxy(value, "10.0.0.5", ALLOWLIST) is None


def test_two_certificates_in_one_header_are_refused(issued: IssuedCertificate) -> None:
    doubled = quote((issued.certificate_pem() * 2).decode("ascii"), safe="")
    assert client_cert_from_proxy(doubled, "10.0.0.5", ALLOWLIST) is None


@pytest.mark.parametrize("entry", ["proxy.example", "10.0.0.0/33", "10.0.0.1/24"])
def test_bad_allow_list_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError, match="proxy_allowlist entry"):
        parse_allowlist([entry])
