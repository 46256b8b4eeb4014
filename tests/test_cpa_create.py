"""``create_agreement``: every profile, the BP defaults, CPAId style, refused requests, and the dev CPAs."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT
from cpa_support import NOW, cpa_bytes, make_cert, official_schema, pem, request
from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN
from ggk_ebms.cpa.certs import der_of
from ggk_ebms.cpa.create import DEFAULT_ACTIONS, DEFAULT_SERVICE, create_agreement, default_cpa_id
from ggk_ebms.cpa.lint import validate_cpa
from ggk_ebms.cpa.lookup import own_party, resolve_channel
from ggk_ebms.cpa.model import Profile
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.cpa.summary import agreement_profiles
from ggk_ebms.errors import CpaInvalidError


@pytest.mark.parametrize("profile", list(Profile))
def test_every_profile_derives_back(profile: Profile) -> None:
    agreement = parse_agreement(cpa_bytes(profile))
    assert agreement_profiles(agreement) == [profile.value]
    assert validate_cpa(cpa_bytes(profile), now=NOW, schema=official_schema()).ok


def test_bp_defaults_are_written() -> None:
    agreement = parse_agreement(cpa_bytes(Profile.OSB_RM))
    assert agreement.status == "agreed"
    gemeente = agreement.parties[0]
    assert [(p.value, p.type) for p in gemeente.party_ids] == [("00000099000003630000", "urn:osb:oin")]
    channel = resolve_channel(gemeente, "A_MessageChannel")
    assert (channel.retries, channel.retry_interval, channel.persist_duration) == (
        8,
        timedelta(hours=3),
        timedelta(days=1),
    )
    assert channel.ack_signature_requested is False
    for binding in gemeente.bindings:
        assert binding.service == DEFAULT_SERVICE
        assert binding.service_type == "urn:osb:services"
        assert binding.characteristics.is_authorization_required
        assert binding.characteristics.time_to_perform == timedelta(days=2)
    assert {b.action for b in gemeente.bindings if b.direction == "send"} == set(DEFAULT_ACTIONS)
    assert {b.action for b in gemeente.bindings if b.direction == "receive"} == set(DEFAULT_ACTIONS)


def test_overrides_are_written() -> None:
    req = replace(
        request(Profile.OSB_RM),
        retries=3,
        retry_interval=timedelta(minutes=30),
        persist_duration=timedelta(hours=6),
        sync_reply=True,
        actions=("WMO301", "WMO302"),
        service="GGK:iWmo:3:2",
    )
    agreement = parse_agreement(create_agreement(req))
    channel = resolve_channel(agreement.parties[1], "B_MessageChannel")
    assert (channel.retries, channel.retry_interval, channel.persist_duration) == (
        3,
        timedelta(minutes=30),
        timedelta(hours=6),
    )
    assert channel.sync_reply
    validation = validate_cpa(create_agreement(req), now=NOW)
    assert validation.ok, [str(f) for f in validation.errors]
    # EB015: mshSignalsOnly is allowed for osb-rm but discouraged; one warning per business channel.
    assert [f.rule for f in validation.warnings].count("CPA-SYNCREPLY") == 2
    assert {b.action for b in agreement.parties[1].bindings} == {"WMO301", "WMO302"}
    assert agreement.cpa_id == "GGK-iWmo-3-2_00000099000003630000_00000099000001000000_1"


def test_separate_signing_and_encryption_certificates() -> None:
    signing, _ = make_cert("signing", "00000099000003630000")
    encryption, _ = make_cert("encryption", "00000099000003630000")
    req = request(Profile.OSB_RM_E)
    req = replace(
        req, party=replace(req.party, signing_cert_pem=pem(signing), encryption_cert_pem=pem(encryption))
    )
    agreement = parse_agreement(create_agreement(req))
    gemeente = agreement.parties[0]
    assert set(gemeente.certificates) == {"A_ClientCert", "A_ServerCert", "A_SigningCert", "A_EncryptionCert"}
    channel = resolve_channel(gemeente, "A_MessageChannel")
    assert channel.signing_certificate is not None
    assert channel.signing_certificate.cert_id == "A_SigningCert"
    assert channel.encryption_certificate is not None
    assert channel.encryption_certificate.cert_id == "A_EncryptionCert"


def test_certificate_chain_in_pem_keeps_the_leaf() -> None:
    ca, ca_key = make_cert("CA", None)
    leaf, _ = make_cert("client", "00000099000003630000", issuer=(ca, ca_key))
    req = request()
    req = replace(req, party=replace(req.party, client_cert_pem=pem(ca, leaf)))
    gemeente = parse_agreement(create_agreement(req)).parties[0]
    client = gemeente.certificates["A_ClientCert"]
    assert client.der == der_of(leaf)


@pytest.mark.parametrize(
    ("service", "a", "b", "version", "expected"),
    [
        ("ggk:berichtenverkeer:1.0", "0001", "0002", "1", "ggk-berichtenverkeer-1-0_0001_0002_1"),
        ("osb:afleveren:1.1$1.0", "A", "B", "2026.1", "osb-afleveren-1-1-1-0_A_B_2026-1"),
    ],
)
def test_default_cpa_id_is_bp3_style(service: str, a: str, b: str, version: str, expected: str) -> None:
    cpa_id = default_cpa_id(service, a, b, version)
    assert cpa_id == expected
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cpa_id)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"end": request().start}, "end date"),
        ({"sync_reply": True, "profile": Profile.OSB_BE}, "osb-rm"),
        ({"retries": -1}, "retries"),
        ({"retry_interval": timedelta(0)}, "positive"),
        ({"actions": ()}, "action"),
        ({"actions": ("has space",)}, "whitespace"),
        ({"service": "a b"}, "whitespace"),
        ({"cpa_id": "bad.id"}, "CPAId"),
    ],
)
def test_refused_requests(changes: dict[str, object], message: str) -> None:
    with pytest.raises(CpaInvalidError, match=message):
        create_agreement(replace(request(), **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("oin", "123", "20 digits"),
        ("endpoint", "http://insecure.example/ebms", "https"),
        ("client_cert_pem", b"not a pem", "PEM"),
        ("role", "GGk", "different role"),
    ],
)
def test_refused_party_fields(field: str, value: object, message: str) -> None:
    req = request()
    with pytest.raises(CpaInvalidError, match=message):
        create_agreement(replace(req, party=replace(req.party, **{field: value})))


# --- the committed dev CPAs ---------------------------------------------------------------------------

DEV_CPAS = sorted((PROJECT_ROOT / "cpa").glob("dev-*.xml"))


def test_dev_cpas_exist_for_every_profile() -> None:
    assert {p.name for p in DEV_CPAS} == {f"dev-{p.value}.xml" for p in Profile}


@pytest.mark.parametrize("path", DEV_CPAS, ids=[p.name for p in DEV_CPAS])
def test_dev_cpa_is_valid(path: Path) -> None:
    data = path.read_bytes()
    for schema in (None, official_schema()):
        validation = validate_cpa(data, now=NOW, schema=schema)
        assert validation.errors == [], [str(f) for f in validation.errors]
    agreement = parse_agreement(data)
    assert agreement_profiles(agreement) == [path.stem.removeprefix("dev-")]
    gemeente = own_party(agreement, [DEV_GEMEENTE_OIN])
    assert gemeente.party_ids[0].value == DEV_GEMEENTE_OIN
    assert own_party(agreement, [DEV_RINIS_OIN]).transports["B_Transport"].endpoints[0].uri == (
        "https://localhost:8444/ebms"
    )
    assert gemeente.transports["A_Transport"].endpoints[0].uri == "https://localhost:8443/ebms"
    assert f"{agreement.start:%Y-%m-%d}" == "2026-01-01"


def test_dev_cpa_ids_are_distinct() -> None:
    ids = [parse_agreement(p.read_bytes()).cpa_id for p in DEV_CPAS]
    assert len(set(ids)) == len(ids) == 6
