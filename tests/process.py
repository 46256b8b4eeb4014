"""Run ``ggk-ebms serve`` as a separate process, as an operator would, for kill/restart tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from bench.servers import free_port as free_port  # one port rule for tests and benchmarks

from ggk_ebms.config import Settings, dump_toml


def write_settings(settings: Settings, path: Path) -> Path:
    """A settings file for a child process (``config.dump_toml``)."""
    path.write_text(dump_toml(settings), encoding="utf-8")
    return path


class ServerProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if not tomllib.loads(self.config.read_text(encoding="utf-8")).get("processes"):
            # processes = 0 means one per core; these tests watch (and kill -9) ONE process,
            # so they get one unless their settings ask for more.
            env["GGK_EBMS_PROCESSES"] = "1"
        if "api_port" not in self.config.read_text(encoding="utf-8"):
            # A settings file of its own (e.g. from `ggk-ebms init`) leaves the management API on
            # its default port; tests never bind a fixed port, so it gets a free one here.
            env.setdefault("GGK_EBMS_API_PORT", "0")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ggk_ebms", "--config", str(self.config), "serve"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not listen within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or power loss of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
