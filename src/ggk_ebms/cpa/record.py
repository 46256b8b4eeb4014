"""A CPA as a JSON-ready record, for ``cpa show --json`` (shape documented in docs/cli.md).

The same facts as ``describe_agreement`` (cpa/summary.py) tells in lines, as plain values: parties,
their actions per direction with the channel's Digikoppeling profile, endpoints, reliability
settings per channel and certificates by subject, OIN, expiry and SHA-256 fingerprint. Pure: the
moment for "expired" comes in as ``now``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ggk_ebms.cpa.certs import load_der, oin_of, sha256_fingerprint
from ggk_ebms.cpa.model import Agreement, PartyInfo
from ggk_ebms.cpa.profile import derive_profile
from ggk_ebms.cpa.summary import agreement_profiles


def validity_state(start: datetime, end: datetime, now: datetime) -> str:
    """``valid``, ``expired`` or ``not yet valid``: the CPA's Start/End (ebCPP 2.0 §8.4.2)."""
    if end <= now:
        return "expired"
    if start > now:
        return "not yet valid"
    return "valid"


def agreement_record(agreement: Agreement, *, now: datetime) -> dict[str, Any]:
    return {
        "cpa_id": agreement.cpa_id,
        "version": agreement.version,
        "status": agreement.status,
        "start": agreement.start,
        "end": agreement.end,
        "validity": validity_state(agreement.start, agreement.end, now),
        "profiles": agreement_profiles(agreement),
        "parties": [_party_record(party, now) for party in agreement.parties],
    }


def _channel_profile(party: PartyInfo, channel_id: str | None) -> str | None:
    channel = party.channels.get(channel_id) if channel_id else None
    if channel is None:
        return None
    return derive_profile(channel, party.doc_exchanges.get(channel.doc_exchange_id)).profile.value


def _party_record(party: PartyInfo, now: datetime) -> dict[str, Any]:
    actions = []
    for b in party.bindings:
        channel_id = b.channel_ids[0] if b.channel_ids else None
        actions.append(
            {
                "direction": b.direction,
                "action": b.action,
                "service": b.service,
                "service_type": b.service_type,
                "role": b.role,
                "channel": channel_id,
                "profile": _channel_profile(party, channel_id),
            }
        )
    channels = []
    for channel in party.channels.values():
        exchange = party.doc_exchanges.get(channel.doc_exchange_id)
        side = exchange.sender if exchange is not None else None
        rm = side.reliable_messaging if side is not None else None
        mc = channel.characteristics
        channels.append(
            {
                "channel": channel.channel_id,
                "profile": _channel_profile(party, channel.channel_id),
                "ack_requested": mc.ack_requested.value,
                "duplicate_elimination": mc.duplicate_elimination.value,
                "sync_reply_mode": mc.sync_reply_mode.value,
                "retries": rm.retries if rm is not None else None,
                "retry_interval_seconds": (
                    rm.retry_interval.total_seconds() if rm is not None and rm.retry_interval else None
                ),
                "persist_duration_seconds": (
                    side.persist_duration.total_seconds()
                    if side is not None and side.persist_duration
                    else None
                ),
            }
        )
    certificates = []
    for cert in party.certificates.values():
        if cert.der is None:
            certificates.append({"cert_id": cert.cert_id, "readable": False})
            continue
        x509_cert = load_der(cert.der)
        not_after = x509_cert.not_valid_after_utc
        certificates.append(
            {
                "cert_id": cert.cert_id,
                "readable": True,
                "subject": x509_cert.subject.rfc4514_string(),
                "oin": oin_of(x509_cert),
                "not_after": not_after,
                "expired": not_after <= now,
                "sha256": sha256_fingerprint(cert.der),
            }
        )
    return {
        "name": party.party_name,
        "party_ids": [{"value": pid.value, "type": pid.type} for pid in party.party_ids],
        "roles": list(party.roles),
        "msh_signal_channel": party.default_msh_channel_id,
        "actions": actions,
        "endpoints": [
            {"uri": e.uri, "type": e.type, "transport": t.transport_id}
            for t in party.transports.values()
            for e in t.endpoints
        ],
        "channels": channels,
        "certificates": certificates,
    }
