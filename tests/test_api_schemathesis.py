"""schemathesis against /api/v1/openapi.json on a running endpoint (TLS on loopback, a token):
no 5xx, and every status code, content type and body conforms to the generated document.
Bounded: a fixed seed, a few examples per operation."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from ggk_ebms.server.autoimport import import_routes_file
from tests.api_support import api_url, call, token
from tests.endpoint import DEV, cpa_folder, party_settings, running

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


async def test_api_v1_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'g.db'}",
        cpa_folder(tmp_path),
        api_tls="always",
        api_rate_burst=1_000_000,
        routes_file=Path(__file__).resolve().parent.parent / "dev" / "routes.toml",
    )
    async with running(settings) as endpoint:
        # A routing table, so the routes operations answer with data and not only 404.
        assert any("in force" in line for line in import_routes_file(settings, endpoint.database))
        secret = token(endpoint, "schemathesis", "admin")
        status, _, body = await call(endpoint, "GET", "/api/v1/openapi.json", secret)
        assert status == 200
        document = json.loads(body)
        assert document["openapi"] == "3.1.0" and document["paths"]
        schema = tmp_path / "openapi.json"
        schema.write_bytes(body)
        st = Path(sys.executable).parent / "st"
        process = await asyncio.create_subprocess_exec(
            str(st),
            "run",
            str(schema),
            "--url",
            api_url(endpoint),
            "--checks",
            CHECKS,
            "--header",
            f"Authorization: Bearer {secret}",
            "--tls-verify",
            str(DEV / "ca.pem"),
            "--max-examples",
            "8",
            "--seed",
            "20261205",
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        text = output.decode("utf-8", "replace")
        (tmp_path / "schemathesis.txt").write_text(text)
        assert process.returncode == 0, text[-6000:]
