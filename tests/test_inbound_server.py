"""Inbound over real mutual TLS on loopback, with an independent peer (tests/peer.py).

The endpoint plays the dev gemeente; the peer presents the dev RINIS client certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from ggk_ebms.store.messages import MessageStore
from tests import peer
from tests.endpoint import ACTION, CPA_RM, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url

EB = "{http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd}"
CPA_SYNC = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"


def _xml(body: bytes) -> etree._Element:
    return etree.fromstring(body)


def _header(cpa_id: str = CPA_RM, **kw: object) -> peer.Header:
    return peer.Header(cpa_id, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente", **kw)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    return party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path))


async def test_ping_sync_gets_pong(settings) -> None:  # type: ignore[no-untyped-def]
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True))
    assert answer.status == 200, answer.text
    root = _xml(answer.body)
    assert root.findtext(f".//{EB}Action") == "Pong"
    assert root.find(f".//{EB}From/{EB}PartyId").text == GEMEENTE


async def test_ping_async_is_accepted_and_pong_queued(settings) -> None:  # type: ignore[no-untyped-def]
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), peer.ping_envelope(CPA_RM, RINIS, GEMEENTE))
        assert answer.status == 204, answer.text
        pongs = MessageStore(endpoint.database).list(direction="out", kind="Pong")
    assert len(pongs) == 1 and pongs[0].status == "Created"


async def test_reliable_message_with_attachments_sync_ack(settings) -> None:  # type: ignore[no-untyped-def]
    h = _header(CPA_SYNC)
    soap = peer.envelope(h, sync_reply=True, content_ids=("part1@peer.test", "part2@peer.test"))
    ctype, body = peer.multipart(
        soap,
        [("part1@peer.test", "application/xml", b"<a>1</a>"), ("part2@peer.test", "text/plain", b"x" * 5000)],
    )
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), body, content_type=ctype)
        assert answer.status == 200, answer.text
        root = _xml(answer.body)
        assert root.findtext(f".//{EB}Acknowledgment/{EB}RefToMessageId") == h.message_id
        store = MessageStore(endpoint.database)
        received = store.find("in", h.message_id)
        assert received is not None and received.status == "Received"
        assert [p.data for p in store.parts(received.pk)] == [b"<a>1</a>", b"x" * 5000]


async def test_reliable_message_async_ack(settings) -> None:  # type: ignore[no-untyped-def]
    h = _header()
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), peer.envelope(h))
        assert answer.status == 204, answer.text
        store = MessageStore(endpoint.database)
        acks = [
            m
            for m in store.list(direction="out", kind="Acknowledgment")
            if m.ref_to_message_id == h.message_id
        ]
    assert len(acks) == 1 and acks[0].status == "Created"


async def test_duplicate_same_content_replays_ack(settings) -> None:  # type: ignore[no-untyped-def]
    h = _header(CPA_SYNC)
    soap = peer.envelope(h, sync_reply=True)
    async with running(settings) as endpoint:
        first = await peer.post(url(endpoint), soap)
        second = await peer.post(url(endpoint), soap)
        assert first.status == second.status == 200
        assert _xml(first.body).findtext(f".//{EB}Acknowledgment/{EB}RefToMessageId") == h.message_id
        assert first.body == second.body  # the stored Ack, unchanged (same MessageId, Timestamp)
        store = MessageStore(endpoint.database)
        assert len(store.list(direction="in", kind="business")) == 1


async def test_duplicate_other_content_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    h = _header(CPA_SYNC)
    async with running(settings) as endpoint:
        first = await peer.post(url(endpoint), peer.envelope(h, sync_reply=True))
        h.conversation_id = "another-conversation"
        second = await peer.post(url(endpoint), peer.envelope(h, sync_reply=True))
    assert first.status == 200 and b"Acknowledgment" in first.body
    assert second.status == 500 and "already used" in second.text


async def test_status_request_before_and_after(settings) -> None:  # type: ignore[no-untyped-def]
    h = _header(CPA_SYNC)
    async with running(settings) as endpoint:
        before = await peer.post(
            url(endpoint), peer.status_request_envelope(CPA_SYNC, RINIS, GEMEENTE, h.message_id)
        )
        ack = await peer.post(url(endpoint), peer.envelope(h, sync_reply=True))
        assert b"Acknowledgment" in ack.body
        after = await peer.post(
            url(endpoint), peer.status_request_envelope(CPA_SYNC, RINIS, GEMEENTE, h.message_id)
        )
    assert before.status == after.status == 200
    status = f".//{EB}StatusResponse"
    assert _xml(before.body).find(status).get(f"{EB}messageStatus") == "NotRecognized"
    assert _xml(after.body).find(status).get(f"{EB}messageStatus") == "Received"


async def test_wrong_soap_action_is_a_fault(settings) -> None:  # type: ignore[no-untyped-def]
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), peer.envelope(_header()), soap_action='""')
    assert answer.status == 500 and "SOAPAction" in answer.text


async def test_unknown_cpa_is_a_fault(settings) -> None:  # type: ignore[no-untyped-def]
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), peer.envelope(_header("no-such-cpa")))
    assert answer.status == 500 and "not found" in answer.text


async def test_gemeente_certificate_cannot_act_for_rinis(settings) -> None:  # type: ignore[no-untyped-def]
    async with running(settings) as endpoint:
        answer = await peer.post(
            url(endpoint), peer.envelope(_header()), ssl_context=peer.client_ssl("gemeente")
        )
        assert answer.status == 403
        assert MessageStore(endpoint.database).list() == []


async def test_no_client_certificate_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    context = ssl.create_default_context(cafile=str(peer.DEV / "ca.pem"))
    async with running(settings) as endpoint:
        # Refused in the handshake or at the first read, depending on the TLS version.
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
            await peer.post(url(endpoint), peer.envelope(_header()), ssl_context=context)
