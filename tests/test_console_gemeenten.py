"""Console accounts with gemeentecodes: in a two-gemeente installation an account of gemeente A
sees nothing of gemeente B in the berichtenlog, its CSV export, the message page, Ophalen and its
ZIP download; an aanlevering for B is refused in its verslag; the pages of the whole installation
stay for accounts without limits. Plain HTTP against a real endpoint (a browser adds nothing)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from ggk_ebms.clock import FixedClock, SystemClock
from ggk_ebms.server.run import Endpoint
from ggk_ebms.services import gebruikers
from ggk_ebms.services.context import ServiceContext, ServiceError
from ggk_ebms.store.console_users import UserStore
from ggk_ebms.store.db import Database
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.stuf import StufRecord, StufStore
from ggk_ebms.store.zorgaanbieders import ZorgaanbiederStore
from ggk_ebms.zorgaanbieders import Aanbieder
from tests.api_support import ca_context
from tests.endpoint import cpa_folder, party_settings, running
from tests.ketendata_support import AGB_A, CLIENTS, jw305
from tests.koppeltabel_support import Traffic
from tests.ops_support import wmo301

A, B = "0363", "0599"
PASSWORD = "een lang genoeg wachtwoord"
NAAM = "Jeugdhulp De Linde"


@dataclass
class Site:
    endpoint: Endpoint
    base: str
    pks: dict[str, int]  # gemeentecode -> its JW305 message
    items: dict[str, int]  # gemeentecode -> its Ophalen item
    refs: dict[str, str]  # gemeentecode -> referentienummer of its message
    day: str  # the day the messages were stored, as the dashboard writes it


class Browser:
    """A console session over plain HTTP: logs in with the form's CSRF token like a browser."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.csrf = ""

    async def login(self, username: str) -> None:
        async with self.session.get(self.base + "/login", ssl=ca_context()) as r:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
        assert token is not None
        form = {"csrf_token": token.group(1), "username": username, "password": PASSWORD}
        async with self.session.post(self.base + "/login", data=form, ssl=ca_context()) as r:
            page = await r.text()
            assert r.status == 200 and "Dashboard" in page, page
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found is not None
        self.csrf = found.group(1)

    async def get(self, path: str) -> tuple[int, bytes]:
        async with self.session.get(self.base + path, ssl=ca_context()) as r:
            return r.status, await r.read()

    async def post(self, path: str, data: Any) -> tuple[int, bytes, dict[str, str]]:
        async with self.session.post(
            self.base + path, data=data, ssl=ca_context(), allow_redirects=False
        ) as r:
            return r.status, await r.read(), dict(r.headers)


def _on(day: str, dashboard: bytes) -> tuple[int, int]:
    """The (in, out) of ``day`` from the dashboard's table of figures per day."""
    found = re.search(rf"<td>{day}</td><td>(\d+)</td><td>(\d+)</td>", dashboard.decode())
    assert found is not None
    return int(found.group(1)), int(found.group(2))


def _user(endpoint: Endpoint, username: str, role: str, codes: tuple[str, ...] | None) -> None:
    ctx = ServiceContext(endpoint.database, endpoint.settings, "test", SystemClock())
    gebruikers.create_user(
        ctx, username=username, display_name=username, password=PASSWORD, role=role,
        products=("iwmo", "ijw"), gemeentecodes=codes,
    )  # fmt: skip


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = party_settings(
        "gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa_folder(tmp_path),
        served_gemeentecodes=[A, B],
    )  # fmt: skip
    async with running(settings) as endpoint:
        db = endpoint.database
        traffic = Traffic(db, FixedClock(datetime.now(UTC)))
        pks, items, refs = {}, {}, {}
        for code in (A, B):
            payload = jw305(f"S-{code}", CLIENTS[0], "1").replace(b">0363<", f">{code}<".encode())
            pk = traffic.di01(payload, "JW305", "in", gemeente=code)
            pks[code], refs[code] = pk, traffic.refs[pk]
            # The stuurgegevens as the endpoint keeps them on receipt (the berichtenlog reads them).
            StufStore(db, traffic.clock).record(
                StufRecord(
                    message_pk=pk, direction="in", berichtcode="Di01", referentienummer=traffic.refs[pk],
                    zender=AGB_A, ontvanger=code, gemeentecode=code, berichttype="JW305",
                )
            )  # fmt: skip
            items[code] = Mailbox(db).put(
                message_pk=pk, route_name="r", gemeentecode=code, berichttype="JW305",
                referentienummer=traffic.refs[pk], zender=AGB_A, filename=f"{code}.xml",
                payload=f"<bericht gemeente='{code}'/>".encode(), envelope=None,
            )  # fmt: skip
        ZorgaanbiederStore(db).upsert([Aanbieder(AGB_A, NAAM, True)], traffic.clock.now())
        _user(endpoint, "medewerker-a", "medewerker", (A,))
        _user(endpoint, "beheer-a", "productbeheerder", (A,))
        _user(endpoint, "beheer", "productbeheerder", None)
        _user(endpoint, "admin", "gebruikersbeheerder", None)
        _user(endpoint, "admin-a", "gebruikersbeheerder", (A,))
        assert endpoint.api is not None
        base = endpoint.api.url.replace("127.0.0.1", "localhost") + "/console"
        yield Site(endpoint, base, pks, items, refs, f"{traffic.clock.now():%d-%m-%Y}")


