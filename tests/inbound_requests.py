"""Inbound requests as RINIS's send path makes them, for tests that hand them to the pipeline
in this process: a Di01 built from the CPA, sealed (signed and/or encrypted) by the profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ggk_ebms.clock import UuidIdGenerator
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.ebms.build import build_business_message
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.mime.related import MimePart, build_related
from ggk_ebms.pipeline.security import MessageSecurity
from tests.endpoint import GEMEENTE, RINIS

ACTION = "envelopHeenbericht-ggk_Di01"
SERVICE = "ggk:berichtenverkeer:1.0"


def sealed_request(
    rinis_settings: Any, cpa: bytes, *, message_id: str | None = None, action: str = ACTION
) -> tuple[bytes, list[MimePart], str, bytes]:
    """A Di01 from RINIS, signed and encrypted as RINIS's send path does: (envelope, parts, content
    type, body). ``action`` other than the CPA's makes a message the receiver refuses."""
    agreement = parse_agreement(cpa)
    route = lookup.sending_route(
        agreement,
        lookup.own_party(agreement, [RINIS]),
        role="GGk",
        service=SERVICE,
        service_type="urn:osb:services",
        action=ACTION,
    )
    built = build_business_message(
        cpa_id=agreement.cpa_id,
        from_party=PartyId(RINIS, "urn:osb:oin"),
        from_role="GGk",
        to_party=PartyId(GEMEENTE, "urn:osb:oin"),
        to_role="Gemeente",
        service=SERVICE,
        service_type="urn:osb:services",
        action=ACTION,
        conversation_id="conv-once",
        message_id=message_id or UuidIdGenerator("rinis.test").message_id(),
        timestamp=datetime.now(UTC),
        time_to_live=None,
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=True,
        content_ids=["p1@rinis.test"],
    )
    part = MimePart("p1@rinis.test", "application/xml", b"<Bericht>once</Bericht>")
    unsealed = built.envelope.replace(f">{ACTION}<".encode(), f">{action}<".encode())
    envelope, sealed = MessageSecurity(rinis_settings).seal(
        unsealed, [part], ours=route.channel, peer=route.peer_channel
    )
    content_type, body = build_related(envelope, sealed)
    return envelope, sealed, content_type, body
