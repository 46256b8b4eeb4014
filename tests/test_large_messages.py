"""Large StUF envelopes end to end: the independent peer sends them to the gemeente endpoint over
ebMS (mutual TLS on loopback, real database), the endpoint acknowledges, and the delivery worker
unwraps and delivers them byte-exact to every target kind; an envelope over the GGk's 25 MB is
refused with a Fo01 IB003 instead of being acknowledged and then silently dropped.

Sizes are envelope sizes, base64 included, in MiB: the GGk rule counts the whole envelope and we
accept up to 25 MiB (docs/delivery.md "Message size").
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.server.run import Endpoint
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.stuf.envelope import parse_envelope
from ggk_ebms.xml import parse_large_text
from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url
from tests.http_target import BV03_SOAP, LoopbackTarget
from tests.large_support import MIB, Sized, sized_envelope
from tests.outbound_support import eventually, free_port, make_cpa, side_settings, started, submit

pytestmark = pytest.mark.slow

DI01_ACTION = "envelopHeenbericht-ggk_Di01"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path))


def routes(target: str) -> str:
    return (
        '[endpoint]\ngemeentecodes = ["0363"]\n'
        f'[[sender]]\nid = "{RINIS}"\ngemeentecodes = ["*"]\n'
        '[[route]]\nname = "groot"\ngemeentecode = "0363"\nberichttype = "*"\n'
        f"target = {target}\n"
    )


async def send(endpoint: Endpoint, envelope: bytes) -> str:
    """Post one SwA ebMS message with ``envelope`` as its payload part; the MessageId."""
    header = peer.Header(CPA_RM, RINIS, GEMEENTE, SERVICE, DI01_ACTION, from_role="GGk", to_role="Gemeente")
    cid = f"{uuid.uuid4()}@peer.test"
    content_type, body = peer.multipart(
        peer.envelope(header, content_ids=(cid,)), [(cid, "application/xml", envelope)]
    )
    answer = await peer.post(url(endpoint), body, content_type=content_type, timeout=300)
    assert answer.status in (200, 204), answer.text[:500]
    return header.message_id


async def receive_and_deliver(settings: Settings, endpoint: Endpoint, sized: Sized) -> StoredMessage:
    message_id = await send(endpoint, sized.envelope)
    await asyncio.to_thread(
        DeliveryWorker(settings, endpoint.database, clock=SystemClock(), ids=UuidIdGenerator()).run_once
    )
    message = MessageStore(endpoint.database).find("in", message_id)
    assert message is not None
    return message


@pytest.mark.parametrize("mib", [8, 15, 20, 25])
async def test_large_envelope_is_delivered_byte_exact_to_a_folder(
    settings: Settings, tmp_path: Path, mib: int
) -> None:
    inbox = tmp_path / "in"
    sized = sized_envelope(mib * MIB)
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(
            routes(f'{{ type = "directory", path = "{inbox}", write_envelope = true }}'),
            source="routes.toml",
            base_dir=tmp_path,
        )
        message = await receive_and_deliver(settings, endpoint, sized)
        parts = MessageStore(endpoint.database).parts(message.pk)
    assert message.status == "Forwarded", message.status_reason
    assert [p.data for p in parts] == [sized.envelope]  # stored as received
    name = f"0363_WMO305_{sized.referentienummer}"
    assert (inbox / f"{name}.xml").read_bytes() == sized.payload
    assert (inbox / f"{name}.envelope.xml").read_bytes() == sized.envelope


async def test_envelope_over_25_mib_is_acknowledged_then_refused_with_fo01_ib003(
    settings: Settings, tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    sized = sized_envelope(26 * MIB)
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(
            routes(f'{{ type = "directory", path = "{inbox}" }}'), source="routes.toml", base_dir=tmp_path
        )
        message = await receive_and_deliver(settings, endpoint, sized)
        store = MessageStore(endpoint.database)
        fo01s = [m for m in store.list(direction="out", kind="business") if m.action == "Fo01Bericht"]
        assert len(fo01s) == 1
        fo01_message = fo01s[0]
        fo01 = parse_envelope(store.parts(fo01_message.pk)[0].data)
    assert message.status == "Failed"
    assert message.error_code == "IB003"
    assert "Fo01 IB003 queued" in (message.status_reason or "")
    assert fo01_message.cpa_id == CPA_RM and fo01_message.to_party_id == RINIS
    assert fo01.fout is not None and fo01.fout.code == "IB003"
    assert fo01.stuurgegevens.cross_refnummer == sized.referentienummer
    assert fo01.stuurgegevens.ontvanger.organisatie == "65656055"  # the zender of the refused envelope
    assert not fo01.fout.has_details_xml  # a copy of 26 MiB would not fit in a Fo01
    assert not inbox.exists() or not list(inbox.iterdir())


async def test_25_mib_envelope_to_the_mailbox(settings: Settings, tmp_path: Path) -> None:
    sized = sized_envelope(25 * MIB)
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(
            routes('{ type = "mailbox" }'), source="routes.toml", base_dir=tmp_path
        )
        message = await receive_and_deliver(settings, endpoint, sized)
        mailbox = Mailbox(endpoint.database)
        [item] = mailbox.list(gemeentecode="0363")
        fetched = mailbox.fetch(item.pk)
    assert message.status == "Processed", message.status_reason
    assert fetched.payload == sized.payload


async def test_25_mib_envelope_forwarded_over_ebms_unchanged(settings: Settings, tmp_path: Path) -> None:
    sized = sized_envelope(25 * MIB)
    target = f'{{ type = "ebms", cpa_id = "{CPA_RM}", service = "{SERVICE}", action = "{DI01_ACTION}" }}'
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(routes(target), source="routes.toml", base_dir=tmp_path)
        message = await receive_and_deliver(settings, endpoint, sized)
        store = MessageStore(endpoint.database)
        [forward] = [m for m in store.list(direction="out", kind="business") if m.action == DI01_ACTION]
        parts = store.parts(forward.pk)
    assert message.status == "Forwarded", message.status_reason
    assert [p.data for p in parts] == [sized.envelope]


class SoapApplication(LoopbackTarget):
    """A domain application on loopback taking SOAP requests of any size; keeps what it got."""

    client_max_size = 64 * MIB

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(text=BV03_SOAP, content_type="text/xml")


@pytest.fixture
def application() -> Iterator[SoapApplication]:
    with SoapApplication() as app:
        yield app


async def test_25_mib_envelope_to_a_soap_application(
    settings: Settings, tmp_path: Path, application: SoapApplication
) -> None:
    sized = sized_envelope(25 * MIB)
    target = f'{{ type = "http", url = "http://127.0.0.1:{application.port}/ggk" }}'
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(routes(target), source="routes.toml", base_dir=tmp_path)
        message = await receive_and_deliver(settings, endpoint, sized)
    assert message.status == "Forwarded", message.status_reason
    [body] = application.bodies
    document = parse_large_text(body, max_bytes=len(body), what="SOAP request")
    stuf = document.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert stuf is not None and len(stuf) == 1
    assert stuf[0].tag == "{http://www.stufstandaarden.nl/koppelvlak/ggk0210}envelopHeenbericht-ggk_Di01"
    bestand = stuf[0].find(".//{http://www.stufstandaarden.nl/koppelvlak/ggk0210}xmlBestand")
    assert bestand is not None and base64.b64decode(bestand.text or "") == sized.payload
    # The envelope travels as received: every byte after its XML declaration is in the request.
    declaration_end = sized.envelope.index(b"?>") + 2
    assert sized.envelope[declaration_end:] in body


async def test_25_mib_envelope_is_sent_and_lands_byte_exact(tmp_path: Path, db_url: str) -> None:
    """The send worker streams a 25 MiB StUF envelope to the counterpart over mutual TLS; the
    counterpart's Acknowledgment makes it Delivered, and the part it stored is the same bytes."""
    g_port, r_port = free_port(), free_port()
    # A TimeToLive of minutes, not the few seconds of the other send tests: 25 MiB on a busy
    # machine must not expire on its way (the test is about bytes, not about time).
    cpa_id, cpa = make_cpa(
        g_port, r_port, sync_reply=True, version="large-1", retry_interval=timedelta(minutes=5)
    )
    gemeente = side_settings("gemeente", tmp_path, db_url, cpa, g_port, http_timeout=300.0)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'rinis.db'}", cpa, r_port)
    sized = sized_envelope(25 * MIB)
    async with started(rinis) as partner, started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id, sized.envelope)
        final = await eventually(
            lambda: MessageStore(us.database).get(message.pk).status in ("Delivered", "DeliveryFailed"),
            timeout=300,
            what="a final status",
        )
        assert final
        sent = MessageStore(us.database).get(message.pk)
        assert sent.status == "Delivered", sent.status_reason
        received = MessageStore(partner.database).find("in", message.message_id)
        assert received is not None
        assert [p.data for p in MessageStore(partner.database).parts(received.pk)] == [sized.envelope]