async def test_an_account_of_gemeente_a_sees_nothing_of_b(site: Site) -> None:
    async with aiohttp.ClientSession() as session:
        web = Browser(session, site.base)
        await web.login("medewerker-a")

        status, page = await web.get("/p/ijw/berichtenlog")
        assert status == 200, page
        assert site.refs[A].encode() in page and site.refs[B].encode() not in page
        assert f">{B}<".encode() not in page
        # The aanbieder's name from the register beside its AGB code.
        assert AGB_A.encode() in page and NAAM.encode() in page
        # Asking for B by the filter finds nothing either.
        status, page = await web.get(f"/p/ijw/berichtenlog?gemeentecode={B}")
        assert status == 200 and site.refs[B].encode() not in page and b"Geen berichten gevonden" in page

        status, export = await web.get("/p/ijw/berichtenlog.csv")
        text = export.decode("utf-8-sig")
        assert status == 200 and site.refs[A] in text and site.refs[B] not in text and NAAM in text
        assert f";{B};" not in text

        assert (await web.get(f"/p/ijw/bericht/{site.pks[A]}"))[0] == 200
        status, page = await web.get(f"/p/ijw/bericht/{site.pks[B]}")
        assert status == 404 and site.refs[B].encode() not in page

        status, page = await web.get("/p/ijw/ophalen")
        assert status == 200
        assert f'value="{site.items[A]}"'.encode() in page
        assert f'value="{site.items[B]}"'.encode() not in page
        form = {"csrf_token": web.csrf, "id": str(site.items[B])}
        status, body, _ = await web.post("/p/ijw/ophalen/download", form)
        assert status == 403 and b"gemeente='0599'" not in body
        assert Mailbox(site.endpoint.database).list(gemeentecode=B, include_fetched=False)  # unread
        status, body, headers = await web.post(
            "/p/ijw/ophalen/download", {"csrf_token": web.csrf, "id": str(site.items[A])}
        )
        assert status == 200 and headers["Content-Type"].startswith("application/zip")
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            contents = b"".join(archive.read(n) for n in archive.namelist())
        assert b"gemeente='0363'" in contents and b"gemeente='0599'" not in contents
        for action in ("ongelezen", "verwijderen"):
            form = {"csrf_token": web.csrf, "id": str(site.items[B])}
            assert (await web.post(f"/p/ijw/ophalen/{action}", form))[0] == 403

        # The dashboard counts A's message only, and shows no figures of the whole installation.
        status, page = await web.get("/dashboard")
        assert status == 200 and b"Wachtrijen" not in page and b"werkt voor gemeente 0363" in page
        assert _on(site.day, page) == (1, 0)


async def test_an_aanlevering_for_gemeente_b_is_refused_in_the_verslag(site: Site) -> None:
    async with aiohttp.ClientSession() as session:
        web = Browser(session, site.base)
        await web.login("medewerker-a")
        form = aiohttp.FormData()
        form.add_field("csrf_token", web.csrf)
        form.add_field("bestand", wmo301(gemeente=B, ident="R-B"), filename="voor-b.xml")
        status, _, headers = await web.post("/p/iwmo/aanleveren", form)
        assert status == 303
        status, page = await web.get(headers["Location"].removeprefix("/console"))
        assert status == 200
        assert f"Organisatie {B} is niet geautoriseerd".encode() in page and b"incorrect" in page


async def test_whole_installation_pages_need_an_account_for_every_gemeente(site: Site) -> None:
    async with aiohttp.ClientSession() as session:
        limited = Browser(session, site.base)
        await limited.login("beheer-a")
        for path in ("/p/iwmo/routeren", "/p/iwmo/cpa"):
            status, page = await limited.get(path)
            assert status == 403 and b"alle gemeenten" in page
    async with aiohttp.ClientSession() as session:
        full = Browser(session, site.base)
        await full.login("beheer")
        assert (await full.get("/p/iwmo/routeren"))[0] == 200
        status, page = await full.get("/p/ijw/berichtenlog")
        assert site.refs[A].encode() in page and site.refs[B].encode() in page
        status, page = await full.get("/dashboard")
        assert b"Wachtrijen" in page and _on(site.day, page) == (2, 0)


