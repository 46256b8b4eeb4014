"""A CPA told in plain lines, for ``cpa show`` and for the index the store keeps.

Everything here is derived from the parsed ``Agreement``; nothing is stored twice. Certificates
are shown by subject, OIN, expiry and SHA-256 fingerprint, the way an operator compares them with
what the partner sent.
"""

from __future__ import annotations

from datetime import datetime

from ggk_ebms.cpa.certs import load_der, oin_of, sha256_fingerprint
from ggk_ebms.cpa.duration import format_duration
from ggk_ebms.cpa.model import Agreement, PartyInfo, Profile
from ggk_ebms.cpa.profile import derive_profile


def party_id_labels(agreement: Agreement) -> list[str]:
    """Every PartyId as ``type:value`` (just the value when untyped), parties in document order."""
    return [
        f"{pid.type}:{pid.value}" if pid.type else pid.value
        for party in agreement.parties
        for pid in party.party_ids
    ]


def agreement_profiles(agreement: Agreement) -> list[str]:
    """The Digikoppeling profiles of the channels the actions use, sorted, without repeats."""
    found: set[Profile] = set()
    for party in agreement.parties:
        for binding in party.bindings:
            for channel_id in binding.channel_ids[:1]:
                channel = party.channels.get(channel_id)
                if channel is not None:
                    exchange = party.doc_exchanges.get(channel.doc_exchange_id)
                    found.add(derive_profile(channel, exchange).profile)
    return sorted(p.value for p in found)


def validity_label(agreement: Agreement, now: datetime) -> str:
    """``2026-01-01 .. 2035-12-30`` plus ``EXPIRED`` or ``not yet valid`` when so."""
    label = f"{agreement.start:%Y-%m-%d} .. {agreement.end:%Y-%m-%d}"
    if agreement.end <= now:
        return label + " EXPIRED"
    if agreement.start > now:
        return label + " not yet valid"
    return label


def describe_agreement(agreement: Agreement, *, now: datetime) -> list[str]:
    """A readable account of the CPA: parties, actions per direction, endpoints, certificates."""
    lines = [
        f"CPA {agreement.cpa_id}",
        f"  status: {agreement.status}",
        f"  valid: {validity_label(agreement, now)}",
        f"  profiles: {', '.join(agreement_profiles(agreement)) or 'none'}",
    ]
    for number, party in enumerate(agreement.parties, start=1):
        lines.append("")
        lines.extend(_describe_party(number, party, now))
    return lines


def _describe_party(number: int, party: PartyInfo, now: datetime) -> list[str]:
    ids = ", ".join(f"{pid.value} ({pid.type or 'untyped'})" for pid in party.party_ids)
    lines = [
        f"Party {number}: {party.party_name}",
        f"  PartyId: {ids}",
        f"  roles: {', '.join(party.roles)}",
    ]
    msh = party.channels.get(party.default_msh_channel_id)
    msh_profile = _channel_profile(party, party.default_msh_channel_id)
    lines.append(
        f"  MSH signal channel: {party.default_msh_channel_id}"
        + (f" ({msh_profile}, syncReplyMode {msh.characteristics.sync_reply_mode})" if msh else " (missing)")
    )
    for action, channel_id in sorted(party.msh_overrides.items()):
        lines.append(f"    override for {action}: {channel_id}")
    for direction in ("send", "receive"):
        bindings = [b for b in party.bindings if b.direction == direction]
        if not bindings:
            continue
        lines.append(f"  {'sends' if direction == 'send' else 'receives'}:")
        for b in bindings:
            channel_id = b.channel_ids[0] if b.channel_ids else "-"
            service = f"{b.service} ({b.service_type})" if b.service_type else b.service
            lines.append(
                f"    {b.action}  service {service}  role {b.role}  channel {channel_id} "
                f"[{_channel_profile(party, channel_id)}]"
            )
    lines.append("  endpoints:")
    for transport in party.transports.values():
        for endpoint in transport.endpoints:
            lines.append(f"    {endpoint.uri} ({endpoint.type}, transport {transport.transport_id})")
    lines.append("  reliability:")
    for channel in party.channels.values():
        exchange = party.doc_exchanges.get(channel.doc_exchange_id)
        side = exchange.sender if exchange is not None else None
        rm = side.reliable_messaging if side is not None else None
        mc = channel.characteristics
        text = (
            f"    {channel.channel_id}: ackRequested {mc.ack_requested}, "
            f"duplicateElimination {mc.duplicate_elimination}, syncReplyMode {mc.sync_reply_mode}"
        )
        if rm is not None:
            interval = format_duration(rm.retry_interval) if rm.retry_interval is not None else "-"
            persist = side.persist_duration if side is not None else None
            text += (
                f", Retries {rm.retries if rm.retries is not None else '-'}, RetryInterval {interval}, "
                f"PersistDuration {format_duration(persist) if persist is not None else '-'}"
            )
        lines.append(text)
    lines.append("  certificates:")
    for cert in party.certificates.values():
        if cert.der is None:
            lines.append(f"    {cert.cert_id}: no readable certificate")
            continue
        x509_cert = load_der(cert.der)
        not_after = x509_cert.not_valid_after_utc
        expired = " EXPIRED" if not_after <= now else ""
        lines.append(f"    {cert.cert_id}: {x509_cert.subject.rfc4514_string()}")
        lines.append(f"      OIN {oin_of(x509_cert) or '-'}, valid until {not_after:%Y-%m-%d}{expired}")
        lines.append(f"      SHA-256 {sha256_fingerprint(cert.der)}")
    return lines


def _channel_profile(party: PartyInfo, channel_id: str) -> str:
    channel = party.channels.get(channel_id)
    if channel is None:
        return "missing channel"
    return derive_profile(channel, party.doc_exchanges.get(channel.doc_exchange_id)).profile.value
