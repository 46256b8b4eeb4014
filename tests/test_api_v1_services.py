"""/api/v1 over the operations services, end to end over HTTPS with tokens on SQLite and
PostgreSQL: aanleveren (upload, list, verslag as JSON and CSV), berichtenlog, ophalen (list,
download as ZIP, unmark, delete), exchanges, routes and the audit trail with the token's name;
Ketendata list and download; /metrics moving with a batch."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ggk_ebms.api.problem import ProblemError
from ggk_ebms.api.v1_services import multipart_file
from ggk_ebms.clock import FixedClock
from ggk_ebms.server.autoimport import import_routes_file
from ggk_ebms.server.run import Endpoint
from ggk_ebms.services import ketendata
from tests.api_support import call, token
from tests.endpoint import PROJECT_ROOT, running
from tests.ketendata_support import WEEK_START, Traffic, a_week
from tests.ops_support import make_zip, ops_settings, wmo301
from tests.test_ops_berichtenlog_ophalen import received

pytestmark = pytest.mark.slow


async def _json(endpoint: Endpoint, method: str, path: str, secret: str, expected: int, **kw: Any) -> Any:
    status, _, body = await call(endpoint, method, path, secret, **kw)
    assert status == expected, body
    return json.loads(body)


async def _problem(endpoint: Endpoint, method: str, path: str, secret: str, expected: int, **kw: Any) -> str:
    status, headers, body = await call(endpoint, method, path, secret, **kw)
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")
    detail: str = json.loads(body)["detail"]
    return detail


async def _samples(endpoint: Endpoint, secret: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    status, _, body = await call(endpoint, "GET", "/metrics", secret)
    assert status == 200
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_aanleveren_verslag_berichtenlog_audit_and_metrics(tmp_path: Path, db_url: str) -> None:
    async with running(ops_settings(tmp_path, db_url)) as endpoint:
        uploader = token(endpoint, "leverancier", "send")
        reader = token(endpoint, "lezer", "read")
        admin = token(endpoint, "beheer", "admin")
        before = await _samples(endpoint, reader, "ggk_ebms_aanlever_batches")
        assert (("status", "Afgekeurd"),) not in before

        data = make_zip(
            [
                ("goed.xml", wmo301(ident="API-1")),
                ("andere-gemeente.xml", wmo301(gemeente="0014", ident="API-2")),
                ("foto.png", b"\x89PNG\r\n\x1a\n"),
            ]
        )
        verslag = await _json(
            endpoint,
            "POST",
            "/api/v1/aanleveringen?bestandsnaam=0363_WMO301.zip",
            uploader,
            201,
            data=data,
            headers={"Content-Type": "application/zip"},
        )
        assert verslag["status"] == "Afgekeurd" and verslag["verzender"] == "api:leverancier"
        assert (verslag["aantal_aangeleverd"], verslag["aantal_correct"], verslag["aantal_incorrect"]) == (
            3,
            1,
            2,
        )
        assert {f["bestand"] for f in verslag["fouten"]} == {"andere-gemeente.xml", "foto.png"}
        batch = verslag["batch"]

        # The same ZIP again, as a browser form sends it: harmless, the sent file is recognised.
        form = aiohttp.FormData()
        form.add_field("bestand", data, filename="C:\\map\\0363_WMO301.zip", content_type="application/zip")
        again = await _json(endpoint, "POST", "/api/v1/aanleveringen", uploader, 201, data=form)
        assert again["bestandsnaam"] == "0363_WMO301.zip" and again["batch"] != batch
        assert {f["bestand"]: f["uitkomst"] for f in again["bestanden"]}["goed.xml"] == "al verzonden"
        await _problem(endpoint, "POST", "/api/v1/aanleveringen", uploader, 400, data=data)

        # A file-level refusal: no batch, a problem with the manual's reason.
        detail = await _problem(
            endpoint, "POST", "/api/v1/aanleveringen?bestandsnaam=a.txt", uploader, 422, data=b"x"
        )
        assert "a.txt" in detail
        await _problem(endpoint, "POST", "/api/v1/aanleveringen?bestandsnaam=b.zip", reader, 403, data=data)

        page = await _json(endpoint, "GET", "/api/v1/aanleveringen?limit=1", reader, 200)
        assert [b["batch"] for b in page["items"]] == [again["batch"]] and page["more"] is True
        assert page["items"][0]["bestanden"] == []  # the list has no per-file lines
        rest = await _json(endpoint, "GET", "/api/v1/aanleveringen?limit=1&offset=1", reader, 200)
        assert [b["batch"] for b in rest["items"]] == [batch] and rest["more"] is False
        shown = await _json(endpoint, "GET", f"/api/v1/aanleveringen/{batch}", reader, 200)
        assert shown["bestanden"] == verslag["bestanden"]
        await _problem(endpoint, "GET", "/api/v1/aanleveringen/999999", reader, 404)

        status, headers, body = await call(
            endpoint, "GET", f"/api/v1/aanleveringen/{batch}/verslag.csv", reader
        )
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(body.decode()), delimiter=";"))
        outcome = {r["bestand"]: r["uitkomst"] for r in rows}
        assert outcome == {"goed.xml": "correct", "andere-gemeente.xml": "incorrect", "foto.png": "incorrect"}
        sent_pk = next(f["message_pk"] for f in verslag["bestanden"] if f["uitkomst"] == "correct")
        assert next(r for r in rows if r["bestand"] == "goed.xml")["bericht"] == str(sent_pk)

        # The berichtenlog shows the sent message and the refusals of this batch.
        log = await _json(endpoint, "GET", f"/api/v1/berichtenlog?batch={batch}", reader, 200)
        assert {r["message_pk"] for r in log["items"] if r["message_pk"] is not None} == {sent_pk}
        assert sum(1 for r in log["items"] if r["status"] == "Geweigerd") == 2
        sent = await _json(
            endpoint, "GET", f"/api/v1/berichtenlog?batch={batch}&direction=out&status=Created", reader, 200
        )
        [row] = sent["items"]
        assert row["gemeentecode"] == "0363" and row["berichttype"] == "WMO301"
        assert (await _json(endpoint, "GET", "/api/v1/berichtenlog?gemeentecode=9999", reader, 200))[
            "items"
        ] == []
        await _problem(
            endpoint,
            "GET",
            "/api/v1/berichtenlog",
            reader,
            422,
            params={"since": "2026-12-05T10:00:00+00:00", "until": "2026-12-04T10:00:00+00:00"},
        )
        await _problem(endpoint, "GET", "/api/v1/berichtenlog?since=2026-12-05T10:00:00", reader, 400)

        trail = await _json(endpoint, "GET", "/api/v1/audit?action=aanlevering", admin, 200)
        assert [(e["actor"], e["subject"]) for e in trail["items"]] == [
            ("api:leverancier", f"batch {again['batch']}"),
            ("api:leverancier", f"batch {batch}"),
        ]
        await _problem(endpoint, "GET", "/api/v1/audit", reader, 403)

        after = await _samples(endpoint, reader, "ggk_ebms_aanlever_batches")
        assert after[(("status", "Afgekeurd"),)] == 2.0
        business = await _samples(endpoint, reader, "ggk_ebms_messages_business")
        # The queued WMO301 is counted under its lifecycle business status.
        assert sum(v for labels, v in business.items() if ("direction", "out") in labels) == 1.0


async def test_ophalen_exchanges_and_routes(tmp_path: Path, db_url: str) -> None:
    settings = ops_settings(tmp_path, db_url, routes_file=PROJECT_ROOT / "dev" / "routes.toml")
    async with running(settings) as endpoint:
        assert any("in force" in line for line in import_routes_file(settings, endpoint.database))
        now = datetime.now(UTC)
        first = received(
            endpoint.database, now, berichttype="WMO301", gemeentecode="0363", ref="R-1", mailbox=True
        )
        received(endpoint.database, now, berichttype="JW301", gemeentecode="0363", ref="R-2", mailbox=True)
        reader = token(endpoint, "lezer", "read")
        operator = token(endpoint, "operator", "operate")
        admin = token(endpoint, "beheer", "admin")

        page = await _json(endpoint, "GET", "/api/v1/ophalen", reader, 200)
        items = {i["berichttype"]: i for i in page["items"]}
        assert set(items) == {"WMO301", "JW301"} and all(i["gedownload"] is None for i in page["items"])
        assert items["WMO301"]["titel"].endswith("_0363_WMO301") and items["WMO301"]["message_pk"] == first
        ids = [items["WMO301"]["id"], items["JW301"]["id"]]

        await _problem(endpoint, "POST", "/api/v1/ophalen/download", reader, 403, json={"ids": ids})
        status, headers, body = await call(
            endpoint, "POST", "/api/v1/ophalen/download", operator, json={"ids": ids}
        )
        assert status == 200 and headers["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            contents = sorted(archive.read(n) for n in archive.namelist())
        assert contents == [b"<payload ref='R-1'/>", b"<payload ref='R-2'/>"]
        unread = await _json(endpoint, "GET", "/api/v1/ophalen?unread=true", reader, 200)
        assert unread["items"] == []
        assert (
            await _json(endpoint, "POST", "/api/v1/ophalen/unmark", operator, 200, json={"ids": ids[:1]})
        )["ids"] == ids[:1]
        unread = await _json(endpoint, "GET", "/api/v1/ophalen?unread=true", reader, 200)
        assert [i["id"] for i in unread["items"]] == ids[:1]
        status, _, body = await call(endpoint, "POST", f"/api/v1/ophalen/{ids[0]}/download", operator)
        assert status == 200 and zipfile.ZipFile(io.BytesIO(body)).namelist()
        await _problem(endpoint, "POST", "/api/v1/ophalen/999999/download", operator, 404)
        await _problem(endpoint, "POST", "/api/v1/ophalen/delete", operator, 400, json={"ids": []})
        deleted = await _json(endpoint, "POST", "/api/v1/ophalen/delete", operator, 200, json={"ids": ids})
        assert sorted(deleted["ids"]) == sorted(ids)
        assert (await _json(endpoint, "GET", "/api/v1/ophalen", reader, 200))["items"] == []

        exchanges = await _json(endpoint, "GET", "/api/v1/exchanges", reader, 200)
        keys = [e["key"] for e in exchanges["items"]]
        assert "WMO301/WMO302" in keys and exchanges["total"] == len(keys)
        shown = await _json(endpoint, "GET", "/api/v1/exchanges/WMO301", reader, 200)
        assert shown["key"] == "WMO301/WMO302" and shown["changed"] == []
        await _problem(endpoint, "PATCH", "/api/v1/exchanges/WMO301", reader, 403, json={"via": "Portaal"})
        changed = await _json(
            endpoint, "PATCH", "/api/v1/exchanges/WMO301", operator, 200, json={"via": "Portaal"}
        )
        assert changed["via"] == "Portaal" and changed["changed"] == ["via"]
        await _problem(
            endpoint, "PATCH", "/api/v1/exchanges/WMO301", operator, 422, json={"stuf_version": "ggk9"}
        )
        await _problem(endpoint, "PATCH", "/api/v1/exchanges/WMO301", operator, 422, json={})
        await _problem(endpoint, "GET", "/api/v1/exchanges/XYZ999", reader, 404)
        reset = await _json(endpoint, "DELETE", "/api/v1/exchanges/WMO301/changes", operator, 200)
        assert reset["via"] == shown["via"] and reset["changed"] == []

        off = await _json(endpoint, "POST", "/api/v1/routes/dev-0363-alles/disable", operator, 200)
        assert off["name"] == "dev-0363-alles" and 'status = "inactief"' in off["after"]
        routes = await _json(endpoint, "GET", "/api/v1/routes", reader, 200)
        assert {r["name"]: r["status"] for r in routes["items"]}["dev-0363-alles"] == "inactief"
        on = await _json(endpoint, "POST", "/api/v1/routes/dev-0363-alles/enable", operator, 200)
        assert on["route_set"] > off["route_set"]
        await _problem(endpoint, "POST", "/api/v1/routes/bestaat-niet/enable", operator, 404)
        created = await _json(
            endpoint,
            "PUT",
            "/api/v1/routes/api-nieuw",
            operator,
            200,
            json={
                "gemeentecode": "0363",
                "berichttype": "JW301",
                "target": {"type": "mailbox"},
            },
        )
        assert created["created"] is True and created["before"] is None
        await _problem(
            endpoint, "PUT", "/api/v1/routes/api-half", operator, 422, json={"gemeentecode": "0014"}
        )

        trail = await _json(endpoint, "GET", "/api/v1/audit?actor=api:operator&limit=100", admin, 200)
        actions = {e["action"] for e in trail["items"]}
        assert {
            "mailbox-download",
            "mailbox-unmark",
            "mailbox-delete",
            "exchange-set",
            "exchange-reset",
            "route-disable",
            "route-enable",
            "route-set",
        } <= actions


async def test_ketendata_list_and_download(tmp_path: Path, db_url: str) -> None:
    settings = ops_settings(tmp_path, db_url, ketendata_key_file=tmp_path / "keys" / "ketendata.key")
    async with running(settings) as endpoint:
        clock = FixedClock(WEEK_START)
        a_week(Traffic(endpoint.database, clock))
        kctx = ketendata.KetendataContext(settings, endpoint.database, clock, actor="test")
        made = ketendata.export(kctx, ketendata.ExportRequest("period", since=WEEK_START, until=clock.now()))
        reader = token(endpoint, "lezer", "read")
        operator = token(endpoint, "operator", "operate")

        exports = await _json(endpoint, "GET", "/api/v1/ketendata/exports", reader, 200)
        assert [e["pk"] for e in exports["items"]] == [made.export_pk]
        files = await _json(endpoint, "GET", "/api/v1/ketendata/files?unread=true", reader, 200)
        assert len(files["items"]) == len(made.files) and all(f["data"] is None for f in files["items"])
        ids = [f["pk"] for f in files["items"]]

        await _problem(endpoint, "POST", "/api/v1/ketendata/download", reader, 403, json={"ids": ids})
        await _problem(endpoint, "POST", "/api/v1/ketendata/download", operator, 404, json={"ids": [999999]})
        status, headers, body = await call(
            endpoint, "POST", "/api/v1/ketendata/download", operator, json={"ids": ids}
        )
        assert status == 200 and headers["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
        assert sorted(n.rsplit("/", 1)[-1] for n in names) == sorted(f["filename"] for f in files["items"])
        assert (await _json(endpoint, "GET", "/api/v1/ketendata/files?unread=true", reader, 200))[
            "items"
        ] == []


def test_multipart_file_takes_the_file_part_and_refuses_a_form_without_one() -> None:
    boundary = "grens"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="toelichting"\r\n\r\nweek 49\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="bestand"; filename="/tmp/a.xml"\r\n'
        f"Content-Type: application/xml\r\n\r\n<a>\xe9</a>\r\n--{boundary}--\r\n"
    ).encode("latin-1")
    content_type = f"multipart/form-data; boundary={boundary}"
    assert multipart_file(content_type, body) == ("a.xml", "<a>\xe9</a>".encode("latin-1"))
    without = f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--{boundary}--\r\n'
    with pytest.raises(ProblemError) as refused:
        multipart_file(content_type, without.encode())
    assert refused.value.status == 400
