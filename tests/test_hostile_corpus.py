"""Replays tests/hostile/*.toml over real TLS against a real endpoint (see tests/hostile/README.md).

Each case is sent, its answer checked against the expectation in its file, the log checked for
what must not be in it, and the endpoint must answer a Ping afterwards.
"""

from __future__ import annotations

import gzip
import logging
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.store.messages import MessageStore
from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, cpa_folder, party_settings, running, url
from tests.limits_support import closed_by_server, stranger_ssl, tls_connect

CORPUS = Path(__file__).resolve().parent / "hostile"
CASES = sorted(CORPUS.glob("*.toml"))


def body_of(case: dict[str, Any]) -> bytes:
    spec = case.get("generate")
    if spec is None:
        text = str(case.get("body", ""))
        for key, value in {"{CPA}": CPA_RM, "{FROM}": RINIS, "{TO}": GEMEENTE, "{NOW}": peer.now_z()}.items():
            text = text.replace(key, value)
        return text.encode("utf-8")
    if spec["kind"] == "repeat":
        # Code points 0-255 stand for the bytes of the same value.
        return (
            spec["prefix"].encode("latin-1")
            + spec["unit"].encode("latin-1") * int(spec["count"])
            + spec["suffix"].encode("latin-1")
        )
    if spec["kind"] == "gzip-zeros":
        return gzip.compress(b"\0" * int(spec["size"]), compresslevel=9)
    raise AssertionError(f"unknown generator {spec['kind']!r}")


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
async def test_hostile_case(path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    case = tomllib.loads(path.read_text(encoding="utf-8"))
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'h.db'}",
        cpa_folder(tmp_path),
        max_body_bytes=40 * 1024 * 1024,
    )
    context = stranger_ssl(tmp_path / "stranger") if case["client"] == "stranger" else peer.client_ssl()
    caplog.set_level(logging.INFO)
    async with running(settings) as endpoint:
        if case["mode"] == "raw":
            reader, writer = await tls_connect(endpoint.port, context)
            writer.write(case["raw"].encode("latin-1"))
            await writer.drain()
            answer = await closed_by_server(reader, deadline=60)
            writer.close()
            status_line = answer.split(b"\r\n", 1)[0].split()
            assert status_line[:1] in ([b"HTTP/1.0"], [b"HTTP/1.1"]), answer[:200]
            assert int(status_line[1]) == case["expect_status"], answer[:200]
            text = answer.decode("latin-1")
        else:
            soap_action = case.get("soap_action", '"ebXML"')
            reply = await peer.post(
                url(endpoint),
                body_of(case),
                content_type=case["content_type"],
                soap_action=soap_action or None,
                ssl_context=context,
                extra_headers=case.get("headers"),
                timeout=120,
            )
            assert reply.status == case["expect_status"], (reply.status, reply.text[:300])
            text = reply.body.decode("utf-8", "replace")
        for expected in case.get("expect_body_contains", []):
            assert expected in text, text[:500]
        for unexpected in case.get("expect_body_lacks", []):
            assert unexpected not in text, text[:500]
        if not case.get("stored", False):
            assert MessageStore(endpoint.database).list() == []
        pong = await peer.post(url(endpoint), peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True))
        assert pong.status == 200 and b"Pong" in pong.body
    for expected in case.get("log_contains", []):
        assert any(expected in record.getMessage() for record in caplog.records), expected
    for record in caplog.records:
        line = record.getMessage() + (caplog.text if record.exc_info else "")
        for unexpected in case.get("log_lacks", []):
            assert unexpected not in line, line[:500]
        assert record.exc_info is None or record.levelno >= logging.ERROR
