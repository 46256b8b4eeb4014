"""The configured MessageId host (Digikoppeling EB013: MessageId = UUID@host) on every path that
creates a message: Acknowledgment, Pong, StatusResponse, MessageError (inbound), Fo01, hub
forward and outbox (the delivery worker of ``serve``), and the ``submit`` and ``send`` commands.

Each process builds one ``Runtime`` (the composition root); these tests run the real endpoint,
its workers and the CLI with ``message_id_host`` set and look at the MessageIds they stored.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.config import Settings
from ggk_ebms.delivery.worker import delivery_task
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.server.run import start_endpoint
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.routes import RouteStore
from tests import peer
from tests.cli_support import settings_file
from tests.conftest import require_shared
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, url
from tests.outbound_support import eventually
from tests.test_delivery_endpoint import DI01_ACTION, send, wrap

HOST = "ids.gemeente.test"

ROUTES = f"""[endpoint]
gemeentecodes = ["0363", "0384"]
[[sender]]
id = "{RINIS}"
gemeentecodes = ["*"]
[[route]]
name = "hub"
gemeentecode = "0384"
berichttype = "*"
target = {{ type = "ebms", cpa_id = "{CPA_RM}", service = "{SERVICE}", action = "{DI01_ACTION}" }}
[[route]]
name = "rest"
gemeentecode = "*"
berichttype = "*"
target = {{ type = "mailbox" }}
"""


def _ours(message: StoredMessage) -> bool:
    return message.message_id.endswith(f"@{HOST}")


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        message_id_host=HOST,
        payload_schemas=require_shared("spec", "istandaarden"),
        outbox_dir=tmp_path / "outbox",
        worker_poll_seconds=0.1,
    )


async def test_every_served_path_uses_the_configured_host(settings: Settings, tmp_path: Path) -> None:
    def on_database(database: Database) -> None:
        for line in import_cpa_dir(settings, database):
            assert "not imported" not in line, line
        RouteStore(database).replace(ROUTES, source="routes.toml", base_dir=tmp_path)

    berichten = require_shared("spec", "istandaarden", "ijw_3_2", "berichten")
    endpoint = await start_endpoint(settings, on_database=on_database, workers=[delivery_task(settings)])
    try:
        store = MessageStore(endpoint.database)
        # Inbound: Ping -> Pong, StatusRequest -> StatusResponse, business -> Acknowledgment,
        # an unknown action -> MessageError.
        await peer.post(url(endpoint), peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True))
        await peer.post(
            url(endpoint), peer.status_request_envelope(CPA_RM, RINIS, GEMEENTE, "unknown@peer.test")
        )
        bad = peer.Header(
            CPA_RM, RINIS, GEMEENTE, SERVICE, "NoSuchAction", from_role="GGk", to_role="Gemeente"
        )
        await peer.post(url(endpoint), peer.envelope(bad))
        # Delivery: a faulty JW315 earns a Fo01; a message for 0384 is forwarded over ebMS (hub).
        faulty, action, _ = wrap((berichten / "JW315.xml").read_bytes())
        await send(url(endpoint), faulty, action)
        hub, action, _ = wrap((berichten / "JW305.xml").read_bytes().replace(b"0363", b"0384"))
        await send(url(endpoint), hub, action)
        # The outbox: a payload dropped there is wrapped and queued.
        settings.outbox_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(berichten / "JW319.xml", settings.outbox_dir / "a.xml")

        def kinds() -> dict[str, list[StoredMessage]] | None:
            found: dict[str, list[StoredMessage]] = {}
            for m in store.list(direction="out", limit=100):
                found.setdefault(m.action, []).append(m)
            wanted = {"Pong", "StatusResponse", "Acknowledgment", "MessageError", "Fo01Bericht"}
            business = found.get(DI01_ACTION, [])
            return found if wanted <= set(found) and len(business) >= 2 else None

        found: dict[str, list[Any]] = await eventually(kinds, timeout=60, what="every kind of message")
    finally:
        await endpoint.stop()
    for action in ("Pong", "StatusResponse", "Acknowledgment", "MessageError", "Fo01Bericht", DI01_ACTION):
        assert found[action] and all(_ours(m) for m in found[action]), (action, found[action])


def test_submit_and_send_commands_use_the_configured_host(tmp_path: Path) -> None:
    config = settings_file(
        tmp_path,
        f'message_id_host = "{HOST}"\n'
        f'party_ids = ["{GEMEENTE}"]\nserved_gemeentecodes = ["0384"]\n',  # JW319's gemeente
    )
    cpa = tmp_path / "cpa"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("cpa", "import", str(cpa / "dev-osb-rm.xml"))
    jw319 = require_shared("spec", "istandaarden", "ijw_3_2", "berichten", "JW319.xml")
    run("submit", str(jw319))
    payload = tmp_path / "p.xml"
    payload.write_bytes(b"<x/>")
    sent_id = run(
        "send", "--cpa", CPA_RM, "--service", SERVICE, "--action", DI01_ACTION, str(payload)
    ).strip()
    assert sent_id.endswith(f"@{HOST}")
    database = Database(f"sqlite:///{tmp_path / 'var' / 'ggk-ebms.db'}")
    try:
        stored = MessageStore(database).list(direction="out", limit=10)
    finally:
        database.dispose()
    assert len(stored) == 2 and all(_ours(m) for m in stored), [m.message_id for m in stored]
    assert uuid.UUID(sent_id.split("@")[0])
