"""Server processes under test: ``ggk-ebms serve`` as an operator runs it, and the no-op baseline.

Both run as separate processes, so the load generator never shares an interpreter (or a GIL)
with the server it measures, and the server's memory can be read from /proc: VmHWM is the peak
resident set, which ``reset_peak`` sets back to the current size before a measurement
(``/proc/<pid>/clear_refs`` with 5, Linux 4.0+).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import DEV_CERTS, GEMEENTE, PROJECT_ROOT, RINIS
from ggk_ebms.config import Settings, dump_toml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def party_settings(party: str, work: Path, db_url: str, cpa_dir: Path, port: int, **changes: Any) -> Settings:
    """Settings of one side (``gemeente`` or ``rinis``) with the dev PKI and the given database.

    The worker is off unless asked for: inbound scenarios measure receiving, and a worker would
    keep trying to deliver queued Acknowledgments to a counterpart that is not running.
    """
    certs = DEV_CERTS / party
    values: dict[str, Any] = {
        "party_ids": [GEMEENTE if party == "gemeente" else RINIS],
        "data_dir": work / party,
        "database_url": db_url,
        "cpa_dir": cpa_dir,
        "host": "127.0.0.1",
        "port": port,
        "tls_server_cert": certs / "server.pem",
        "tls_server_key": certs / "server-key.pem",
        "tls_client_cert": certs / "client.pem",
        "tls_client_key": certs / "client-key.pem",
        "tls_trust_store": DEV_CERTS / "ca.pem",
        "signing_key": certs / "client-key.pem",
        "encryption_key": certs / "client-key.pem",
        "worker_enabled": False,
        "outbox_dir": work / party / "outbox",
        "api_port": 0,  # the management API on a free port (docs/api.md)
    }
    values.update(changes)
    known = set(Settings.__dataclass_fields__)
    return Settings(**{k: v for k, v in values.items() if k in known})


def write_settings(settings: Settings, path: Path) -> Path:
    """A settings file with every non-None setting (absolute paths) for a server process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_toml(settings), encoding="utf-8")
    return path


# --- /proc memory figures ----------------------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmHWM") * 1024


def reset_peak(pid: int) -> None:
    """Set the process's peak RSS (VmHWM) back to its current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live child processes (a multi-process serve)."""
    total = 0.0
    for p in (pid, *child_pids(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def child_pids(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


# --- processes ---------------------------------------------------------------------------------------


class ServerProcess:
    """A server in a process of its own; ``start`` returns once its port accepts connections."""

    def __init__(self, argv: list[str], port: int, log: Path, *, name: str, host: str = "127.0.0.1") -> None:
        # ``host``: where the port is probed; a node in a network namespace has its own address.
        self.argv, self.port, self.log, self.name, self.host = argv, port, log, name, host
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen within {timeout} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def endpoint_process(settings: Settings, work: Path, name: str) -> ServerProcess:
    """``ggk-ebms serve`` with ``settings`` written to a file in ``work``; one process unless
    ``settings.processes`` asks for more (0 would mean one per core, and the scenarios measure
    the processes they started)."""
    if not settings.processes:
        settings = settings.replace(processes=1)
    config = write_settings(settings, work / f"{name}.toml")
    argv = [sys.executable, "-m", "ggk_ebms", "--config", str(config), "serve"]
    return ServerProcess(argv, settings.port, work / f"{name}.log", name=name)


def baseline_process(settings: Settings, work: Path, *, processes: int = 1) -> ServerProcess:
    """The no-op server (bench/baseline.py) with the same TLS settings as the endpoint."""
    config = write_settings(settings, work / "baseline.toml")
    argv = [sys.executable, "-m", "bench.baseline", "--config", str(config), "--processes", str(processes)]
    return ServerProcess(argv, settings.port, work / "baseline.log", name="baseline")