async def test_gemeentecodes_are_edited_on_the_gebruikers_page(site: Site) -> None:
    users = UserStore(site.endpoint.database)
    async with aiohttp.ClientSession() as session:
        limited = Browser(session, site.base)
        await limited.login("admin-a")
        status, page = await limited.get("/gebruikers")
        assert status == 403 and b"alle gemeenten" in page
        form = {"csrf_token": limited.csrf, "role": "medewerker", "products": "ijw", "gemeentecodes": ""}
        assert (await limited.post("/gebruikers/admin-a", form))[0] == 403
        assert users.by_username("admin-a").gemeentecodes == frozenset({A})  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        admin = Browser(session, site.base)
        await admin.login("admin")
        status, page = await admin.get("/gebruikers")
        assert status == 200 and f'name="gemeentecodes" size="20" value="{A}"'.encode() in page
        codes = f"{B}, {A}"
        form = {"csrf_token": admin.csrf, "role": "medewerker", "products": "ijw", "gemeentecodes": codes}
        assert (await admin.post("/gebruikers/medewerker-a", form))[0] == 303
        assert users.by_username("medewerker-a").gemeentecodes == frozenset({A, B})  # type: ignore[union-attr]
        form["gemeentecodes"] = "abc"
        status, page, _ = await admin.post("/gebruikers/medewerker-a", form)
        assert status == 400 and b"vier cijfers" in page
        form = {
            "csrf_token": admin.csrf, "username": "nieuw", "display_name": "", "password": PASSWORD,
            "role": "medewerker", "products": "iwmo", "gemeentecodes": B,
        }  # fmt: skip
        assert (await admin.post("/gebruikers", form))[0] == 303
        assert users.by_username("nieuw").gemeentecodes == frozenset({B})  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        medewerker = Browser(session, site.base)
        await medewerker.login("medewerker-a")  # now for A and B: sees both
        status, page = await medewerker.get("/p/ijw/berichtenlog")
        assert site.refs[A].encode() in page and site.refs[B].encode() in page


def test_accounts_carry_checked_gemeentecodes(db: Database, tmp_path: Path) -> None:
    from ggk_ebms.config import Settings

    ctx = ServiceContext(db, Settings(data_dir=tmp_path), "test", SystemClock())
    made = gebruikers.create_user(
        ctx, username="a", display_name="", password=PASSWORD, role="medewerker", products=("iwmo",),
        gemeentecodes=[B, A, A],
    )  # fmt: skip
    assert made.gemeentecodes == frozenset({A, B})
    with pytest.raises(ServiceError, match="vier cijfers"):
        gebruikers.update_user(ctx, "a", gemeentecodes=["363"])
    assert gebruikers.update_user(ctx, "a", role="medewerker").gemeentecodes == frozenset({A, B})  # kept
    assert gebruikers.update_user(ctx, "a", gemeentecodes=[]).gemeentecodes is None  # every gemeente
    assert UserStore(db).by_username("a").gemeentecodes is None  # type: ignore[union-attr]
    assert gebruikers.update_user(ctx, "a", gemeentecodes=[A]).gemeentecodes == frozenset({A})


def test_user_commands_set_and_list_gemeentecodes(tmp_path: Path) -> None:
    from ggk_ebms.cli.main import cli

    config = tmp_path / "ggk-ebms.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n')
    runner = CliRunner(env={"GGK_EBMS_USER_PASSWORD": PASSWORD})
    base = ["--config", str(config)]
    codes = ["--gemeentecode", A, "--gemeentecode", B]
    result = runner.invoke(cli, [*base, "user", "create", "anna", "--role", "medewerker", *codes])
    assert result.exit_code == 0, result.output
    assert f"gemeenten {A},{B}" in result.output
    result = runner.invoke(cli, [*base, "user", "list"])
    assert f"anna\tmedewerker\tieb,ijw,iwmo,pgb-jw,pgb-wmo\t{A},{B}\tactief" in result.output
    result = runner.invoke(cli, [*base, "user", "gemeenten", "anna", "--alle"])
    assert result.exit_code == 0 and "gemeenten alle" in result.output
    result = runner.invoke(cli, [*base, "user", "gemeenten", "anna", "--gemeentecode", "12"])
    assert result.exit_code != 0 and "vier cijfers" in result.output
