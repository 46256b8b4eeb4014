"""``--json`` on every list/show/test command: each output parses and has its documented shape.

The shapes are documented in docs/cli.md; the key sets asserted here are the ones that page
promises, so a change to either shows up here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ggk_ebms.cli.main import cli
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import load
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.store.db import Database
from tests.conftest import PROJECT_ROOT
from tests.test_delivery_worker import envelope, receive

DEV_CPA = "dev-osb-rm.xml"
CPA_ID = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_osb-rm-1"

ROUTES = """[endpoint]
gemeentecodes = ["0363"]

[[sender]]
id = "00000099000001000000"
gemeentecodes = ["*"]

[[route]]
name = "amsterdam-wmo"
gemeentecode = "0363"
berichttype = "WMO305"
target = { type = "mailbox" }
"""

MESSAGE_KEYS = {
    "id", "direction", "kind", "status", "status_reason", "error_code", "message_id",
    "ref_to_message_id", "cpa_id", "conversation_id", "from_party_id", "from_party_type",
    "from_role", "to_party_id", "to_party_type", "to_role", "service", "service_type", "action",
    "timestamp", "time_to_live", "sync_reply", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One endpoint's settings and database: the dev CPA, a routing table, one mailbox item."""
    root = tmp_path_factory.mktemp("cli-json")
    cpa = root / "cpa"
    cpa.mkdir()
    shutil.copy(PROJECT_ROOT / "cpa" / DEV_CPA, cpa / DEV_CPA)
    path = root / "ggk-ebms.toml"
    path.write_text(
        f'data_dir = "{root / "var"}"\ncpa_dir = "{cpa}"\nstuf_applicatie = "Wmo Zaaksysteem"\n',
        encoding="utf-8",
    )
    assert invoke(path, "cpa", "import", str(cpa / DEV_CPA)).exit_code == 0
    routes = root / "routes.toml"
    routes.write_text(ROUTES, encoding="utf-8")
    assert invoke(path, "routes", "import", str(routes)).exit_code == 0
    db = Database(f"sqlite:///{root / 'var' / 'ggk-ebms.db'}")
    db.upgrade()
    try:
        receive(db, envelope("0363"), cpa_id=CPA_ID, deliver=True)
        DeliveryWorker(load(path), db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()
    finally:
        db.dispose()
    return path


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def as_json(config: Path, *args: str, exit_code: int = 0) -> Any:
    result = invoke(config, *args, "--json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def test_cpa_list_and_show(config: Path) -> None:
    listed = as_json(config, "cpa", "list")
    assert set(listed) == {"cpas"}
    (cpa,) = listed["cpas"]
    assert set(cpa) == {
        "cpa_id", "party_ids", "profiles", "start", "end", "validity", "status", "sha256",
        "imported_at", "updated_at", "activated_at", "profielnaam",
    }  # fmt: skip
    assert cpa["activated_at"] is None  # no successful Ping Pong yet
    assert cpa["cpa_id"] == CPA_ID
    assert cpa["validity"] == "valid"
    assert cpa["profiles"] == ["osb-rm"]

    shown = as_json(config, "cpa", "show", CPA_ID)
    assert set(shown) == {"cpa", "stored", "portal"}
    assert shown["portal"] is None  # no portal request fields stored
    assert shown["cpa"]["cpa_id"] == CPA_ID
    assert set(shown["cpa"]) == {
        "cpa_id", "version", "status", "start", "end", "validity", "profiles", "parties",
    }  # fmt: skip
    assert shown["stored"]["sha256"] == cpa["sha256"]
    gemeente = shown["cpa"]["parties"][0]
    assert set(gemeente) == {
        "name", "party_ids", "roles", "msh_signal_channel", "actions", "endpoints", "channels",
        "certificates",
    }  # fmt: skip
    assert gemeente["endpoints"][0]["uri"] == "https://localhost:8443/ebms"
    assert {a["direction"] for a in gemeente["actions"]} == {"send", "receive"}
    assert all(c["readable"] and len(c["sha256"]) > 0 for c in gemeente["certificates"])


LOG_ROW_KEYS = {
    "tijdstip", "message_pk", "aanlever_file_pk", "batch_pk", "direction", "kind", "status",
    "status_reason", "error_code", "cpa_id", "message_id", "berichttype", "gemeentecode",
    "referentienummer", "zender", "ontvanger", "stuf_fout", "gelezen", "verwijderd",
}  # fmt: skip


def test_messages_list_and_show(config: Path) -> None:
    listed = as_json(config, "messages", "list")
    assert set(listed) == {"since", "until", "rows", "offset", "more"}
    (row,) = listed["rows"]
    assert set(row) == LOG_ROW_KEYS
    assert row["direction"] == "in"
    assert row["cpa_id"] == CPA_ID
    assert row["berichttype"] == "WMO305"

    shown = as_json(config, "messages", "show", str(row["message_pk"]))
    assert set(shown) == {"message", "parts", "related", "attempts"}
    assert set(shown["message"]) == MESSAGE_KEYS
    assert shown["message"]["message_id"] == row["message_id"]
    assert [set(p) for p in shown["parts"]] == [{"seq", "content_id", "content_type", "size", "sha256"}]
    by_message_id = as_json(config, "messages", "show", row["message_id"])
    assert by_message_id == shown


def test_messages_list_json_has_no_rows_when_nothing_matches(config: Path) -> None:
    listed = as_json(config, "messages", "list", "--status", "NoSuchStatus")
    assert listed["rows"] == []
    assert listed["more"] is False


def test_routes_list_and_test(config: Path) -> None:
    listed = as_json(config, "routes", "list")
    assert set(listed) == {"table", "routes"}
    assert listed["table"]["served_gemeentecodes"] == ["0363"]
    (route,) = listed["routes"]
    assert route["name"] == "amsterdam-wmo"
    assert route["target"] == {"kind": "mailbox"}

    routed = as_json(config, "routes", "test", "--gemeentecode", "0363", "--berichttype", "WMO305")
    assert routed["routed"] is True
    assert routed["route"]["name"] == "amsterdam-wmo"
    assert routed["authorisation"] is None

    allowed = as_json(
        config, "routes", "test", "--gemeentecode", "0363", "--berichttype", "WMO305",
        "--sender", "00000099000001000000",
    )  # fmt: skip
    assert allowed["authorisation"]["allowed"] is True

    refused = as_json(
        config, "routes", "test", "--gemeentecode", "0599", "--berichttype", "WMO305", exit_code=1
    )
    assert refused["routed"] is False
    assert refused["route"] is None
    assert refused["code"]


def test_mailbox_list(config: Path) -> None:
    listed = as_json(config, "mailbox", "list")
    assert set(listed) == {"items"}
    (item,) = listed["items"]
    assert set(item) == {
        "id", "message_id", "route", "gemeentecode", "berichttype", "referentienummer", "zender",
        "filename", "size", "sha256", "created_at", "gelezen", "fetched_at",
    }  # fmt: skip
    assert item["berichttype"] == "WMO305"
    assert item["gelezen"] is False


def test_config_show_and_check(config: Path) -> None:
    shown = as_json(config, "config", "show")
    assert set(shown) == {"source", "settings"}
    settings = {s["name"]: s for s in shown["settings"]}
    assert settings["stuf_applicatie"]["value"] == "Wmo Zaaksysteem"
    assert all(set(s) == {"name", "value", "help"} for s in shown["settings"])

    result = invoke(config, "config", "check", "--json")
    checked = json.loads(result.stdout)
    assert set(checked) == {"findings", "errors", "warnings"}
    assert checked["findings"][0]["subject"] == "settings"
    assert result.exit_code == (1 if checked["errors"] else 0)
    assert checked["errors"] == sum(1 for f in checked["findings"] if f["level"] == "ERROR")


def test_config_check_json_when_the_settings_are_unusable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 'not a number'\n", encoding="utf-8")
    checked = as_json(bad, "config", "check", exit_code=1)
    assert checked["errors"] == 1
    assert checked["findings"][0]["level"] == "ERROR"


@pytest.mark.slow
def test_piped_json_from_a_real_process(config: Path) -> None:
    """As a script sees it: the installed command's stdout through a pipe is one JSON document."""
    done = subprocess.run(
        [sys.executable, "-m", "ggk_ebms", "--config", str(config), "messages", "list", "--json"],
        capture_output=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "40"},
    )
    assert len(json.loads(done.stdout)["rows"]) == 1


@pytest.mark.slow
def test_piped_table_keeps_each_message_on_one_line(config: Path) -> None:
    """Not a terminal and only 40 columns: rows are not wrapped and identifiers not cut."""
    done = subprocess.run(
        [sys.executable, "-m", "ggk_ebms", "--config", str(config), "messages", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "40"},
    )
    message = json.loads(invoke(config, "messages", "list", "--json").stdout)["rows"][0]
    lines = done.stdout.splitlines()
    assert len(lines) == 3  # heading, rule, one message
    assert message["message_id"] in lines[2]
    assert CPA_ID in lines[2]
