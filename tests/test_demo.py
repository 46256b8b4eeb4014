"""``ggk-ebms demo`` as a user runs it: both sides on 8443/8444, all steps green."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.endpoint import PROJECT_ROOT

GEMEENTE_PORT, RINIS_PORT = 8443, 8444  # the endpoints of the dev CPAs


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


pytestmark = pytest.mark.slow


def test_demo_runs_green() -> None:
    taken = [port for port in (GEMEENTE_PORT, RINIS_PORT) if not port_free(port)]
    if taken:
        pytest.skip(f"the demo needs ports 8443 and 8444; in use here: {taken}")
    done = subprocess.run(
        [sys.executable, "-m", "ggk_ebms", "demo"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for step in (
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
    if not port_free(GEMEENTE_PORT):
        pytest.skip("port 8443 is in use here already")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", GEMEENTE_PORT))
        blocker.listen()
        done = subprocess.run(
            [sys.executable, "-m", "ggk_ebms", "demo"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert "port 8443 on 127.0.0.1 is in use" in done.stderr
