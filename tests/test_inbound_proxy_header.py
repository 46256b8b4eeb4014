"""Digikoppeling BEV ch. 3-5 proxy rule on the real server: the client-certificate header is honoured only
from allow-listed TLS-terminating proxies; from anyone else it is ignored (no impersonation, SEC26 F2)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests import peer
from tests.endpoint import ACTION, DEV, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url

CPA_SYNC = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"
HEADER = "X-Client-Certificate"


def _forwarded(party: str) -> dict[str, str]:
    return {HEADER: quote((DEV / party / "client.pem").read_text())}


def _soap() -> bytes:
    h = peer.Header(CPA_SYNC, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente")
    return peer.envelope(h, sync_reply=True)


async def _post_via(endpoint_url: str, headers: dict[str, str]) -> peer.Answer:
    # The "proxy" connects with its own certificate (here: the gemeente's, which may not act for RINIS).
    return await peer.post(
        endpoint_url, _soap(), ssl_context=peer.client_ssl("gemeente"), extra_headers=headers
    )


@pytest.mark.parametrize(("allowlist", "expected"), [(["127.0.0.1"], 200), (["10.9.8.7"], 403), ([], 403)])
async def test_proxy_header_only_from_allow_listed_proxies(
    tmp_path: Path, allowlist: list[str], expected: int
) -> None:
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'p.db'}",
        cpa_folder(tmp_path),
        proxy_client_cert_header=HEADER,
        proxy_allowlist=allowlist,
    )
    async with running(settings) as endpoint:
        answer = await _post_via(url(endpoint), _forwarded("rinis"))
    assert answer.status == expected, answer.text


async def test_proxy_header_is_ignored_when_the_setting_is_off(tmp_path: Path) -> None:
    settings = party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'p.db'}", cpa_folder(tmp_path))
    async with running(settings) as endpoint:
        answer = await _post_via(url(endpoint), _forwarded("rinis"))
    assert answer.status == 403
