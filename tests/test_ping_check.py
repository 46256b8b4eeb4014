"""The Ping/Pong check against real loopback servers: a healthy partner, nothing listening, a
server whose certificate we do not trust and a server that refuses our client certificate, each
with its own diagnosis; the asynchronous Pong path; and ``ggk-ebms ping`` as a process.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.ebms.build import build_pong
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.pipeline.ping import PingResult, find_cpa_for_partner, ping
from ggk_ebms.pipeline.records import new_message_from_received
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.testing.pki import create_ca, issue_server_certificate
from ggk_ebms.transport.client import EbmsClient
from ggk_ebms.transport.result import HttpResult, Layer
from tests.endpoint import RINIS
from tests.outbound_support import free_port, make_cpa, side_settings, started
from tests.process import write_settings

pytestmark = pytest.mark.slow


def _our_side(tmp_path: Path, db_url: str, cpa: bytes, port: int) -> tuple[Settings, Database]:
    settings = side_settings(
        "gemeente", tmp_path, db_url, cpa, port, http_connect_timeout=3.0, http_timeout=5.0
    )
    database = Database(db_url)
    database.upgrade()
    assert all("not imported" not in line for line in import_cpa_dir(settings, database))
    return settings, database


async def _ping(settings: Settings, database: Database, cpa_id: str, **kw: object) -> PingResult:
    async with EbmsClient.from_settings(settings, client_context_from_settings(settings)) as client:
        return await ping(
            settings,
            database,
            client,
            cpa_id=cpa_id,
            ids=UuidIdGenerator(host="gemeente.test"),
            clock=SystemClock(),
            **kw,  # type: ignore[arg-type]
        )


def _other_ca_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA outside our trust store and a localhost server certificate it issued."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca = create_ca("Other test CA", not_before=now, not_after=now + timedelta(days=2))
    server = issue_server_certificate(ca, oin=RINIS, not_before=now, not_after=now + timedelta(days=2))
    folder = tmp_path / "other-ca"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(ca.certificate_pem())
    (folder / "server.pem").write_bytes(server.certificate_pem())
    (folder / "server-key.pem").write_bytes(server.private_key_pem())
    return folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"


async def test_healthy_partner_answers_pong(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    settings, database = _our_side(tmp_path, db_url, cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'rinis.db'}", cpa, r_port)
    try:
        async with started(rinis, worker=False):
            result = await _ping(settings, database, cpa_id)
        assert result.ok, result.diagnosis
        assert result.diagnosis.layer is Layer.OK and result.diagnosis.round_trip_ms is not None
        assert result.target.partner_oin == RINIS
        assert result.target.endpoint == f"https://localhost:{r_port}/ebms"
        sent = MessageStore(database).find("out", result.ping_message_id)
        assert sent is not None and sent.kind == "Ping" and sent.status == "Sent"
        assert find_cpa_for_partner(database, settings, RINIS, datetime.now(UTC)) == cpa_id
    finally:
        database.dispose()


async def test_nothing_listening_is_a_connect_diagnosis(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    settings, database = _our_side(tmp_path, db_url, cpa, g_port)
    try:
        result = await _ping(settings, database, cpa_id)
    finally:
        database.dispose()
    assert not result.ok
    assert result.diagnosis.layer is Layer.CONNECT
    assert f"localhost:{r_port}" in result.diagnosis.summary


async def test_untrusted_server_certificate(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    settings, database = _our_side(tmp_path, db_url, cpa, g_port)
    _ca, server_cert, server_key = _other_ca_files(tmp_path)
    rinis = side_settings(
        "rinis",
        tmp_path,
        f"sqlite:///{tmp_path / 'rinis.db'}",
        cpa,
        r_port,
        tls_server_cert=server_cert,
        tls_server_key=server_key,
    )
    try:
        async with started(rinis, worker=False):
            result = await _ping(settings, database, cpa_id)
    finally:
        database.dispose()
    assert not result.ok
    assert result.diagnosis.layer is Layer.TLS_SERVER_UNTRUSTED
    assert "trust store" in result.diagnosis.summary


async def test_partner_refuses_our_client_certificate(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    settings, database = _our_side(tmp_path, db_url, cpa, g_port)
    other_ca, _cert, _key = _other_ca_files(tmp_path)
    # The partner trusts only another CA, so our dev client certificate is refused in TLS.
    rinis = side_settings(
        "rinis", tmp_path, f"sqlite:///{tmp_path / 'rinis.db'}", cpa, r_port, tls_trust_store=other_ca
    )
    try:
        async with started(rinis, worker=False):
            result = await _ping(settings, database, cpa_id)
    finally:
        database.dispose()
    assert not result.ok
    assert result.diagnosis.layer is Layer.TLS_CLIENT_REFUSED
    assert "refused our client certificate" in result.diagnosis.summary


class _AcceptingClient:
    """A stand-in client whose partner answers the Ping with 204, then sends its Pong to our
    endpoint; the Pong is stored the way the inbound pipeline stores it."""

    def __init__(self, database: Database, *, pong: bool) -> None:
        self.database = database
        self.pong = pong
        self.task: asyncio.Task[None] | None = None

    async def post(
        self, url: str, *, body: bytes, content_type: str, expected_server_cert_der: bytes | None
    ) -> HttpResult:
        if self.pong:
            self.task = asyncio.create_task(self._pong_later(body))
        return HttpResult(204, None, b"", 0.01, None)

    async def _pong_later(self, ping_envelope: bytes) -> None:
        await asyncio.sleep(0.3)
        built = build_pong(
            parse_envelope(ping_envelope, max_bytes=100_000),
            ids=UuidIdGenerator("rinis"),
            clock=SystemClock(),
        )
        record = new_message_from_received(
            parse_envelope(built.envelope, max_bytes=100_000),
            "text/xml",
            "d",
            status="Processed",
            envelope=built.envelope,
        )
        await asyncio.to_thread(
            MessageStore(self.database).receive,
            record,
            [],
            response=None,
            deliver=False,
            send_response_async=False,
        )


@pytest.mark.parametrize("pong", [True, False])
async def test_asynchronous_pong_is_awaited(tmp_path: Path, pong: bool) -> None:
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    settings, database = _our_side(tmp_path, db_url, cpa, g_port)
    client = _AcceptingClient(database, pong=pong)
    try:
        result = await ping(
            settings,
            database,
            client,  # type: ignore[arg-type]
            cpa_id=cpa_id,
            ids=UuidIdGenerator(host="gemeente.test"),
            clock=SystemClock(),
            pong_wait=3.0,
        )
    finally:
        database.dispose()
    assert result.ok is pong
    assert result.asynchronous is pong
    if pong:
        assert result.diagnosis.round_trip_ms is not None and result.diagnosis.round_trip_ms >= 300
    else:
        assert result.diagnosis.layer is Layer.EBMS
        assert "is `ggk-ebms serve` running" in result.diagnosis.advice


async def _cli(config: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ggk_ebms",
        "--config",
        str(config),
        "ping",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_ping_command_exit_status_and_output(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    settings, database = _our_side(tmp_path, db_url, cpa, g_port)
    database.dispose()
    config = write_settings(settings, tmp_path / "gemeente.toml")
    code, out = await _cli(config, "--cpa", cpa_id)
    assert code == 1 and "[connect]" in out and "What to do:" in out, out
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'rinis.db'}", cpa, r_port)
    async with started(rinis, worker=False):
        code, out = await _cli(config, "--cpa", cpa_id)
        assert code == 0 and f"Pong from {RINIS} in " in out, out
        code, out = await _cli(config, "--partner", RINIS)
        assert code == 0 and f"Pong from {RINIS} in " in out, out
    code, out = await _cli(config, "--partner", "00000099000009999999")
    assert code == 1 and "no imported CPA" in out, out
