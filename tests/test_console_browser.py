"""The web console in a real browser (Playwright driving Debian's chromium) against a real endpoint.

One endpoint per module (starting one costs seconds); each test logs in as its own account so the
tests do not depend on each other's state.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.clock import FixedClock, SystemClock, UuidIdGenerator
from ggk_ebms.store.audit import AuditLog
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import StufRecord, StufStore
from ggk_ebms.stuf.envelope import build_di01
from ggk_ebms.stuf.model import Systeem
from tests.console_support import (
    PASSWORD,
    RunningEndpoint,
    endpoints,
    login,
    make_user,
    require_browser,
    screenshots_dir,
)
from tests.message_support import received_di01
from tests.ops_support import make_zip, ops_settings, wmo301

pytestmark = pytest.mark.slow

BSN = "999993653"  # an elfproef-valid test BSN from the BSN test range
NAAM = "Testpersoon"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEndpoint]:
    require_browser()
    tmp = tmp_path_factory.mktemp("console")
    settings = ops_settings(tmp, f"sqlite:///{tmp / 'db.sqlite'}")
    with endpoints(settings) as (gemeente,):
        make_user(
            gemeente.endpoint, "beheer", "gebruikersbeheerder", ("iwmo", "ijw", "ieb"), personal_data=True
        )
        make_user(gemeente.endpoint, "product", "productbeheerder", ("iwmo", "ijw"))
        make_user(gemeente.endpoint, "wmo", "medewerker", ("iwmo",))
        make_user(gemeente.endpoint, "slot", "medewerker", ("iwmo",))
        yield gemeente


@pytest.fixture(scope="module")
def browser(site: RunningEndpoint) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def received(
    site: RunningEndpoint, berichttype: str, ref: str, payload: bytes, *, mailbox: bool = False
) -> int:
    """A received message with a StUF Di01 envelope around ``payload`` (and an Ophalen item)."""
    db = site.endpoint.database
    at = SystemClock().now()
    clock = FixedClock(at)
    envelope = build_di01(
        zender=Systeem("42420001", "Zorgsysteem"),
        ontvanger=Systeem("0363", "GGk"),
        functie=berichttype,
        payload=payload,
        ids=UuidIdGenerator("console.test"),
        tijdstip=at,
        functie_versie=3,
        functie_subversie=2,
    ).data
    pk = (
        MessageStore(db, clock)
        .receive(
            received_di01(at, status="Processed"),
            [NewPart("p@peer.test", "application/xml", envelope)],
            response=None,
            deliver=False,
            send_response_async=False,
        )
        .message_pk
    )
    StufStore(db, clock).record(
        StufRecord(
            message_pk=pk, direction="in", berichtcode="Di01", referentienummer=ref, zender="42420001",
            ontvanger="0363", gemeentecode="0363", berichttype=berichttype,
        )
    )  # fmt: skip
    if mailbox:
        Mailbox(db, clock).put(
            message_pk=pk, route_name="mb", gemeentecode="0363", berichttype=berichttype,
            referentienummer=ref, zender="42420001", filename=f"{ref}.xml", payload=payload, envelope=None,
        )  # fmt: skip
    return pk


def client_payload(berichttype: str) -> bytes:
    ns = "iwmo" if berichttype.startswith("WMO") else "ijw"
    return (
        f'<m:Bericht xmlns:m="http://www.istandaarden.nl/{ns}/3_2/{berichttype.lower()}/schema">'
        f"<m:Client><m:Bsn>{BSN}</m:Bsn><m:Naam><m:Geslachtsnaam><m:Achternaam>{NAAM}</m:Achternaam>"
        f"</m:Geslachtsnaam></m:Naam></m:Client></m:Bericht>"
    ).encode()


# --- login, logout, CSRF, throttling ---------------------------------------------------------


def test_login_and_logout(page: Any, site: RunningEndpoint, shots: Path) -> None:
    page.goto(site.console + "/dashboard")
    assert page.url.endswith("/console/login")
    page.screenshot(path=str(shots / "login.png"))
    login(page, site, "beheer")
    page.wait_for_url("**/console/dashboard")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "ggk_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url("**/console/login")
    page.goto(site.console + "/dashboard")
    assert page.url.endswith("/console/login")  # the session is gone server-side too


def test_a_form_without_its_csrf_token_is_refused(page: Any, site: RunningEndpoint, tmp_path: Path) -> None:
    login(page, site, "beheer")
    page.wait_for_url("**/console/dashboard")
    # The browser posts the same form with the token taken out: refused, nothing made.
    page.goto(site.console + "/gebruikers")
    form = page.locator("form[action$='/console/gebruikers']")
    form.locator("input[name=username]").fill("zonder-token")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=csrf_token]").evaluate("e => e.remove()")
    form.get_by_role("button", name="Aanmaken").click()
    assert "CSRF" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots_dir(tmp_path) / "csrf-geweigerd.png"))
    response = page.request.post(site.console + "/gebruikers", form={"username": "x2", "password": PASSWORD})
    assert response.status == 403
    page.goto(site.console + "/gebruikers")
    assert "zonder-token" not in page.locator("main").inner_text()


def test_five_wrong_passwords_lock_the_account_name(page: Any, site: RunningEndpoint) -> None:
    for _ in range(5):
        login(page, site, "slot", "wrong password!!")
        assert "onjuist wachtwoord" in page.locator("main").inner_text()
    login(page, site, "slot")  # the right password is refused too while locked
    text = page.locator("main").inner_text()
    assert "te veel mislukte pogingen" in text
    assert not page.url.endswith("/dashboard")


# --- rights per product ----------------------------------------------------------------------


def test_a_medewerker_without_ijw_rights_sees_no_ijw_message(
    page: Any, site: RunningEndpoint, shots: Path
) -> None:
    wmo_ref = f"W-{uuid.uuid4().hex[:8]}"
    jw_ref = f"J-{uuid.uuid4().hex[:8]}"
    received(site, "WMO301", wmo_ref, client_payload("WMO301"), mailbox=True)
    jw_pk = received(site, "JW301", jw_ref, client_payload("JW301"), mailbox=True)
    login(page, site, "wmo")
    page.wait_for_url("**/console/dashboard")
    assert page.get_by_role("link", name="iJw").count() == 0
    page.goto(site.console + "/p/iwmo/berichtenlog")
    log_text = page.locator("main").inner_text()
    assert wmo_ref in log_text and jw_ref not in log_text
    page.screenshot(path=str(shots / "berichtenlog.png"), full_page=True)
    page.get_by_label("Referentienummer").fill(wmo_ref)
    page.get_by_role("button", name="Zoeken").click()
    assert page.locator("tbody tr").count() == 1
    with page.expect_download() as download:
        page.get_by_role("link", name="Exporteer als CSV").click()
    csv_text = Path(download.value.path()).read_text("utf-8-sig")
    assert wmo_ref in csv_text and jw_ref not in csv_text
    page.goto(site.console + "/p/iwmo/ophalen")
    assert jw_ref not in page.locator("main").inner_text()
    # Asking for iJw pages, the iJw message or its Ophalen item directly: refused.
    for path in (
        "/p/ijw/berichtenlog",
        "/p/ijw/berichtenlog.csv",
        "/p/ijw/ophalen",
        f"/p/iwmo/bericht/{jw_pk}",
    ):
        response = page.request.get(site.console + path)
        assert response.status in (403, 404), path
        assert jw_ref not in response.text()
    # The payload of its own message is shown with BSN and name masked.
    page.goto(site.console + "/p/iwmo/berichtenlog")
    page.get_by_role("link").filter(has_text=datetime.now(UTC).strftime("%d-%m-%Y")).first.click()
    payload = page.locator("#payload").inner_text()
    assert BSN not in payload and NAAM not in payload and "*****" in payload
    page.screenshot(path=str(shots / "bericht-gemaskeerd.png"), full_page=True)
    page.goto(site.console + "/dashboard")
    assert page.locator("svg.chart rect.bar-in").count() == 14
    assert "servercertificaat" in page.locator("main").inner_text()
    today = page.locator("details tbody tr").last.locator("td").nth(1).text_content() or "0"
    assert int(today) >= 1
    page.screenshot(path=str(shots / "dashboard-medewerker.png"), full_page=True)


def test_a_user_with_the_right_sees_bsn_and_names(page: Any, site: RunningEndpoint) -> None:
    ref = f"W-{uuid.uuid4().hex[:8]}"
    pk = received(site, "WMO301", ref, client_payload("WMO301"))
    login(page, site, "beheer")
    page.wait_for_url("**/console/dashboard")
    page.goto(site.console + f"/p/iwmo/bericht/{pk}")
    payload = page.locator("#payload").inner_text()
    assert BSN in payload and NAAM in payload
    assert page.locator("#ebms-laag").inner_text().startswith("Processed")


# --- the tabs' main tasks ----------------------------------------------------------------------


def test_upload_a_mixed_zip_and_read_its_verslag(
    page: Any, site: RunningEndpoint, shots: Path, tmp_path: Path
) -> None:
    jw301 = wmo301(ident=f"J-{uuid.uuid4().hex[:6]}", code="436").replace(
        b"iwmo/3_2/wmo301", b"ijw/3_2/jw301"
    )
    data = make_zip(
        [
            ("goed.xml", wmo301(ident=f"U-{uuid.uuid4().hex[:6]}")),
            ("kapot.xml", b"<niet-af"),
            ("leeg.txt", b"geen xml"),
            # iJw: not among this medewerker's products, so refused and not sent
            ("jeugd.xml", jw301),
        ]
    )
    upload = tmp_path / "gemengd.zip"
    upload.write_bytes(data)
    login(page, site, "wmo")
    page.wait_for_url("**/console/dashboard")
    page.goto(site.console + "/p/iwmo/aanleveren")
    page.get_by_label("ZIP- of XML-bestand").set_input_files(str(upload))
    page.get_by_role("button", name="Aanleveren").click()
    page.wait_for_url("**/aanleveren/*")
    assert page.locator("#aangeleverd").inner_text() == "4"
    assert page.locator("#correct").inner_text() == "1"
    assert page.locator("#incorrect").inner_text() == "3"
    table = page.locator("main table").inner_text()
    assert "kapot.xml" in table and "incorrect" in table
    jeugd = page.locator("tbody tr").filter(has_text="jeugd.xml").inner_text()
    assert "hoort niet bij de producten" in jeugd
    assert page.locator("tbody tr").filter(has_text="jeugd.xml").locator("td").nth(2).inner_text() == ""
    page.screenshot(path=str(shots / "verslag.png"), full_page=True)
    with page.expect_download() as pdf:
        page.get_by_role("link", name="Download PDF").click()
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Download CSV").click()
    assert "kapot.xml" in Path(csv_download.value.path()).read_text("utf-8-sig")
    page.goto(site.console + "/p/iwmo/aanleveren")
    page.get_by_role("button", name="Vernieuwen").click()
    page.get_by_role("link", name="gemengd.zip").first.wait_for()
    page.screenshot(path=str(shots / "aanleveren.png"), full_page=True)


def test_download_from_ophalen_sets_the_gelezen_mark(page: Any, site: RunningEndpoint, shots: Path) -> None:
    ref = f"O-{uuid.uuid4().hex[:8]}"
    received(site, "WMO305", ref, client_payload("WMO305"), mailbox=True)
    login(page, site, "wmo")
    page.wait_for_url("**/console/dashboard")
    page.goto(site.console + "/p/iwmo/ophalen")
    row = (
        page.locator("tr", has=page.get_by_text(ref))
        if False
        else page.locator("tbody tr").filter(has_text="WMO305").first
    )
    assert row.locator("td.gelezen").inner_text().strip() == ""
    page.screenshot(path=str(shots / "ophalen.png"), full_page=True)
    row.get_by_role("checkbox").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download selectie (ZIP)").click()
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        assert any(name.endswith(".xml") for name in archive.namelist())
    page.goto(site.console + "/p/iwmo/ophalen")
    row = page.locator("tbody tr").filter(has_text="WMO305").first
    assert row.locator("td.gelezen").inner_text().strip() != ""
    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Markering gelezen weghalen").click()
    page.wait_for_url("**/ophalen")
    assert (
        page.locator("tbody tr").filter(has_text="WMO305").first.locator("td.gelezen").inner_text().strip()
        == ""
    )


def test_gebruikers_page(page: Any, site: RunningEndpoint, shots: Path) -> None:
    login(page, site, "beheer")
    page.wait_for_url("**/console/dashboard")
    page.get_by_role("link", name="Gebruikers").click()
    form = page.locator("form[action$='/console/gebruikers']")
    form.locator("input[name=username]").fill("nieuw")
    form.locator("input[name=display_name]").fill("Nieuwe Medewerker")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("select[name=role]").select_option("medewerker")
    form.locator("input[value=ieb]").check()
    form.get_by_role("button", name="Aanmaken").click()
    page.wait_for_url("**/console/gebruikers")
    assert "Nieuwe Medewerker" in page.locator("main").inner_text()
    page.screenshot(path=str(shots / "gebruikers.png"), full_page=True)
    # A medewerker cannot open the page.
    other = page.context.browser.new_context()
    p2 = other.new_page()
    login(p2, site, "nieuw")
    p2.wait_for_url("**/console/dashboard")
    assert p2.request.get(site.console + "/gebruikers").status == 403
    other.close()


ROUTES = """# the console test's table
[endpoint]
gemeentecodes = ["0363", "0014"]
test_gemeentecodes = []

