"""Questions the MSH asks a parsed CPA: who is who, which binding, which channel, where to send.

The resolution follows the reference adapter (CPPA 2.0, BP ch. 3): a business message goes out on the
first ChannelId of the sender's CanSend binding; the endpoint, server certificate and encryption
certificate come from the receiver's binding that ``OtherPartyActionBinding`` names. Signals use
the party's ``defaultMshChannelId`` unless an ``OverrideMshActionBinding`` names another channel for
that signal action.

Every function is pure. A reference that points nowhere raises ``CpaError`` with a message that
names the CPA element; ``lint.validate_cpa`` reports the same defects before a CPA is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeVar

from ggk_ebms.cpa.model import (
    ActionBinding,
    Agreement,
    BindingSide,
    Certificate,
    DeliveryChannel,
    DocExchange,
    PartyInfo,
    PerMessage,
    Profile,
    SyncReplyMode,
    Transport,
)
from ggk_ebms.cpa.profile import derive_profile
from ggk_ebms.errors import CpaError


@dataclass(frozen=True)
class ResolvedChannel:
    """A DeliveryChannel with everything it points at, ready for the sender or the validator."""

    party: PartyInfo
    channel: DeliveryChannel
    transport: Transport
    doc_exchange: DocExchange
    profile: Profile  # derived Digikoppeling profile of this channel
    endpoint_uri: str | None  # first TransportReceiver Endpoint uri
    client_certificate: Certificate | None  # TransportClientSecurity/ClientCertificateRef
    server_certificate: Certificate | None  # TransportServerSecurity/ServerCertificateRef
    signing_certificate: Certificate | None  # sender NonRepudiation SigningCertificateRef
    encryption_certificate: Certificate | None  # receiver DigitalEnvelope EncryptionCertificateRef
    ack_requested: bool
    duplicate_elimination: bool
    ack_signature_requested: bool
    sync_reply: bool  # syncReplyMode == mshSignalsOnly
    actor: str | None
    retries: int | None
    retry_interval: timedelta | None
    persist_duration: timedelta | None
    hash_function: str | None
    signature_algorithm: str | None
    encryption_algorithm: str | None


@dataclass(frozen=True)
class SendingRoute:
    """How one business message travels: our binding and channel, the peer's binding and channel."""

    agreement: Agreement
    from_party: PartyInfo
    to_party: PartyInfo
    binding: ActionBinding
    peer_binding: ActionBinding
    channel: ResolvedChannel  # our sending channel (flags, our client cert, signing)
    peer_channel: ResolvedChannel  # the receiver's channel (endpoint, server cert, encryption cert)
    to_role: str


def find_party(agreement: Agreement, party_id: str, party_type: str | None) -> PartyInfo | None:
    """The PartyInfo with a PartyId of exactly this value and
    type (CPPA 2.0; docs/rules.md receive-side check 3)."""
    for party in agreement.parties:
        for pid in party.party_ids:
            if pid.value == party_id and pid.type == party_type:
                return party
    return None


def own_party(agreement: Agreement, our_party_ids: Sequence[str]) -> PartyInfo:
    """The one party of the CPA that carries one of our PartyIds (setting ``party_ids``)."""
    ours = set(our_party_ids)
    matches = [p for p in agreement.parties if any(pid.value in ours for pid in p.party_ids)]
    if not matches:
        raise CpaError(
            f"CPA {agreement.cpa_id!r}: none of its parties has one of our PartyIds "
            f"({', '.join(sorted(ours)) or 'none configured'}); check the party_ids setting"
        )
    if len(matches) > 1:
        raise CpaError(
            f"CPA {agreement.cpa_id!r}: both parties carry one of our PartyIds; "
            "we cannot tell which side we are"
        )
    return matches[0]


def counterpart(agreement: Agreement, party: PartyInfo) -> PartyInfo:
    """The other party of a two-party CPA."""
    others = [p for p in agreement.parties if p is not party and p != party]
    if len(others) != 1 or len(agreement.parties) != 2:
        raise CpaError(f"CPA {agreement.cpa_id!r} does not have exactly two parties")
    return others[0]


def find_action_binding(
    party: PartyInfo,
    *,
    direction: Literal["send", "receive"],
    role: str,
    service: str,
    service_type: str | None,
    action: str,
) -> ActionBinding | None:
    """The party's CanSend/CanReceive binding for (role, service,
    type, action) (CPPA 2.0; docs/rules.md receive-side check 4)."""
    for binding in party.bindings:
        if (
            binding.direction == direction
            and binding.role == role
            and binding.service == service
            and binding.service_type == service_type
            and binding.action == action
        ):
            return binding
    return None


def _certificate(party: PartyInfo, cert_id: str | None, what: str) -> Certificate | None:
    if cert_id is None:
        return None
    cert = party.certificates.get(cert_id)
    if cert is None:
        raise CpaError(f"party {party.party_name!r}: {what} certId {cert_id!r} names no Certificate")
    return cert


_T = TypeVar("_T")


def _first(*values: _T | None) -> _T | None:
    for value in values:
        if value is not None:
            return value
    return None


def resolve_channel(party: PartyInfo, channel_id: str) -> ResolvedChannel:
    """The DeliveryChannel ``channel_id`` of ``party`` with its Transport, DocExchange and certificates.

    Resolved once per parsed party (``PartyInfo.resolved_channels``): a parsed CPA never changes,
    and the inbound path resolves the same channels for every message (docs/performance.md
    "The request path on the event loop"). A CpaError is not remembered.
    """
    memo = party.resolved_channels
    resolved = memo.get(channel_id)
    if resolved is None:
        resolved = memo[channel_id] = _resolve_channel(party, channel_id)
    return resolved


