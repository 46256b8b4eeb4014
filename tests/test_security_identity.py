"""Peer identity and the client-certificate rule (Digikoppeling
BEV ch. 3-5 "Rule (Decision)", EB004, EB005, EB014)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN
from ggk_ebms.errors import AuthenticationError
from ggk_ebms.security.identity import (
    ACCEPTED_CPA_CERTIFICATE,
    ACCEPTED_GATEWAY,
    ACCEPTED_OIN,
    ClientCertMode,
    PeerIdentity,
    authorize_client,
    certificate_info,
    strip_oin_suffix,
)
from ggk_ebms.testing.pki import IssuedCertificate, create_ca, issue_client_certificate
from tests.endpoint import DEV

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=365)
GATEWAY_OIN = "00000099000000770000"


@pytest.fixture(scope="module")
def ca() -> IssuedCertificate:
    return create_ca("identity TEST CA", not_before=START, not_after=END)


def client(ca: IssuedCertificate, oin: str | None) -> IssuedCertificate:
    return issue_client_certificate(ca, oin=oin, common_name="peer", not_before=START, not_after=END)


@pytest.fixture(scope="module")
def rinis(ca: IssuedCertificate) -> PeerIdentity:
    return PeerIdentity.from_der(client(ca, DEV_RINIS_OIN).der)


@pytest.fixture(scope="module")
def rinis_other(ca: IssuedCertificate) -> PeerIdentity:
    """A second certificate with the same OIN, e.g. after renewal: not DER-equal to the CPA's."""
    return PeerIdentity.from_der(client(ca, DEV_RINIS_OIN).der)


@pytest.fixture(scope="module")
def gateway(ca: IssuedCertificate) -> PeerIdentity:
    return PeerIdentity.from_der(client(ca, GATEWAY_OIN).der)


@pytest.fixture(scope="module")
def no_oin(ca: IssuedCertificate) -> PeerIdentity:
    return PeerIdentity.from_der(client(ca, None).der)


def test_peer_identity_fields(ca: IssuedCertificate) -> None:
    issued = client(ca, DEV_RINIS_OIN)
    peer = PeerIdentity.from_der(issued.der)
    assert peer.der == issued.der
    assert peer.fingerprint_sha256 == hashlib.sha256(issued.der).hexdigest()
    assert ":" not in peer.fingerprint_sha256
    assert peer.fingerprint_sha256.islower()
    assert peer.oin == DEV_RINIS_OIN
    assert peer.subject == f"serialNumber={DEV_RINIS_OIN},CN=peer,O=ggk-ebms TEST - not for production,C=NL"
    assert "CN=identity TEST CA" in peer.issuer
    assert peer.not_before == START
    assert peer.not_after == END
    assert peer.not_before.tzinfo is not None
    assert peer.serial_number == issued.certificate.serial_number
    assert PeerIdentity.from_pem(issued.certificate_pem()) == peer
    assert PeerIdentity.from_pem(issued.certificate_pem().decode()) == peer
    assert peer.valid_at(START + timedelta(days=1))
    assert not peer.valid_at(END + timedelta(seconds=1))


