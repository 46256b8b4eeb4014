"""The real ``ebms-adapter-client`` (PyPI) against /service/rest/v19, with a second endpoint as
the counterpart, over TLS on loopback: CPAs, mappings, send until DELIVERED, the counterpart's
unprocessed messages and events, ping and resend. /metrics moves with the traffic."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from ebms_adapter_client import (
    CertificateMapping,
    DataSource,
    EbmsAdapterClient,
    EbmsAdapterClientConfig,
    EbmsBadRequestError,
    EbmsNotFoundError,
    MessageEventType,
    MessageRequest,
    MessageRequestProperties,
    URLMapping,
)
from ebms_adapter_client import (
    EbMSMessageStatus as EbmsMessageStatus,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.api_support import api_url, ca_context, call, token
from tests.endpoint import DEV, GEMEENTE, RINIS
from tests.outbound_support import GEMEENTE_ACTION, SERVICE, free_port, make_cpa, side_settings, started

pytestmark = pytest.mark.slow


def _client(endpoint, secret: str) -> EbmsAdapterClient:  # type: ignore[no-untyped-def]
    config = EbmsAdapterClientConfig(
        base_url=api_url(endpoint),
        username="app",
        password=secret,
        verify_ssl=ca_context(),  # type: ignore[arg-type]
    )
    return EbmsAdapterClient(config)


def _der_b64(party: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate((DEV / party / "server.pem").read_bytes())
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def _stored_business(metrics: str, direction: str, status: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics):
        if family.name == "ggk_ebms_messages":
            for sample in family.samples:
                if sample.labels["direction"] == direction and sample.labels["status"] == status:
                    total += sample.value
    return total


async def test_ebms_core_client_against_rest_v19(tmp_path: Path) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    api = {"api_tls": "always", "api_host": "127.0.0.1"}
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port, **api)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port, **api)
    async with started(rinis) as partner, started(gemeente) as us:
        ours = _client(us, token(us, "app", "admin"))
        theirs = _client(partner, token(partner, "app", "send", "read"))
        metrics_token = token(us, "prometheus", "read")
        run = asyncio.to_thread

        # CPAs: validate, insert (and refuse a second insert without overwrite), list, get, delete.
        other_id, other = make_cpa(g_port, r_port, version="api-2")
        await run(ours.validate_cpa, other.decode())
        with pytest.raises(EbmsBadRequestError):
            await run(ours.validate_cpa, "<not-a-cpa/>")
        assert await run(ours.insert_cpa, other.decode()) == other_id
        assert await run(ours.insert_cpa, other.decode(), overwrite=True) == other_id
        assert set(await run(ours.list_cpa_ids)) == {cpa_id, other_id}
        assert (await run(ours.get_cpa, other_id)).encode() == other
        await run(ours.delete_cpa, other_id)
        with pytest.raises(EbmsNotFoundError):
            await run(ours.get_cpa, other_id)
        await run(ours.clear_cpa_cache)

        # Mappings are stored and listed (the sender honouring them: test_api_mappings.py).
        mapping = URLMapping("https://old.example:8443/ebms", "https://new.example:8443/ebms")
        await run(ours.create_url_mapping, mapping)
        assert await run(ours.list_url_mappings) == [mapping]
        await run(ours.delete_url_mapping, mapping.source)
        assert await run(ours.list_url_mappings) == []
        cert_mapping = CertificateMapping(_der_b64("rinis"), _der_b64("gemeente"), cpa_id)
        await run(ours.create_certificate_mapping, cert_mapping)
        assert await run(ours.list_certificate_mappings) == [cert_mapping]
        await run(ours.delete_certificate_mapping, cpa_id, cert_mapping.source)
        assert await run(ours.list_certificate_mappings) == []

        # Send and follow the status until DELIVERED.
        status, _, before = await call(us, "GET", "/metrics", metrics_token)
        assert status == 200
        request = MessageRequest(
            MessageRequestProperties(cpa_id, GEMEENTE, SERVICE, GEMEENTE_ACTION, to_party_id=RINIS),
            [DataSource("application/xml", b"<bericht>een</bericht>", content_id="part-1@test")],
        )
        message_id = await run(ours.send_message, request)

        async def delivered(mid: str) -> bool:
            found = await run(ours.get_message_status, mid)
            return found.status is EbmsMessageStatus.DELIVERED

        await _until(lambda: delivered(message_id))
        _, _, after = await call(us, "GET", "/metrics", metrics_token)
        assert _stored_business(after.decode(), "out", "Delivered") == (
            _stored_business(before.decode(), "out", "Delivered") + 1
        )

        # The counterpart's application: unprocessed, get, mark processed.
        assert message_id in await run(theirs.list_unprocessed_message_ids)
        received = await run(theirs.get_message, message_id)
        assert received.properties.message_status is EbmsMessageStatus.RECEIVED
        assert received.properties.from_party.party_id == GEMEENTE
        assert [d.content for d in received.data_sources] == [b"<bericht>een</bericht>"]
        await run(theirs.process_message, message_id)
        assert message_id not in await run(theirs.list_unprocessed_message_ids)
        assert (await run(theirs.get_message_status, message_id)).status is EbmsMessageStatus.PROCESSED

        # Events on both sides: RECEIVED there, DELIVERED here; marked events are gone.
        events = await run(theirs.list_unprocessed_message_events)
        assert [(e.message_id, e.type) for e in events] == [(message_id, MessageEventType.RECEIVED)]
        await run(theirs.process_message_event, message_id)
        assert await run(theirs.list_unprocessed_message_events) == []
        mine = await run(ours.list_unprocessed_message_events, event_types=[MessageEventType.DELIVERED])
        assert (message_id, MessageEventType.DELIVERED) in [(e.message_id, e.type) for e in mine]

        # Ping and resend (a new MessageId, delivered too).
        await run(ours.ping, cpa_id, GEMEENTE, RINIS)
        again = await run(ours.resend_message, message_id)
        assert again != message_id
        await _until(lambda: delivered(again))
        with pytest.raises(EbmsNotFoundError):
            await run(ours.get_message, "no-such-message@test")


async def _until(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)
