"""``ggk-ebms send`` as a process: queue, --wait for the outcome, exit status per outcome."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore
from tests.outbound_support import GEMEENTE_ACTION, SERVICE, free_port, make_cpa, side_settings, started
from tests.process import write_settings

pytestmark = pytest.mark.slow


async def _send(config: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ggk_ebms",
        "--config",
        str(config),
        "send",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_send_wait_reports_delivered_and_failed(tmp_path: Path) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, sync_reply=True, version="cli-t")
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    config = write_settings(gemeente, tmp_path / "gemeente.toml")
    database = Database(gemeente.database_url)
    database.upgrade()
    assert all("not imported" not in line for line in import_cpa_dir(gemeente, database))
    database.dispose()
    payload = tmp_path / "bericht.xml"
    payload.write_bytes(b"<bericht/>")
    common = ["--cpa", cpa_id, "--service", SERVICE, "--action", GEMEENTE_ACTION]
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    async with started(rinis, worker=False):
        code, out = await _send(config, *common, "--wait", "--timeout", "30", str(payload))
    assert code == 0, out
    message_id = out.splitlines()[0]
    assert "attempt 1:" in out and "HTTP 200 ok" in out
    assert out.rstrip().endswith("Delivered: Acknowledgment received in the response")

    code, out = await _send(config, *common, str(payload))  # queued only, partner is gone now
    assert code == 0 and "@" in out.strip()
    database = Database(gemeente.database_url)
    try:
        store = MessageStore(database)
        sent = store.find("out", message_id)
        assert sent is not None and sent.status == "Delivered"
        assert [p.content_type for p in store.parts(sent.pk)] == ["application/xml"]
        queued = store.find("out", out.strip())
        assert queued is not None and queued.status == "Created"
        assert JobQueue(database).jobs_for(queued.pk)[0].status == "pending"
    finally:
        database.dispose()

    code, out = await _send(
        config, "--cpa", "no-such-cpa", "--service", SERVICE, "--action", "x", str(payload)
    )
    assert code == 1 and "no CPA with CPAId 'no-such-cpa'" in out
