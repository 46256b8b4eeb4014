"""Lookups on a parsed CPA: parties, bindings, channels, signal channels and sending routes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cpa_support import GEMEENTE_OIN, RINIS_OIN, cpa_bytes, mutate, shared_cpa
from ggk_ebms import ns
from ggk_ebms.cpa.lookup import (
    counterpart,
    find_action_binding,
    find_party,
    msh_signal_channel,
    own_party,
    resolve_channel,
    sending_route,
)
from ggk_ebms.cpa.model import Agreement, Profile
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import CpaError

SERVICE = "ggk:berichtenverkeer:1.0"
DI01 = "envelopHeenbericht-ggk_Di01"


def _agreement(profile: Profile = Profile.OSB_RM) -> Agreement:
    return parse_agreement(cpa_bytes(profile))


def test_find_party_needs_value_and_type() -> None:
    agreement = _agreement()
    assert find_party(agreement, GEMEENTE_OIN, ns.PARTY_TYPE_OIN) is agreement.parties[0]
    assert find_party(agreement, RINIS_OIN, ns.PARTY_TYPE_OIN) is agreement.parties[1]
    assert find_party(agreement, GEMEENTE_OIN, None) is None
    assert find_party(agreement, GEMEENTE_OIN, "urn:cv:oin") is None
    assert find_party(agreement, "00000099000000000000", ns.PARTY_TYPE_OIN) is None


def test_own_party_and_counterpart() -> None:
    agreement = _agreement()
    ours = own_party(agreement, [GEMEENTE_OIN])
    assert ours.party_name == "Gemeente Test"
    assert counterpart(agreement, ours).party_name == "RINIS Test"
    with pytest.raises(CpaError, match="none of its parties"):
        own_party(agreement, ["00000099000000000000"])
    with pytest.raises(CpaError, match="both parties"):
        own_party(agreement, [GEMEENTE_OIN, RINIS_OIN])


def test_find_action_binding_matches_every_field() -> None:
    gemeente = _agreement().parties[0]
    binding = find_action_binding(
        gemeente,
        direction="send",
        role="Gemeente",
        service=SERVICE,
        service_type=ns.SERVICE_TYPE_OSB,
        action=DI01,
    )
    assert binding is not None
    assert binding.binding_id == "A_S_envelopHeenbericht-ggk_Di01"
    for changed in (
        {"role": "GGk"},
        {"service": "other"},
        {"service_type": None},
        {"action": "Other"},
        {"direction": "receive", "action": "Nope"},
    ):
        query = {
            "direction": "send",
            "role": "Gemeente",
            "service": SERVICE,
            "service_type": ns.SERVICE_TYPE_OSB,
            "action": DI01,
        }
        query.update(changed)  # type: ignore[arg-type]
        assert find_action_binding(gemeente, **query) is None, changed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("profile", "signing", "encryption"),
    [
        (Profile.OSB_RM, False, False),
        (Profile.OSB_RM_S, True, False),
        (Profile.OSB_RM_E, True, True),
        (Profile.OSB_BE_E, True, True),
    ],
)
def test_sending_route(profile: Profile, signing: bool, encryption: bool) -> None:
    agreement = _agreement(profile)
    gemeente = own_party(agreement, [GEMEENTE_OIN])
    route = sending_route(
        agreement, gemeente, role="Gemeente", service=SERVICE, service_type=ns.SERVICE_TYPE_OSB, action=DI01
    )
    assert route.to_party.party_name == "RINIS Test"
    assert route.to_role == "GGk"
    assert route.peer_binding.binding_id == "B_R_envelopHeenbericht-ggk_Di01"
    assert route.channel.profile == profile
    assert route.peer_channel.profile == profile
    assert route.peer_channel.endpoint_uri == "https://rinis.example/ebms"
    assert route.channel.client_certificate is not None
    assert route.channel.client_certificate.der is not None
    assert route.peer_channel.server_certificate is not None
    assert (route.channel.signing_certificate is not None) is signing
    assert (route.peer_channel.encryption_certificate is not None) is encryption
    assert route.channel.ack_requested is profile.reliable
    assert route.channel.duplicate_elimination is profile.reliable
    assert route.channel.sync_reply is False
    assert route.channel.actor == ns.ACTOR_TO_PARTY_MSH
    if profile.reliable:
        assert route.channel.retries == 8
        assert route.channel.retry_interval == timedelta(hours=3)
        assert route.channel.persist_duration == timedelta(days=1)
    if signing:
        assert route.channel.hash_function == "http://www.w3.org/2001/04/xmlenc#sha256"
        assert route.channel.signature_algorithm == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    if encryption:
        assert route.peer_channel.encryption_algorithm == "http://www.w3.org/2009/xmlenc11#aes256-gcm"


def test_sending_route_refuses_unknown_action() -> None:
    agreement = _agreement()
    with pytest.raises(CpaError, match="no CanSend binding"):
        sending_route(
            agreement,
            agreement.parties[0],
            role="Gemeente",
            service=SERVICE,
            service_type=ns.SERVICE_TYPE_OSB,
            action="WMO301",
        )


def test_sending_route_with_dangling_peer_binding() -> None:
    data = mutate(cpa_bytes(), ">B_R_envelopHeenbericht-ggk_Di01<", ">B_R_Missing<")
    agreement = parse_agreement(data)
    with pytest.raises(CpaError, match="B_R_Missing"):
        sending_route(
            agreement, agreement.parties[0], role="Gemeente", service=SERVICE,
            service_type=ns.SERVICE_TYPE_OSB, action=DI01,
        )  # fmt: skip


def test_msh_signal_channel_default_and_override() -> None:
    agreement = _agreement(Profile.OSB_RM_S)
    gemeente = agreement.parties[0]
    signal = msh_signal_channel(gemeente)
    assert signal.channel.channel_id == "A_SignalChannel"
    assert signal.profile == Profile.OSB_BE_S  # signals are never acknowledged, but signed as messages are
    # OverrideMshActionBinding is the last child of PartyInfo (CPPA 2.0 §8.4.7).
    data = mutate(
        cpa_bytes(Profile.OSB_RM_S),
        "</cppa:DocExchange>\n  </cppa:PartyInfo>",
        "</cppa:DocExchange>\n"
        '<cppa:OverrideMshActionBinding cppa:action="Acknowledgment" cppa:channelId="A_MessageChannel"/>'
        "  </cppa:PartyInfo>",
        1,
    )
    gemeente = parse_agreement(data).parties[0]
    assert msh_signal_channel(gemeente, "Acknowledgment").channel.channel_id == "A_MessageChannel"
    assert msh_signal_channel(gemeente, "MessageError").channel.channel_id == "A_SignalChannel"


def test_resolve_channel_dangling_raises() -> None:
    gemeente = _agreement().parties[0]
    with pytest.raises(CpaError, match="no DeliveryChannel"):
        resolve_channel(gemeente, "Nope")
    data = mutate(cpa_bytes(), 'cppa:transportId="A_Transport" cppa:docExchangeId="A_MessageExchange"',
                  'cppa:transportId="A_Gone" cppa:docExchangeId="A_MessageExchange"')  # fmt: skip
    with pytest.raises(CpaError, match="A_Gone"):
        resolve_channel(parse_agreement(data).parties[0], "A_MessageChannel")


def test_reference_cpa_route() -> None:
    agreement = parse_agreement(shared_cpa("cpas", "cpaStubEBF.rm.https.signed.encrypted.xml"))
    overheid = own_party(agreement, ["00000000000000000001"])
    route = sending_route(
        agreement, overheid, role="OVERHEID", service="osb:aanleveren:1.1$1.0",
        service_type=ns.SERVICE_TYPE_OSB, action="aanleveren",
    )  # fmt: skip
    assert route.peer_channel.endpoint_uri == "https://localhost:8888/ebms"
    assert route.channel.profile == Profile.OSB_RM_E
    assert route.channel.retries == 5
    assert route.peer_channel.encryption_certificate is not None
    assert route.peer_channel.encryption_certificate.cert_id == "DIGIPOORT_EncryptionCert"
