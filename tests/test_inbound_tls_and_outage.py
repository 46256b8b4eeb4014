"""Transport-level refusals on the real server, and ack-after-commit when the database is down."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.testing import pki
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url

CPA_SYNC = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"
REFUSED = (aiohttp.ClientError, ssl.SSLError, ConnectionError)


def _message() -> tuple[peer.Header, bytes]:
    h = peer.Header(CPA_SYNC, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente")
    return h, peer.envelope(h, sync_reply=True)


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'tls.db'}", cpa_folder(tmp_path))


async def test_certificate_from_another_ca_is_refused(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    other_ca = pki.create_ca(
        "Other TEST CA", not_before=now - timedelta(days=1), not_after=now + timedelta(days=30)
    )
    client = pki.issue_client_certificate(
        other_ca,
        oin=RINIS,
        common_name="impostor",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    (tmp_path / "c.pem").write_bytes(client.certificate_pem())
    (tmp_path / "k.pem").write_bytes(client.private_key_pem())
    context = ssl.create_default_context(cafile=str(peer.DEV / "ca.pem"))
    context.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    _, soap = _message()
    async with running(settings) as endpoint:
        with pytest.raises(REFUSED):
            await peer.post(url(endpoint), soap, ssl_context=context)
        assert MessageStore(endpoint.database).list() == []


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")  # TLS 1.1 on purpose
async def test_tls_1_1_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    context = peer.client_ssl()
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    _, soap = _message()
    async with running(settings) as endpoint:
        with pytest.raises(REFUSED):
            await peer.post(url(endpoint), soap, ssl_context=context)


class _Proxy:
    """A TCP proxy to PostgreSQL that the test can cut, to make the database unreachable."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]
        for task in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            t = asyncio.create_task(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for w in self.writers:
            w.close()
        self.writers.clear()


@pytest.mark.postgres
async def test_database_outage_answers_503_and_never_acknowledges(tmp_path: Path, pg_schema_url: str) -> None:
    real = sa.make_url(pg_schema_url)
    proxy = _Proxy(real.port or 5432)
    await proxy.open()
    proxied = real.set(port=proxy.port).render_as_string(hide_password=False)
    settings = party_settings("gemeente", tmp_path, proxied, cpa_folder(tmp_path))
    h, soap = _message()
    async with running(settings) as endpoint:
        ok = await peer.post(url(endpoint), peer.ping_envelope(CPA_SYNC, RINIS, GEMEENTE, sync_reply=True))
        assert ok.status == 200
        await proxy.cut()
        await asyncio.sleep(2.5)  # past the CPA cache's recheck interval: the database is asked again
        down = await peer.post(url(endpoint), soap)
        assert down.status == 503, down.text
        assert b"Acknowledgment" not in down.body
        await proxy.open()  # same port: the database is back
        again = await peer.post(url(endpoint), soap)
        assert again.status == 200 and b"Acknowledgment" in again.body
    database = Database(pg_schema_url)
    try:
        stored = MessageStore(database).list(direction="in", kind="business")
    finally:
        database.dispose()
    assert [m.message_id for m in stored] == [h.message_id]
