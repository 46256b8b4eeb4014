"""Server processes under test: ``ggk-ebms serve`` as an operator runs it, and the no-op baseline.

Both run as separate processes, so the load generator never shares an interpreter (or a GIL)
with the server it measures, and the server's memory can be read from /proc: VmHWM is the peak
resident set, which ``reset_peak`` sets back to the current size before a measurement
(``/proc/<pid>/clear_refs`` with 5, Linux 4.0+).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from bench.common import DEV_CERTS, GEMEENTE, PROJECT_ROOT, RINIS
from ggk_ebms.config import Settings, dump_toml

# Ports handed out by this process, so two calls before either server binds never collide.
_handed_out: deque[int] = deque(maxlen=4096)


def _ephemeral_low() -> int:
    """The first port the kernel picks for outgoing connections (Linux: ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # the Linux default, and what the range's name promises elsewhere


def _bindable(host: str, port: int) -> bool:
    # No SO_REUSEADDR here: a socket in TIME_WAIT also makes the port a poor choice.
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing holds on ``host`` (and on 127.0.0.1), below the ephemeral range.

    Binding port 0 returns a port from the kernel's ephemeral range, and between that check and the
    server's own bind any outgoing connection from the same address may take it as its local end
    (EADDRINUSE: a CI run lost the two-node test to exactly that on the LAN address). Ports below
    the range are only ever taken by an explicit bind, and the check binds the address the server
    will use.
    """
    low = _ephemeral_low()
    first = max(1024, low - 12288)
    rng = random.SystemRandom()
    if low - first >= 1024:
        for _ in range(256):
            port = rng.randrange(first, low)
            if port in _handed_out:
                continue
            if all(_bindable(address, port) for address in {host, "127.0.0.1"}):
                _handed_out.append(port)
                return port
    # A machine whose ephemeral range starts low leaves no room below it: ask the kernel.
    with socket.socket() as s:
        s.bind((host, 0))
        chosen: int = s.getsockname()[1]
    _handed_out.append(chosen)
    return chosen


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
