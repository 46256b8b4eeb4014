"""A sender that re-encrypts its resend (fresh key, other ciphertext) of the same message gets the
stored Acknowledgment replayed, not "MessageId already used" (ebMS 2.0 §6.5.3: identical means the
same payloads, i.e. the plaintext)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ggk_ebms.clock import UuidIdGenerator
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Profile
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.ebms.build import build_business_message
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.mime.related import MimePart, build_related
from ggk_ebms.pipeline.security import MessageSecurity
from ggk_ebms.store.messages import MessageStore
from tests import peer
from tests.endpoint import GEMEENTE, RINIS, running
from tests.outbound_support import free_port, make_cpa, side_settings


async def test_reencrypted_resend_gets_the_same_ack(tmp_path: Path) -> None:
    g_port = free_port()
    cpa_id, cpa = make_cpa(g_port, free_port(), profile=Profile.OSB_RM_E, sync_reply=True, version="enc-dup")
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, free_port())
    agreement = parse_agreement(cpa)
    route = lookup.sending_route(
        agreement,
        lookup.own_party(agreement, [RINIS]),
        role="GGk",
        service="ggk:berichtenverkeer:1.0",
        service_type="urn:osb:services",
        action="envelopHeenbericht-ggk_Di01",
    )
    built = build_business_message(
        cpa_id=cpa_id,
        from_party=PartyId(RINIS, "urn:osb:oin"),
        from_role="GGk",
        to_party=PartyId(GEMEENTE, "urn:osb:oin"),
        to_role="Gemeente",
        service="ggk:berichtenverkeer:1.0",
        service_type="urn:osb:services",
        action="envelopHeenbericht-ggk_Di01",
        conversation_id="conv-enc",
        message_id=UuidIdGenerator("rinis.test").message_id(),
        timestamp=datetime.now(UTC),
        time_to_live=None,
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=True,
        content_ids=["p1@rinis.test"],
    )
    part = MimePart("p1@rinis.test", "application/xml", b"<Bericht>same plaintext</Bericht>")
    security = MessageSecurity(rinis)
    bodies = []
    for _ in range(2):  # two independent encryptions of the same message
        envelope, sealed = security.seal(built.envelope, [part], ours=route.channel, peer=route.peer_channel)
        bodies.append(build_related(envelope, sealed))
    assert bodies[0][1] != bodies[1][1]
    async with running(gemeente) as endpoint:
        url = f"https://localhost:{endpoint.port}/ebms"
        first = await peer.post(url, bodies[0][1], content_type=bodies[0][0])
        second = await peer.post(url, bodies[1][1], content_type=bodies[1][0])
        received = MessageStore(endpoint.database).list(direction="in", kind="business")
    assert first.status == 200
    assert b"Acknowledgment" in first.body
    assert second.status == 200
    assert second.body == first.body  # the stored Ack, replayed unchanged
    assert len(received) == 1
