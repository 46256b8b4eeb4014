"""``ggk-ebms demo`` as a user runs it: both sides on loopback, all steps green.

The demo's ports are options (defaults 8443/8444, the dev CPA's endpoints); the tests pass ports
the kernel reports free, so they never depend on 8443/8444 being available.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN
from tests.endpoint import PROJECT_ROOT
from tests.process import free_port

pytestmark = pytest.mark.slow


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def run_demo(gemeente_port: int, rinis_port: int, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ggk_ebms",
            "demo",
            "--gemeente-port",
            str(gemeente_port),
            "--rinis-port",
            str(rinis_port),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_green_on_the_ports_it_is_given() -> None:
    gemeente_port, rinis_port = two_free_ports()
    done = run_demo(gemeente_port, rinis_port, timeout=180)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for step in (
        f"gemeente ({DEV_GEMEENTE_OIN}) listens on https://localhost:{gemeente_port}/ebms",
        f"RINIS ({DEV_RINIS_OIN}) listens on https://localhost:{rinis_port}/ebms",
        "Ping gemeente -> RINIS: Pong",
        "Ping RINIS -> gemeente: Pong",
        "RINIS received it (status Received)",
        "gemeente sees it Delivered",
        "gemeente received it (status Received)",
        "RINIS sees it Delivered",
        "demo passed",
    ):
        assert step in out, out
    assert "FAIL" not in out


def test_demo_refuses_a_taken_port() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        other = free_port()
        done = run_demo(taken, other, timeout=60)
    assert done.returncode == 1
    assert f"port {taken} on 127.0.0.1 is in use" in done.stderr
    assert "--gemeente-port" in done.stderr


def test_demo_defaults_are_the_dev_cpa_ports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ggk_ebms", "demo", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--gemeente-port" in done.stdout
    assert "8443" in done.stdout
    assert "--rinis-port" in done.stdout
    assert "8444" in done.stdout
