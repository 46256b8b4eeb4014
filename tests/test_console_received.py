"""A message received over ebMS (mutual TLS, from the independent peer acting as RINIS) and delivered
to Ophalen by the delivery worker: found in the berichtenlog and collected in a real browser."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.stuf.envelope import build_di01
from ggk_ebms.stuf.model import Systeem
from tests import peer
from tests.console_support import (
    RunningEndpoint,
    endpoints,
    login,
    make_user,
    require_browser,
    screenshots_dir,
)
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, url

pytestmark = pytest.mark.slow

AGB = "42420001"
# A WMO305 (Start ondersteuning, aanbieder -> gemeente), header only, written for this test;
# BerichtCode 418 is the catalogue's code for WMO305.
WMO305 = """<?xml version="1.0" encoding="UTF-8"?>
<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/3_2/wmo305/schema">
  <w:Header>
    <w:BerichtCode>418</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie><w:BerichtSubversie>2</w:BerichtSubversie>
    <w:Afzender>{agb}</w:Afzender><w:Ontvanger>0363</w:Ontvanger>
    <w:BerichtIdentificatie><w:Identificatie>{ident}</w:Identificatie><w:Dagtekening>2026-12-01</w:Dagtekening></w:BerichtIdentificatie>
  </w:Header>
</w:Bericht>
"""

ROUTES = """[endpoint]
gemeentecodes = ["0363"]
test_gemeentecodes = []

[[sender]]
id = "{rinis}"
gemeentecodes = ["*"]

[[route]]
name = "ophalen-0363"
gemeentecode = "0363"
berichttype = "*"
target = {{ type = "mailbox" }}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEndpoint]:
    require_browser()
    tmp = tmp_path_factory.mktemp("console-received")
    settings = party_settings("gemeente", tmp, f"sqlite:///{tmp / 'db.sqlite'}", cpa_folder(tmp))
    with endpoints(settings) as (gemeente,):
        RouteStore(gemeente.endpoint.database).replace(
            ROUTES.format(rinis=RINIS), source="routes.toml", base_dir=tmp
        )
        make_user(gemeente.endpoint, "wmo", "medewerker", ("iwmo",))
        yield gemeente


async def _send(endpoint_url: str, envelope: bytes) -> str:
    action = "envelopHeenbericht-ggk_Di01"
    header = peer.Header(CPA_RM, RINIS, GEMEENTE, SERVICE, action, from_role="GGk", to_role="Gemeente")
    cid = f"{uuid.uuid4()}@peer.test"
    soap = peer.envelope(header, content_ids=(cid,))
    content_type, body = peer.multipart(soap, [(cid, "application/xml", envelope)])
    answer = await peer.post(endpoint_url, body, content_type=content_type)
    assert answer.status in (200, 204), answer.text
    return header.message_id


def test_a_received_message_in_the_berichtenlog_and_ophalen(site: RunningEndpoint, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    payload = WMO305.format(agb=AGB, ident=f"R-{uuid.uuid4().hex[:6]}").encode()
    built = build_di01(
        zender=Systeem(AGB, "Zorgsysteem"),
        ontvanger=Systeem("0363", "GGk"),
        functie="WMO305",
        payload=payload,
        ids=UuidIdGenerator("peer.test"),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    )
    site.background.run(_send(url(site.endpoint), built.data))
    worker = DeliveryWorker(
        site.endpoint.settings, site.endpoint.database, clock=SystemClock(), ids=UuidIdGenerator()
    )
    site.background.run(asyncio.to_thread(worker.run_once))
    shots = screenshots_dir(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page: Any = browser.new_context(accept_downloads=True).new_page()
        page.set_default_timeout(60_000)
        login(page, site, "wmo")
        page.wait_for_url("**/console/dashboard")
        page.goto(site.console + "/p/iwmo/berichtenlog")
        page.get_by_label("Referentienummer").fill(built.referentienummer)
        page.get_by_role("button", name="Zoeken").click()
        rows = page.locator("tbody tr")
        assert rows.count() == 1
        assert "WMO305" in rows.first.inner_text() and "ontvangen" in rows.first.inner_text()
        rows.first.get_by_role("link").click()
        assert "Di01" in page.locator("main").inner_text()
        assert page.locator("#payload").inner_text().count("R-") == 1
        page.screenshot(path=str(shots / "bericht-ontvangen.png"), full_page=True)
        page.goto(site.console + "/p/iwmo/ophalen")
        row = page.locator("tbody tr").filter(has_text="WMO305").first
        row.get_by_role("checkbox").check()
        with page.expect_download():
            page.get_by_role("button", name="Download selectie (ZIP)").click()
        page.goto(site.console + "/p/iwmo/ophalen")
        assert page.locator("tbody tr").filter(has_text="WMO305").first.locator("td.gelezen").inner_text()
        browser.close()
