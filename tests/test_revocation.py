"""Revocation and chains (security/revocation.py) against a test CA publishing a CRL and OCSP over
loopback HTTP: unit level, at the TLS layer of the real endpoint, and for signing certificates."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Certificate
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import EbmsError, ErrorCode
from ggk_ebms.pipeline.security import Decrypted, MessageSecurity
from ggk_ebms.security.revocation import RevocationChecker
from ggk_ebms.security.xmldsig import sign_envelope
from ggk_ebms.testing.pki import IssuedCertificate, create_ca
from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, PROJECT_ROOT, RINIS, cpa_folder, party_settings, running, url
from tests.limits_support import closed_by_server, tls_connect, write_identity
from tests.revocation_support import NOW, TestCa


@pytest.fixture
def test_ca() -> Iterator[TestCa]:
    ca = TestCa()
    try:
        yield ca
    finally:
        ca.close()


def checker(ca: TestCa, mode: str = "fail-closed") -> RevocationChecker:
    return RevocationChecker([ca.ca.certificate], mode=mode, timeout=5.0)  # type: ignore[arg-type]


def test_crl_good_and_revoked(test_ca: TestCa) -> None:
    good, bad = test_ca.issue(RINIS), test_ca.issue(RINIS)
    test_ca.revoke(bad)
    check = checker(test_ca)
    assert check.check(good.certificate, what="x").status == "good"
    verdict = check.check(bad.certificate, what="TLS client certificate")
    assert not verdict.ok and verdict.status == "revoked"
    assert "revoked" in verdict.reason and "(CRL)" in verdict.reason
    assert test_ca.requests == ["/ca.crl"]  # the second check came from the cache


def test_ocsp_is_asked_first_where_named(test_ca: TestCa) -> None:
    good, bad = test_ca.issue(RINIS, ocsp_responder=True), test_ca.issue(RINIS, ocsp_responder=True)
    test_ca.revoke(bad)
    check = checker(test_ca)
    assert check.check(good.certificate, what="x").reason.endswith("(OCSP)")
    verdict = check.check(bad.certificate, what="x")
    assert verdict.status == "revoked" and verdict.reason.endswith("(OCSP)")
    assert test_ca.requests == ["/ocsp", "/ocsp"]


@pytest.mark.parametrize(("mode", "accepted"), [("fail-closed", False), ("fail-open", True)])
def test_unreachable_crl_follows_the_mode(
    test_ca: TestCa, mode: str, accepted: bool, caplog: pytest.LogCaptureFixture
) -> None:
    issued = test_ca.issue(RINIS)
    test_ca.available = False
    verdict = checker(test_ca, mode).check(issued.certificate, what="x")
    assert verdict.status == "unknown" and verdict.ok is accepted
    assert any(("fail-open" if accepted else "fail-closed") in m for m in caplog.messages)


def test_certificate_without_revocation_info_is_unchecked(test_ca: TestCa) -> None:
    issued = test_ca.issue(RINIS, crl=False)
    verdict = checker(test_ca).check(issued.certificate, what="x")
    assert verdict.ok and verdict.status == "unchecked"


def test_chain_must_reach_the_trust_store(test_ca: TestCa) -> None:
    stranger = create_ca("unrelated TEST CA", not_before=NOW, not_after=NOW.replace(year=NOW.year + 1))
    verdict = checker(test_ca).check(stranger.certificate, what="signing certificate", chain=True)
    assert not verdict.ok and verdict.status == "untrusted" and "no issuer" in verdict.reason


def test_crl_signed_by_another_key_is_not_trusted(test_ca: TestCa) -> None:
    issued = test_ca.issue(RINIS)
    impostor = TestCa("revocation TEST CA")  # same name, other key
    try:
        check = RevocationChecker([impostor.ca.certificate], mode="fail-closed")
        # The certificate does not chain to the impostor; no CRL can be checked: refused.
        assert not check.check(issued.certificate, what="x").ok
    finally:
        impostor.close()


# -- over the wire -------------------------------------------------------------------------------


def _client_context(folder: Path, issued: IssuedCertificate) -> ssl.SSLContext:
    cert, key = write_identity(folder, "client", issued)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(peer.DEV / "ca.pem"))
    context.load_cert_chain(str(cert), str(key))
    return context


async def test_revoked_client_certificate_is_refused_after_the_handshake(
    tmp_path: Path, test_ca: TestCa
) -> None:
    good, bad = test_ca.issue(RINIS), test_ca.issue(RINIS)
    test_ca.revoke(bad)
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'r.db'}",
        cpa_folder(tmp_path),
        tls_trust_store=test_ca.trust_bundle(tmp_path / "trust"),
    )
    async with running(settings) as endpoint:
        reader, writer = await tls_connect(endpoint.port, _client_context(tmp_path / "bad", bad))
        writer.write(b"POST /ebms HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        assert await closed_by_server(reader) == b""  # no HTTP answer at all
        writer.close()
        answer = await peer.post(
            url(endpoint),
            peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True),
            ssl_context=_client_context(tmp_path / "good", good),
        )
        assert answer.status == 200 and b"Pong" in answer.body


# -- signing certificates ------------------------------------------------------------------------


def _signed_ping(issued: IssuedCertificate, channel: lookup.ResolvedChannel) -> bytes:
    from ggk_ebms.security.algorithms import signature_policy

    policy = signature_policy(channel.signature_algorithm, channel.hash_function, allow_sha1=False)
    return sign_envelope(
        peer.ping_envelope(CPA_RM, RINIS, GEMEENTE),
        [],
        key=issued.private_key,
        certificate_der=issued.der,
        signature_algorithm=policy.signature_method,
        digest_algorithm=policy.digest_method,
    )


def _rinis_signing_channel(issued: IssuedCertificate) -> lookup.ResolvedChannel:
    agreement = parse_agreement((PROJECT_ROOT / "cpa" / "dev-osb-rm-s.xml").read_bytes(), max_bytes=1 << 22)
    rinis = lookup.counterpart(agreement, lookup.own_party(agreement, [DEV_GEMEENTE_OIN]))
    channels = [lookup.resolve_channel(rinis, c) for c in rinis.channels]
    channel = next(c for c in channels if c.profile.signed and c.signing_certificate is not None)
    return dataclasses.replace(channel, signing_certificate=Certificate("revocation-test", issued.der))


@pytest.mark.parametrize("revoked", [True, False])
def test_signature_by_a_revoked_signing_certificate_is_a_security_failure(
    tmp_path: Path, test_ca: TestCa, revoked: bool
) -> None:
    issued = test_ca.issue(DEV_RINIS_OIN)
    if revoked:
        test_ca.revoke(issued)
    channel = _rinis_signing_channel(issued)
    settings = party_settings(
        "gemeente", tmp_path, "sqlite://", tmp_path, tls_trust_store=test_ca.trust_bundle(tmp_path / "trust")
    )
    security = MessageSecurity(settings)
    soap = _signed_ping(issued, channel)
    if not revoked:
        assert (
            security.open_inbound(soap, Decrypted.unencrypted(), sender=channel, timestamp=NOW).signature
            is not None
        )
        return
    with pytest.raises(EbmsError) as caught:
        security.open_inbound(soap, Decrypted.unencrypted(), sender=channel, timestamp=NOW)
    assert caught.value.code == ErrorCode.SECURITY_FAILURE
    assert "revoked" in caught.value.description


def test_signing_certificate_outside_the_trust_store_is_a_security_failure(
    tmp_path: Path, test_ca: TestCa
) -> None:
    issued = test_ca.issue(DEV_RINIS_OIN)
    channel = _rinis_signing_channel(issued)
    settings = party_settings("gemeente", tmp_path, "sqlite://", tmp_path)  # dev trust store only
    with pytest.raises(EbmsError) as caught:
        MessageSecurity(settings).open_inbound(
            _signed_ping(issued, channel), Decrypted.unencrypted(), sender=channel, timestamp=NOW
        )
    assert caught.value.code == ErrorCode.SECURITY_FAILURE
    assert "no issuer" in caught.value.description
