"""JSON log lines (setting log_format): one object per line with the message's identifiers and
no personal data; text stays the default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ggk_ebms.config import load
from ggk_ebms.errors import ConfigError
from ggk_ebms.logformat import JsonLineFormatter, is_bsn, log_fields, mask_bsns
from tests import peer
from tests.endpoint import ACTION, CPA_RM, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings
from tests.process import ServerProcess, free_port, write_settings

BSN = "123456782"  # passes the eleven-test; a made-up number


def test_eleven_test() -> None:
    assert is_bsn(BSN)
    assert not is_bsn("123456789")
    assert not is_bsn("12345678")
    assert mask_bsns(f"ref {BSN} and 123456789 and 1{BSN}") == "ref [bsn] and 123456789 and 1123456782"


def test_formatter_keeps_only_the_declared_fields() -> None:
    record = logging.LogRecord(
        "ggk_ebms.x", logging.WARNING, __file__, 1, "client %s sent %s", ("a", BSN), None
    )
    for key, value in log_fields(
        message_id="m-1@x", cpa_id="cpa-1", gemeentecode="0363", berichttype="WMO301"
    ).items():
        setattr(record, key, value)
    record.payload = b"<bsn>" + BSN.encode()  # anything else on the record never reaches the line
    line = json.loads(JsonLineFormatter().format(record))
    assert set(line) == {
        "timestamp",
        "level",
        "logger",
        "event",
        "MessageId",
        "CPAId",
        "gemeentecode",
        "berichttype",
    }
    assert line["event"] == "client a sent [bsn]"
    assert line["level"] == "WARNING" and line["MessageId"] == "m-1@x" and line["gemeentecode"] == "0363"
    assert line["timestamp"].endswith("+00:00")


def test_log_format_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('log_format = "xml"\n')
    with pytest.raises(ConfigError, match="log_format"):
        load(config)
    config.write_text("")
    assert load(config).log_format == "text"


async def test_served_message_logs_json_lines(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    settings = party_settings(
        "gemeente", tmp_path, db_url, cpa_folder(tmp_path), port=port, log_format="json", log_level="INFO"
    )
    log = tmp_path / "serve.log"
    server = ServerProcess(write_settings(settings, tmp_path / "settings.toml"), port, log)
    header = peer.Header(CPA_RM, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente")
    server.start()
    try:
        answer = await peer.post(f"https://127.0.0.1:{port}{settings.path}", peer.envelope(header))
        assert answer.status == 204, answer.text
    finally:
        server.stop()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    received = [p for p in parsed if p.get("MessageId") == header.message_id]
    assert received, parsed
    assert received[0]["CPAId"] == CPA_RM
    assert received[0]["level"] == "INFO"
    assert "received" in received[0]["event"]
