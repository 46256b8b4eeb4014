"""The sender honours the mappings of the ebms-core API: a URL mapping takes a message to where
the partner really is, a certificate mapping changes which server certificate is expected."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.mappings import MappingStore
from ggk_ebms.store.messages import MessageStore
from tests.api_support import call, token
from tests.endpoint import GEMEENTE, RINIS
from tests.outbound_support import (
    GEMEENTE_ACTION,
    SERVICE,
    eventually,
    free_port,
    make_cpa,
    side_settings,
    started,
)

pytestmark = pytest.mark.slow


def _request(cpa_id: str) -> dict[str, object]:
    return {
        "properties": {
            "cpaId": cpa_id,
            "fromPartyId": GEMEENTE,
            "service": SERVICE,
            "action": GEMEENTE_ACTION,
        },
        "dataSources": [{"contentType": "application/xml", "content": "PHgvPg=="}],
    }


def _final(database, message_id: str) -> str | None:  # type: ignore[no-untyped-def]
    found = MessageStore(database).find("out", message_id)
    assert found is not None
    return found.status if found.status in ("Delivered", "DeliveryFailed", "Expired") else None


async def test_url_mapping_redirects_the_sender(tmp_path: Path) -> None:
    g_port, r_port, nowhere = free_port(), free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, nowhere)  # the CPA names a port nobody listens on
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    async with started(rinis) as partner, started(gemeente) as us:
        secret = token(us, "app", "admin")
        mapping = {
            "source": f"https://localhost:{nowhere}/ebms",
            "destination": f"https://localhost:{r_port}/ebms",
        }
        status, _, _ = await call(us, "POST", "/service/rest/v19/urlMappings", secret, json=mapping)
        assert status == 204
        status, _, body = await call(
            us, "POST", "/service/rest/v19/ebms/messages", secret, json=_request(cpa_id)
        )
        assert status == 200, body
        message_id = body.decode()
        assert await eventually(lambda: _final(us.database, message_id), what="final") == "Delivered"
        assert MessageStore(partner.database).find("in", message_id) is not None
        # A Ping follows the mapping too.
        ping = f"/service/rest/v19/ebms/ping/{cpa_id}/from/{GEMEENTE}/to/{RINIS}"
        status, _, body = await call(us, "POST", ping, secret)
        assert status == 204, body


async def test_certificate_mapping_changes_the_expected_server_certificate(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.endpoint import DEV

    def der(party: str) -> bytes:
        pem = (DEV / party / "server.pem").read_bytes()
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)

    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, retries=1)
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    async with started(rinis), started(gemeente) as us:
        # The CPA's RINIS server certificate now stands for the gemeente's: RINIS's real one no
        # longer matches, so nothing is sent to it.
        await asyncio.to_thread(
            MappingStore(us.database).put_certificate, der("rinis"), der("gemeente"), cpa_id
        )
        secret = token(us, "app", "send", "read")
        status, _, body = await call(
            us, "POST", "/service/rest/v19/ebms/messages", secret, json=_request(cpa_id)
        )
        assert status == 200, body
        message_id = body.decode()
        found = MessageStore(us.database).find("out", message_id)
        assert found is not None

        def refused() -> bool:
            errors = [a.error or "" for a in JobQueue(us.database).attempts(found.pk)]
            return any("server certificate" in e for e in errors)

        assert await eventually(refused, what="certificate refusal")
        status, _, body = await call(
            us, "GET", f"/service/rest/v19/ebms/messages/{message_id}/status", secret
        )
        assert status == 200 and json.loads(body)["status"] in ("CREATED", "DELIVERY_FAILED")
