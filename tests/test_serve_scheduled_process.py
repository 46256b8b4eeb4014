"""A multi-process ``serve`` runs its scheduled work in a process of its own, at a lower CPU
priority than the server processes (server/scheduled.py), beats for it like any worker, and
stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from ggk_ebms.server.scheduled import lower_priority
from ggk_ebms.store.db import Database
from ggk_ebms.store.heartbeats import HeartbeatStore
from tests.endpoint import cpa_folder, party_settings
from tests.process import ServerProcess, free_port, write_settings

pytestmark = pytest.mark.slow

SCHEDULED = {"retention", "mailbox_retention", "aanlever_recovery", "koppeltabel"}


def _spawned(pid: int) -> list[int]:
    """The processes multiprocessing spawned for ``serve`` (not its resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    return [int(child) for child in text.split() if "spawn_main" in _cmdline(int(child))]


def _nice(pid: int) -> int:
    # /proc/<pid>/stat: the command may hold spaces, so count fields after its closing ')'.
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), "nice"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _kinds(database: Database) -> set[str]:
    return {beat.kind for beat in HeartbeatStore(database).all()}


def test_the_scheduled_work_runs_in_its_own_lower_priority_process(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'g.db'}"
    settings = party_settings("gemeente", tmp_path, url, cpa_folder(tmp_path), port=port, processes=2)
    server = ServerProcess(write_settings(settings, tmp_path / "ggk-ebms.toml"), port, tmp_path / "serve.log")
    server.start()
    database = Database(url)
    try:
        assert server.proc is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (_kinds(database) >= SCHEDULED):
            time.sleep(0.2)
        assert _kinds(database) >= SCHEDULED, server.log.read_text()[-3000:]
        children = _spawned(server.proc.pid)
        assert len(children) == 3  # two server processes and the scheduled one
        nices = sorted(_nice(child) for child in children)
        parent = _nice(server.proc.pid)
        assert nices[:2] == [parent, parent]
        assert nices[2] == min(parent + 10, 19)
    finally:
        database.dispose()
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
    assert code == 0, server.log.read_text()[-3000:]
    log = server.log.read_text()
    assert "one for the scheduled work" in log
    assert "Traceback" not in log


def test_lower_priority_raises_the_nice_value_of_this_process_only(tmp_path: Path) -> None:
    import subprocess
    import sys

    # In a child process: a nice value cannot be lowered again by an unprivileged test run.
    code = (
        "import os; from ggk_ebms.server.scheduled import lower_priority; "
        "before = os.nice(0); after = lower_priority(3); print(before, after)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    before, after = map(int, out.stdout.split())
    assert after == min(before + 3, 19)
    assert lower_priority.__defaults__ == (10,)