def _resolve_channel(party: PartyInfo, channel_id: str) -> ResolvedChannel:
    channel = party.channels.get(channel_id)
    if channel is None:
        raise CpaError(f"party {party.party_name!r}: no DeliveryChannel with channelId {channel_id!r}")
    transport = party.transports.get(channel.transport_id)
    if transport is None:
        raise CpaError(
            f"party {party.party_name!r}: DeliveryChannel {channel_id!r} names transportId "
            f"{channel.transport_id!r}, which does not exist"
        )
    exchange = party.doc_exchanges.get(channel.doc_exchange_id)
    if exchange is None:
        raise CpaError(
            f"party {party.party_name!r}: DeliveryChannel {channel_id!r} names docExchangeId "
            f"{channel.doc_exchange_id!r}, which does not exist"
        )
    sender: BindingSide | None = exchange.sender
    receiver: BindingSide | None = exchange.receiver
    s_nr = sender.non_repudiation if sender else None
    r_nr = receiver.non_repudiation if receiver else None
    s_de = sender.digital_envelope if sender else None
    r_de = receiver.digital_envelope if receiver else None
    s_rm = sender.reliable_messaging if sender else None
    r_rm = receiver.reliable_messaging if receiver else None
    rm = _first(s_rm, r_rm)
    nr = _first(s_nr, r_nr)
    de = _first(r_de, s_de)
    mc = channel.characteristics
    return ResolvedChannel(
        party=party,
        channel=channel,
        transport=transport,
        doc_exchange=exchange,
        profile=derive_profile(channel, exchange).profile,
        endpoint_uri=transport.endpoints[0].uri if transport.endpoints else None,
        client_certificate=_certificate(party, transport.client_cert_id, "ClientCertificateRef"),
        server_certificate=_certificate(party, transport.server_cert_id, "ServerCertificateRef"),
        signing_certificate=_certificate(
            party, s_nr.signing_cert_id if s_nr else None, "SigningCertificateRef"
        ),
        encryption_certificate=_certificate(
            party, r_de.encryption_cert_id if r_de else None, "EncryptionCertificateRef"
        ),
        ack_requested=mc.ack_requested == PerMessage.ALWAYS,
        duplicate_elimination=mc.duplicate_elimination == PerMessage.ALWAYS,
        ack_signature_requested=mc.ack_signature_requested == PerMessage.ALWAYS,
        sync_reply=mc.sync_reply_mode == SyncReplyMode.MSH_SIGNALS_ONLY,
        actor=mc.actor,
        retries=rm.retries if rm else None,
        retry_interval=rm.retry_interval if rm else None,
        persist_duration=_first(
            sender.persist_duration if sender else None, receiver.persist_duration if receiver else None
        ),
        hash_function=nr.hash_function if nr else None,
        signature_algorithm=nr.signature_algorithm if nr else None,
        encryption_algorithm=de.encryption_algorithm if de else None,
    )


def msh_signal_channel(party: PartyInfo, action: str | None = None) -> ResolvedChannel:
    """The channel ``party`` uses for MSH signals: its OverrideMshActionBinding, else the default."""
    if action is not None and action in party.msh_overrides:
        return resolve_channel(party, party.msh_overrides[action])
    if not party.default_msh_channel_id:
        raise CpaError(f"party {party.party_name!r} has no defaultMshChannelId")
    return resolve_channel(party, party.default_msh_channel_id)


def sending_route(
    agreement: Agreement,
    from_party: PartyInfo,
    *,
    role: str,
    service: str,
    service_type: str | None,
    action: str,
) -> SendingRoute:
    """Everything needed to send (role, service, action) from ``from_party`` (CPPA 2.0, BP ch. 3)."""
    where = f"CPA {agreement.cpa_id!r}"
    binding = find_action_binding(
        from_party, direction="send", role=role, service=service, service_type=service_type, action=action
    )
    if binding is None:
        type_text = f" (type {service_type})" if service_type else ""
        raise CpaError(
            f"{where}: party {from_party.party_name!r} has no CanSend binding for role {role!r}, "
            f"service {service!r}{type_text}, action {action!r}"
        )
    if not binding.channel_ids:
        raise CpaError(f"{where}: binding {binding.binding_id!r} has no ChannelId")
    to_party = counterpart(agreement, from_party)
    peer_binding = _peer_binding(to_party, binding)
    if peer_binding is None:
        raise CpaError(
            f"{where}: party {to_party.party_name!r} has no CanReceive binding matching "
            f"{binding.binding_id!r} (OtherPartyActionBinding {binding.other_party_binding_id!r})"
        )
    if not peer_binding.channel_ids:
        raise CpaError(f"{where}: binding {peer_binding.binding_id!r} has no ChannelId")
    return SendingRoute(
        agreement=agreement,
        from_party=from_party,
        to_party=to_party,
        binding=binding,
        peer_binding=peer_binding,
        channel=resolve_channel(from_party, binding.channel_ids[0]),
        peer_channel=resolve_channel(to_party, peer_binding.channel_ids[0]),
        to_role=peer_binding.role,
    )


def _peer_binding(to_party: PartyInfo, binding: ActionBinding) -> ActionBinding | None:
    """The receiver's binding: the one OtherPartyActionBinding names, else the matching CanReceive."""
    if binding.other_party_binding_id:
        for candidate in to_party.bindings:
            if candidate.binding_id == binding.other_party_binding_id and candidate.direction == "receive":
                return candidate
        return None
    for candidate in to_party.bindings:
        if (
            candidate.direction == "receive"
            and candidate.service == binding.service
            and candidate.service_type == binding.service_type
            and candidate.action == binding.action
        ):
            return candidate
    return None
