"""``serve`` with ``worker_processes``: the send and delivery workers run in processes of their
own (server/queue_process.py), the server process answers requests only, and every message it
acknowledges is still delivered once; SIGTERM stops them all cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest
from bench import loadgen
from bench.endtoend import delivering_gemeente, wait_until_delivered
from bench.messages import build_mix
from bench.servers import party_settings as bench_party_settings
from bench.setup import inbound_cpa

from ggk_ebms.config import Settings, load
from ggk_ebms.errors import ConfigError
from ggk_ebms.store.db import Database
from ggk_ebms.store.heartbeats import HeartbeatStore
from tests.process import ServerProcess, free_port, write_settings

MESSAGES = 24


def _spawned(pid: int) -> list[int]:
    """The processes multiprocessing spawned for ``serve`` (not its resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    return [
        int(child) for child in text.split() if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


@pytest.mark.slow
def test_the_workers_run_apart_and_deliver_what_the_server_process_acknowledges(tmp_path: Path) -> None:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    cpa_dir, agreement = inbound_cpa(tmp_path, sync=True, port=port)
    gemeente, inbox = delivering_gemeente(tmp_path, db_url, cpa_dir, port, processes=1)
    gemeente = gemeente.replace(worker_processes=1, api_enabled=False)
    mix = build_mix(
        agreement,
        bench_party_settings("rinis", tmp_path, "sqlite://", cpa_dir, 0),
        mixed=False,
        berichttype="WMO305",
    )
    server = ServerProcess(write_settings(gemeente, tmp_path / "ggk-ebms.toml"), port, tmp_path / "serve.log")
    server.start()
    database = Database(db_url)
    try:
        assert server.proc is not None
        sent = asyncio.run(
            loadgen.closed_loop(
                f"https://localhost:{port}/ebms", mix, expect="ack", concurrency=4, count=MESSAGES
            )
        )
        assert sent.ok == MESSAGES, dict(sent.errors)
        counts = wait_until_delivered(db_url, MESSAGES, timeout=120)
        assert counts == {"Forwarded": MESSAGES}, server.log.read_text()[-3000:]
        assert len(list(inbox.glob("0363_WMO305_*.xml"))) == MESSAGES  # each delivered once
        children = _spawned(server.proc.pid)
        assert len(children) == 3  # the server process, the worker process, the scheduled work
        log = server.log.read_text()
        # One send worker in all, in a spawned process: the server process runs none of its own.
        started = re.findall(r"send worker [^:\s]+:(\d+):\w+ started", log)
        assert len(started) == 1, log[-3000:]
        assert int(started[0]) in children
        assert log.count("send and delivery workers: worker, delivery") == 1  # server/task_process.py
        assert {"worker", "delivery"} <= {beat.kind for beat in HeartbeatStore(database).all()}
    finally:
        database.dispose()
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=60)
    log = server.log.read_text()
    assert code == 0, log[-3000:]
    assert f"1 server processes on port {port}, 1 for the send and delivery workers" in log
    assert "Traceback" not in log


def test_worker_processes_count_only_with_the_workers_on(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_processes=2)
    assert settings.effective_worker_processes == 2
    assert settings.replace(worker_enabled=False).effective_worker_processes == 0
    assert Settings(data_dir=tmp_path).effective_worker_processes == 0  # in the server processes


def test_a_negative_worker_processes_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "ggk-ebms.toml"
    config.write_text("worker_processes = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'worker_processes' must be 0 or more, not -1"):
        load(config, environ={})