def test_peer_without_oin(no_oin: PeerIdentity) -> None:
    assert no_oin.oin is None


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x01", b"-----BEGIN CERTIFICATE-----"])
def test_not_a_certificate(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a DER"):
        PeerIdentity.from_der(data)
    with pytest.raises(ValueError, match="not a PEM"):
        PeerIdentity.from_pem(data)


@pytest.mark.parametrize(
    ("party_id", "bare"),
    [
        ("00000099000001000000", "00000099000001000000"),
        ("00000099000001000000_O", "00000099000001000000"),
        ("00000099000001000000_T", "00000099000001000000"),
        ("00000099000001000000_A", "00000099000001000000"),
        ("00000099000001000000_OTA", "00000099000001000000"),
        ("00000099000001000000_TA", "00000099000001000000"),
        ("00000099000001000000_AO", "00000099000001000000"),
        # Not an environment suffix: left alone, so it cannot match a bare certificate OIN.
        ("00000099000001000000_P", "00000099000001000000_P"),
        ("00000099000001000000_TT", "00000099000001000000_TT"),
        ("00000099000001000000_OTAO", "00000099000001000000_OTAO"),
        ("00000099000001000000_t", "00000099000001000000_t"),
        ("00000099000001000000_", "00000099000001000000_"),
        ("_T", "_T"),
    ],
)
def test_strip_oin_suffix(party_id: str, bare: str) -> None:
    assert strip_oin_suffix(party_id) == bare


# (peer, CPA certificate, From PartyId, mode, may act for) -> accepted reason
ACCEPTED = [
    ("rinis", "rinis", DEV_RINIS_OIN, "strict", (), ACCEPTED_CPA_CERTIFICATE),
    ("rinis", "rinis", DEV_RINIS_OIN, "cpa-or-oin", (), ACCEPTED_CPA_CERTIFICATE),
    ("no_oin", "no_oin", DEV_RINIS_OIN, "cpa-or-oin", (), ACCEPTED_CPA_CERTIFICATE),
    ("rinis_other", "rinis", DEV_RINIS_OIN, "cpa-or-oin", (), ACCEPTED_OIN),
    ("rinis_other", None, DEV_RINIS_OIN, "cpa-or-oin", (), ACCEPTED_OIN),
    ("rinis_other", "rinis", DEV_RINIS_OIN + "_T", "cpa-or-oin", (), ACCEPTED_OIN),
    ("rinis_other", "rinis", DEV_RINIS_OIN + "_OTA", "cpa-or-oin", (), ACCEPTED_OIN),
    ("gateway", "rinis", DEV_RINIS_OIN, "cpa-or-oin", (GATEWAY_OIN,), ACCEPTED_GATEWAY),
    ("gateway", "rinis", DEV_RINIS_OIN + "_T", "cpa-or-oin", (GATEWAY_OIN + "_T",), ACCEPTED_GATEWAY),
]

# (peer, CPA certificate, From PartyId, mode, may act for) -> part of the refusal reason
REFUSED = [
    (None, "rinis", DEV_RINIS_OIN, "cpa-or-oin", (), "no TLS client certificate"),
    (None, "rinis", DEV_RINIS_OIN, "strict", (), "no TLS client certificate"),
    ("rinis_other", "rinis", DEV_RINIS_OIN, "strict", (), "is not the CPA's client certificate"),
    ("rinis_other", None, DEV_RINIS_OIN, "strict", (), "the CPA names no client certificate"),
    ("gateway", "rinis", DEV_RINIS_OIN, "strict", (GATEWAY_OIN,), "is not the CPA's client certificate"),
    (
        "gateway",
        "rinis",
        DEV_RINIS_OIN,
        "cpa-or-oin",
        (),
        f"OIN {GATEWAY_OIN} does not equal the From PartyId OIN {DEV_RINIS_OIN}",
    ),
    (
        "rinis_other",
        "rinis",
        DEV_GEMEENTE_OIN + "_T",
        "cpa-or-oin",
        (GATEWAY_OIN,),
        f"OIN {DEV_RINIS_OIN} does not equal the From PartyId OIN {DEV_GEMEENTE_OIN} nor on the",
    ),
    ("no_oin", "rinis", DEV_RINIS_OIN, "cpa-or-oin", (), "carries no OIN"),
    # A malformed suffix is not stripped, so the bare certificate OIN does not match it.
    ("rinis_other", "rinis", DEV_RINIS_OIN + "_P", "cpa-or-oin", (), "does not equal the From PartyId"),
]


def _peer(name: str | None, request: pytest.FixtureRequest) -> PeerIdentity | None:
    if name is None:
        return None
    peer = request.getfixturevalue(name)
    assert isinstance(peer, PeerIdentity)
    return peer


@pytest.mark.parametrize(("peer", "cpa_cert", "from_party", "mode", "may_act_for", "reason"), ACCEPTED)
def test_authorize_client_accepts(
    request: pytest.FixtureRequest,
    peer: str,
    cpa_cert: str | None,
    from_party: str,
    mode: ClientCertMode,
    may_act_for: tuple[str, ...],
    reason: str,
) -> None:
    cpa_peer = _peer(cpa_cert, request)
    decision = authorize_client(
        _peer(peer, request),
        cpa_client_cert_der=cpa_peer.der if cpa_peer else None,
        from_party_id=from_party,
        mode=mode,
        may_act_for=may_act_for,
    )
    assert decision == reason


@pytest.mark.parametrize(("peer", "cpa_cert", "from_party", "mode", "may_act_for", "reason"), REFUSED)
def test_authorize_client_refuses(
    request: pytest.FixtureRequest,
    peer: str | None,
    cpa_cert: str | None,
    from_party: str,
    mode: ClientCertMode,
    may_act_for: tuple[str, ...],
    reason: str,
) -> None:
    cpa_peer = _peer(cpa_cert, request)
    with pytest.raises(AuthenticationError) as refused:
        authorize_client(
            _peer(peer, request),
            cpa_client_cert_der=cpa_peer.der if cpa_peer else None,
            from_party_id=from_party,
            mode=mode,
            may_act_for=may_act_for,
        )
    assert reason in str(refused.value)
    assert refused.value.http_status == 403
    assert refused.value.faultcode == "Client"


def test_unknown_mode_is_a_programming_error(rinis: PeerIdentity) -> None:
    with pytest.raises(ValueError, match="unknown client certificate mode"):
        authorize_client(
            rinis,
            cpa_client_cert_der=rinis.der,
            from_party_id=DEV_RINIS_OIN,
            mode="lenient",  # type: ignore[arg-type]
        )


def test_certificate_info(ca: IssuedCertificate) -> None:
    issued = client(ca, DEV_GEMEENTE_OIN)
    info = certificate_info(issued.der)
    assert info["oin"] == DEV_GEMEENTE_OIN
    assert info["fingerprint_sha256"] == hashlib.sha256(issued.der).hexdigest()
    assert info["not_before"] == "2026-01-01T00:00:00+00:00"
    assert info["not_after"] == END.isoformat()
    assert int(info["serial_number"], 16) == issued.certificate.serial_number
    assert "CN=peer" in info["subject"]
    assert "CN=identity TEST CA" in info["issuer"]
    assert certificate_info(client(ca, None).der)["oin"] == ""


def test_an_identity_is_read_once_per_certificate_and_bad_bytes_are_refused_every_time() -> None:
    der = PeerIdentity.from_pem((DEV / "rinis" / "client.pem").read_bytes()).der
    first = PeerIdentity.from_der(der)
    assert PeerIdentity.from_der(bytearray(der)) is first  # the same certificate: the same identity
    for _ in range(2):
        with pytest.raises(ValueError, match="DER"):
            PeerIdentity.from_der(b"not a certificate")
