"""EB014 gateways (gateway_oins) and the host of our MessageIds (EB013)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ggk_ebms.config import Settings
from ggk_ebms.server.run import message_id_host
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url

CPA_SYNC = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"


@pytest.mark.parametrize(("gateways", "expected"), [([], 403), ([GEMEENTE], 200)])
async def test_a_gateway_certificate_may_send_for_the_from_party(
    tmp_path: Path, gateways: list[str], expected: int
) -> None:
    """The gemeente certificate sends a message From RINIS: refused, unless its OIN is a gateway."""
    settings = party_settings(
        "gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa_folder(tmp_path), gateway_oins=gateways
    )
    h = peer.Header(CPA_SYNC, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente")
    async with running(settings) as endpoint:
        answer = await peer.post(
            url(endpoint), peer.envelope(h, sync_reply=True), ssl_context=peer.client_ssl("gemeente")
        )
    assert answer.status == expected, answer.text


@pytest.mark.parametrize(
    ("host", "configured", "expected"),
    [
        ("127.0.0.1", "", "localhost"),
        ("ebms.gemeente.example", "", "ebms.gemeente.example"),
        ("0.0.0.0", "", socket.getfqdn()),
        ("0.0.0.0", "ebms.gemeente.example", "ebms.gemeente.example"),
    ],
)
def test_message_id_host(host: str, configured: str, expected: str) -> None:
    assert message_id_host(Settings(host=host, message_id_host=configured)) == expected