[[sender]]
id = "00000099000001000000"
gemeentecodes = ["*"]

[[route]]
name = "amsterdam-wmo"
gemeentecode = "0363"
berichttype = "WMO301"
target = { type = "directory", path = "in/0363" }
"""


def test_change_a_route(page: Any, site: RunningEndpoint, shots: Path, tmp_path: Path) -> None:
    RouteStore(site.endpoint.database).replace(ROUTES, source="routes.toml", base_dir=tmp_path)
    login(page, site, "product")
    page.wait_for_url("**/console/dashboard")
    page.goto(site.console + "/p/iwmo/routeren")
    form = page.get_by_role("form", name="Route amsterdam-wmo")
    form.get_by_label("Status").select_option("inactief")
    form.get_by_label("Uitwisseling via").select_option("Portaal")
    form.get_by_label("Gemeentecode").fill("0014")
    form.get_by_role("button", name="Opslaan").click()
    page.wait_for_url("**/routeren")
    form = page.get_by_role("form", name="Route amsterdam-wmo")
    assert form.get_by_label("Status").input_value() == "inactief"
    assert form.get_by_label("Uitwisseling via").input_value() == "Portaal"
    assert form.get_by_label("Gemeentecode").input_value() == "0014"
    page.screenshot(path=str(shots / "routeren.png"), full_page=True)
    stored = RouteStore(site.endpoint.database).current()
    assert stored is not None and 'status = "inactief"' in stored.text
    events = AuditLog(site.endpoint.database).list(actor="product", action="route-set", limit=5)
    assert events and "amsterdam-wmo" in events[0].subject
    # A medewerker sees the table but cannot change it.
    other = page.context.browser.new_context()
    p2 = other.new_page()
    login(p2, site, "wmo")
    p2.wait_for_url("**/console/dashboard")
    p2.goto(site.console + "/p/iwmo/routeren")
    assert p2.get_by_role("button", name="Opslaan").count() == 0
    other.close()


def test_login_with_the_keyboard_only(page: Any, site: RunningEndpoint) -> None:
    page.goto(site.console + "/login")
    page.keyboard.press("Tab")  # the skip link first
    page.keyboard.press("Tab")
    page.keyboard.type("beheer")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/dashboard")
    headers = page.request.get(site.console + "/dashboard").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


def test_a_medewerker_sees_only_their_own_uploads(page: Any, site: RunningEndpoint, tmp_path: Path) -> None:
    upload = tmp_path / "van-slot.xml"
    upload.write_bytes(wmo301(ident=f"S-{uuid.uuid4().hex[:6]}"))
    login(page, site, "product")
    page.wait_for_url("**/console/dashboard")
    page.goto(site.console + "/p/iwmo/aanleveren")
    page.get_by_label("ZIP- of XML-bestand").set_input_files(str(upload))
    page.get_by_role("button", name="Aanleveren").click()
    page.wait_for_url("**/aanleveren/*")
    verslag_url = page.url
    other = page.context.browser.new_context()
    p2 = other.new_page()
    login(p2, site, "wmo")
    p2.wait_for_url("**/console/dashboard")
    p2.goto(site.console + "/p/iwmo/aanleveren")
    assert "van-slot.xml" not in p2.locator("main").inner_text()
    assert p2.request.get(verslag_url).status == 403
    other.close()


def test_berichtenlog_pages_of_fifty(page: Any, site: RunningEndpoint) -> None:
    for i in range(53):
        received(site, "WMO317", f"P-{i:03d}-{uuid.uuid4().hex[:4]}", client_payload("WMO317"))
    login(page, site, "wmo")
    page.wait_for_url("**/console/dashboard")
    page.goto(site.console + "/p/iwmo/berichtenlog")
    page.get_by_label("Berichttype").select_option("WMO317")
    page.get_by_role("button", name="Zoeken").click()
    assert page.locator("tbody tr").count() == 50
    page.get_by_role("link", name="Volgende").click()
    assert page.locator("tbody tr").count() == 3
    assert "berichttype=WMO317" in page.url
    page.get_by_role("link", name="Vorige").click()
    assert page.locator("tbody tr").count() == 50
