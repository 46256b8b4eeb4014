"""CPA Beheer in a real browser: the request form makes a CPA, Ping Pong against a second instance
(the counterpart, its own endpoint and database) makes it actief; upload and validate shows findings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.api import actions
from ggk_ebms.config import DEV_RINIS_OIN
from tests.console_support import (
    RunningEndpoint,
    endpoints,
    login,
    make_user,
    require_browser,
    screenshots_dir,
)
from tests.endpoint import DEV, party_settings
from tests.process import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningEndpoint, RunningEndpoint, int, int]]:
    require_browser()
    tmp = tmp_path_factory.mktemp("console-ping")
    empty = tmp / "no-cpas"
    empty.mkdir()
    g_port, r_port = free_port(), free_port()
    gemeente = party_settings("gemeente", tmp, f"sqlite:///{tmp / 'g.db'}", empty, port=g_port)
    rinis = party_settings("rinis", tmp, f"sqlite:///{tmp / 'r.db'}", empty, port=r_port)
    with endpoints(rinis, gemeente) as (partner, us):
        make_user(us.endpoint, "product", "productbeheerder", ("iwmo",))
        yield us, partner, g_port, r_port


@pytest.fixture
def page(pair: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        context.set_default_timeout(90_000)
        yield context.new_page()
        browser.close()


def test_create_a_cpa_from_the_form_and_ping_pong(page: Any, pair: Any, tmp_path: Path) -> None:
    us, partner, g_port, r_port = pair
    shots = screenshots_dir(tmp_path)
    login(page, us, "product")
    page.wait_for_url("**/console/dashboard")
    page.goto(us.console + "/p/iwmo/cpa")
    form = page.locator("#aanvraag")
    form.get_by_label("Eigen endpoint (https)").fill(f"https://localhost:{g_port}/ebms")
    form.get_by_label("Profielnaam tegenpartij").fill("RINIS dev")
    form.get_by_label("OIN of HRN tegenpartij").fill(DEV_RINIS_OIN)
    form.get_by_label("Einddatum").fill((datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%d"))
    form.get_by_label("Endpoint tegenpartij (https)").fill(f"https://localhost:{r_port}/ebms")
    form.get_by_label("Servercertificaat tegenpartij (PEM)").fill((DEV / "rinis" / "server.pem").read_text())
    form.get_by_label("Clientcertificaat tegenpartij (PEM)").fill((DEV / "rinis" / "client.pem").read_text())
    page.screenshot(path=str(shots / "cpa-aanvraag.png"), full_page=True)
    form.get_by_role("button", name="CPA maken").click()
    status = page.get_by_role("status").first
    assert "is opgeslagen" in status.inner_text()
    cpa_id = status.inner_text().split()[1]
    # The counterpart gets the same CPA: downloaded from the console, imported there.
    with page.expect_download() as download:
        page.locator("tr", has_text=cpa_id).get_by_role("link", name="Download").click()
    raw = Path(download.value.path()).read_bytes()
    assert b"CollaborationProtocolAgreement" in raw
    assert partner.endpoint.api is not None
    actions.insert_cpa(partner.endpoint.api.context, raw, overwrite=False)
    assert "nog niet actief" in page.locator("tr", has_text=cpa_id).inner_text()
    page.locator("tr", has_text=cpa_id).get_by_role("button", name="Ping Pong").click()
    result = page.locator("#ping-uitkomst")
    assert "Pong ontvangen" in result.inner_text(), result.inner_text()
    assert "actief sinds" in page.locator("tr", has_text=cpa_id).inner_text()
    page.screenshot(path=str(shots / "cpa-ping-pong.png"), full_page=True)


def test_ping_without_a_counterpart_shows_the_diagnosis(page: Any, pair: Any, tmp_path: Path) -> None:
    us, _, g_port, _ = pair
    shots = screenshots_dir(tmp_path)
    nowhere = free_port()  # nobody listens here
    login(page, us, "product")
    page.wait_for_url("**/console/dashboard")
    page.goto(us.console + "/p/iwmo/cpa")
    form = page.locator("#aanvraag")
    form.get_by_label("Eigen endpoint (https)").fill(f"https://localhost:{g_port}/ebms")
    form.get_by_label("Profielnaam tegenpartij").fill("Niemand")
    form.get_by_label("OIN of HRN tegenpartij").fill("00000099000009990000")
    form.get_by_label("Einddatum").fill((datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d"))
    form.get_by_label("Endpoint tegenpartij (https)").fill(f"https://localhost:{nowhere}/ebms")
    form.get_by_label("Servercertificaat tegenpartij (PEM)").fill((DEV / "rinis" / "server.pem").read_text())
    form.get_by_label("Clientcertificaat tegenpartij (PEM)").fill((DEV / "rinis" / "client.pem").read_text())
    form.get_by_role("button", name="CPA maken").click()
    cpa_id = page.get_by_role("status").first.inner_text().split()[1]
    row = page.locator("tr", has_text=cpa_id)
    assert "verloopt binnenkort" in row.inner_text()  # 30 days: the expiry warning
    row.get_by_role("button", name="Ping Pong").click()
    result = page.locator("#ping-uitkomst").inner_text()
    assert "Geen Pong" in result and "Advies" in result
    assert "nog niet actief" in page.locator("tr", has_text=cpa_id).inner_text()
    page.screenshot(path=str(shots / "cpa-ping-mislukt.png"), full_page=True)


def test_upload_and_validate_a_cpa_shows_findings(page: Any, pair: Any, tmp_path: Path) -> None:
    us, _, _, _ = pair
    broken = tmp_path / "kapot.xml"
    broken.write_text("<CollaborationProtocolAgreement/>")
    login(page, us, "product")
    page.wait_for_url("**/console/dashboard")
    page.goto(us.console + "/p/iwmo/cpa")
    page.get_by_label("CPA (XML)").set_input_files(str(broken))
    page.get_by_role("button", name="Valideren").click()
    text = page.locator("main").inner_text()
    assert "De CPA heeft fouten." in text and "error" in text
