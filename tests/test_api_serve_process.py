"""`ggk-ebms serve` as an operator runs it starts the management API on its own port; a token
made with `ggk-ebms api-token create` opens it; without one every route is refused."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.endpoint import cpa_folder, party_settings
from tests.process import ServerProcess, free_port, write_settings

pytestmark = pytest.mark.slow


def _get(url: str, secret: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url)
    if secret:
        request.add_header("Authorization", f"Bearer {secret}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def _wait_listening(port: int, server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"API port {port} not listening:\n{server.log.read_text()[-3000:]}")


def test_serve_runs_the_management_api(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'g.db'}",
        cpa_folder(tmp_path),
        port=port,
        api_port=api_port,
    )
    config = write_settings(settings, tmp_path / "ggk-ebms.toml")
    server = ServerProcess(config, port, tmp_path / "serve.log")
    server.start()
    try:
        _wait_listening(api_port, server)
        base = f"http://127.0.0.1:{api_port}"
        status, _, body = _get(base + "/health/live")
        assert status == 200 and json.loads(body) == {"status": "live"}
        for path in (
            "/api/v1/cpas",
            "/api/v1/openapi.json",
            "/metrics",
            "/health/ready",
            "/service/rest/v19/cpas",
        ):
            status, content_type, _ = _get(base + path)
            assert status == 401 and content_type.startswith("application/problem+json"), path
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "ggk_ebms",
                "--config",
                str(config),
                "api-token",
                "create",
                "ops",
                "--scope",
                "read",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        secret = created.stdout.strip()
        status, _, body = _get(base + "/service/rest/v19/cpas", secret)
        assert status == 200 and len(json.loads(body)) >= 1
        status, _, body = _get(base + "/api/v1/openapi.json", secret)
        assert status == 200 and json.loads(body)["openapi"] == "3.1.0"
        assert "management API on http://127.0.0.1" in server.log.read_text()
    finally:
        server.stop()
