"""Rights per gemeentecode: in a two-gemeente installation a token of gemeente A sees and fetches
nothing of gemeente B through the API, and an aanlevering for B by an actor of A is refused with
"Organisatie … is niet geautoriseerd" in its verslag."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.services import aanleveren, berichtenlog
from ggk_ebms.services import koppeltabel as koppel_service
from ggk_ebms.services.aanleveren import Upload
from ggk_ebms.store.api_tokens import TokenStore
from ggk_ebms.store.db import Database
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.store.zorgaanbieders import ZorgaanbiederStore
from ggk_ebms.zorgaanbieders import Aanbieder
from tests.api_support import call
from tests.endpoint import cpa_folder, party_settings, running
from tests.ketendata_support import CLIENTS, jw301, jw305
from tests.koppeltabel_support import Traffic
from tests.ops_support import Ops, ops_context, ops_settings, wmo301

A, B = "0363", "0599"


async def test_api_answers_never_cross_gemeenten(tmp_path: Path) -> None:
    settings = party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa_folder(tmp_path))
    async with running(settings) as endpoint:
        db = endpoint.database
        traffic = Traffic(db, FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC)))
        toewijzing = traffic.di01(jw301("T-1", CLIENTS[0], ["1"]), "JW301", "out", gemeente=A)
        ours = traffic.di01(jw305("S-1", CLIENTS[0], "1"), "JW305", "in", gemeente=A)
        theirs = traffic.di01(
            jw305("S-2", CLIENTS[0], "2").replace(b">0363<", b">0599<"), "JW305", "in", gemeente=B
        )
        koppel_service.catch_up(db, traffic.clock)
        items = {}
        for pk, code in ((ours, A), (theirs, B)):
            items[code] = Mailbox(db).put(
                message_pk=pk,
                route_name="r",
                gemeentecode=code,
                berichttype="JW305",
                referentienummer=traffic.refs[pk],
                zender="12345678",
                filename=f"{code}.xml",
                payload=b"<x/>",
                envelope=None,
            )
        tokens = TokenStore(db)
        secret_a = tokens.create("medewerker-a", ("read", "send"), gemeentecodes=[A])[1]
        secret_all = tokens.create("beheer", ("read", "send"))[1]

        ZorgaanbiederStore(db).upsert(
            [Aanbieder("12345678", "Jeugdhulp De Linde", True)], traffic.clock.now()
        )
        status, _, body = await call(endpoint, "GET", "/api/v1/messages", secret_a)
        assert status == 200
        page = json.loads(body)
        assert [m["pk"] for m in page["items"]] == [ours, toewijzing] and page["total"] == 2
        # The berichtenlog of the API names the aanbieder from the register.
        assert [m["aanbieder_naam"] for m in page["items"]] == ["Jeugdhulp De Linde"] * 2
        status, _, body = await call(endpoint, "GET", "/api/v1/messages", secret_all)
        assert {m["pk"] for m in json.loads(body)["items"]} >= {ours, theirs}

        status, _, body = await call(endpoint, "GET", f"/api/v1/messages/{ours}", secret_a)
        assert status == 200
        assert [(k["pk"], k["relation"], k["via"], k["role"]) for k in json.loads(body)["koppeltabel"]] == [
            (toewijzing, "start", "ToewijzingNummer", "earlier")
        ]
        status, _, body = await call(endpoint, "GET", f"/api/v1/messages/{theirs}", secret_a)
        assert status == 404 and traffic.message_ids[theirs].encode() not in body

        status, _, body = await call(endpoint, "GET", "/api/v1/mailbox", secret_a)
        assert [i["gemeentecode"] for i in json.loads(body)["items"]] == [A]
        status, _, _ = await call(endpoint, "POST", f"/api/v1/mailbox/{items[B]}/fetch", secret_a)
        assert status == 404
        assert Mailbox(db).list(gemeentecode=B, include_fetched=False)  # still unread for B
        assert (await call(endpoint, "POST", f"/api/v1/mailbox/{items[A]}/fetch", secret_a))[0] == 200

        # The ebms-core REST v19 API: the same rights.
        v19 = "/service/rest/v19/ebms"
        status, _, body = await call(endpoint, "GET", f"{v19}/messages/unprocessed", secret_a)
        assert status == 200 and json.loads(body) == [traffic.message_ids[ours]]
        status, _, body = await call(endpoint, "GET", f"{v19}/messages/unprocessed", secret_all)
        assert set(json.loads(body)) == {traffic.message_ids[ours], traffic.message_ids[theirs]}
        assert (await call(endpoint, "GET", f"{v19}/messages/{traffic.message_ids[ours]}", secret_a))[
            0
        ] == 200
        for path in (
            f"/messages/{traffic.message_ids[theirs]}",
            f"/messages/{traffic.message_ids[theirs]}/status",
        ):
            assert (await call(endpoint, "GET", v19 + path, secret_a))[0] == 404
        status, _, body = await call(endpoint, "GET", f"{v19}/events/unprocessed", secret_a)
        assert traffic.message_ids[theirs] not in body.decode()
        envelope_b = MessageStore(db).parts(theirs)[0].data.replace(b">12345678<", b">0599<", 1)
        request = {
            "properties": {
                "cpaId": "any",
                "fromPartyId": "x",
                "service": "s",
                "action": "a",
            },
            "dataSources": [
                {"contentType": "application/xml", "content": base64.b64encode(envelope_b).decode()}
            ],
        }
        status, _, body = await call(endpoint, "POST", f"{v19}/messages", secret_a, json=request)
        assert status == 403 and b"Organisatie 0599 is niet geautoriseerd" in body


def test_token_gemeentecodes_are_checked(db: Database) -> None:
    tokens = TokenStore(db)
    with pytest.raises(ValueError, match="4 digits"):
        tokens.create("x", ("read",), gemeentecodes=["363"])
    with pytest.raises(ValueError, match="4 digits"):
        tokens.create("y", ("read",), gemeentecodes=[])
    token, _ = tokens.create("z", ("read",), gemeentecodes=[B, A, A])
    assert token.gemeentecodes == frozenset({A, B})
    assert TokenStore(db).find_by_name("z").gemeentecodes == frozenset({A, B})  # type: ignore[union-attr]
    assert tokens.create("all", ("read",))[0].gemeentecodes is None


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url, served_gemeentecodes=[A, B]), db, tmp_path)


def test_aanlevering_and_berichtenlog_of_another_gemeente(ops: Ops, tmp_path: Path) -> None:
    import dataclasses

    medewerker_b = dataclasses.replace(ops.ctx, actor="medewerker-b", gemeentecodes=frozenset({B}))
    upload = tmp_path / "toewijzing.xml"
    upload.write_bytes(wmo301(gemeente=A, ident="R-1"))
    [file] = aanleveren.aanleveren(medewerker_b, Upload("toewijzing.xml", upload)).bestanden
    assert file.uitkomst == "incorrect" and file.message_pk is None
    assert f"Organisatie {A} is niet geautoriseerd" in (file.fout_detail or "")
    # The same file from an actor of A (or without restriction) is sent.
    medewerker_a = dataclasses.replace(ops.ctx, actor="medewerker-a", gemeentecodes=frozenset({A}))
    [sent] = aanleveren.aanleveren(medewerker_a, Upload("toewijzing.xml", upload)).bestanden
    assert sent.uitkomst == "correct"

    query = berichtenlog.LogFilter(until=ops.clock.now(), status=None)
    rows_b = berichtenlog.berichtenlog(medewerker_b, query).rows
    assert rows_b == ()  # the refused file and the sent message are both about A
    rows_a = berichtenlog.berichtenlog(medewerker_a, query).rows
    assert {r.gemeentecode for r in rows_a} == {A}


def test_ketendata_set_per_gemeente_holds_nothing_of_the_other(db: Database, tmp_path: Path) -> None:
    from datetime import timedelta

    from ggk_ebms.config import Settings
    from ggk_ebms.errors import ConfigError
    from ggk_ebms.services import ketendata
    from tests.ketendata_support import WEEK_START, a_week
    from tests.ketendata_support import Traffic as WeekTraffic

    clock = FixedClock(WEEK_START)
    week = WeekTraffic(db, clock)
    a_week(week)  # gemeente A: toewijzingen, start, stop, declaratie
    other = Traffic(db, clock)
    theirs = other.di01(
        jw305("S-2", CLIENTS[0], "300200").replace(b">0363<", b">0599<"), "JW305", "in", gemeente=B
    )
    settings = Settings(data_dir=tmp_path, ketendata_key_file=tmp_path / "keys" / "ketendata.key")
    ctx = ketendata.KetendataContext(settings, db, FixedClock(WEEK_START + timedelta(days=7)), actor="test")
    period = (WEEK_START - timedelta(days=1), WEEK_START + timedelta(days=7))
    ours_ids = {i for ids in week.message_ids.values() for i in ids}

    def columns(codes: frozenset[str]) -> dict[str, set[str]]:
        """Every value of the Gemeentecode and MessageId columns of the set, by column kind."""
        result = ketendata.export(ctx, ketendata.ExportRequest("period", *period, codes))
        listed = [f for f in ketendata.list_files(ctx) if f.export_pk == result.export_pk]
        found: dict[str, set[str]] = {"gemeente": set(), "ids": set(), "relaties": set()}
        for f in ketendata.fetch_files(ctx, [f.pk for f in listed]):
            for row in csv.DictReader(io.StringIO((f.data or b"").decode()), delimiter=";"):
                found["gemeente"].update(v for k, v in row.items() if k == "Gemeentecode" and v)
                found["ids"].update(v for k, v in row.items() if k and k.endswith("EbmsMessageId") and v)
                found["relaties"].update(v for k, v in row.items() if k == "Relatie" and v)
        return found

    only_b = columns(frozenset({B}))
    assert only_b["gemeente"] == {B} and only_b["ids"] == {other.message_ids[theirs]}
    only_a = columns(frozenset({A}))
    assert only_a["gemeente"] == {A} and other.message_ids[theirs] not in only_a["ids"]
    assert only_a["ids"] <= ours_ids and "start" in only_a["relaties"]  # A's koppeltabel is there
    with pytest.raises(ConfigError):
        ketendata.export(ctx, ketendata.ExportRequest("weekly", gemeentecodes=frozenset({A})))


def test_ophalen_of_another_gemeente(ops: Ops, db: Database) -> None:
    import dataclasses

    from ggk_ebms.services import ophalen
    from ggk_ebms.services.context import NotFoundError

    traffic = Traffic(db, ops.clock)
    items = {}
    for code in (A, B):
        pk = traffic.di01(jw305(f"S-{code}", CLIENTS[0], "1"), "JW305", "in", gemeente=code)
        items[code] = Mailbox(db).put(
            message_pk=pk,
            route_name="r",
            gemeentecode=code,
            berichttype="JW305",
            referentienummer=traffic.refs[pk],
            zender="12345678",
            filename=f"{code}.xml",
            payload=b"<x/>",
            envelope=None,
        )
    medewerker_a = dataclasses.replace(ops.ctx, actor="medewerker-a", gemeentecodes=frozenset({A}))
    listed = ophalen.list_items(medewerker_a, ophalen.OphaalQuery())
    assert [i.organisatie for i in listed] == [A]
    for action in (ophalen.download, ophalen.unmark, ophalen.delete):
        with pytest.raises(NotFoundError):
            action(medewerker_a, [items[B]])
    assert Mailbox(db).list(gemeentecode=B, include_fetched=False)  # untouched
    assert [i.id for i in ophalen.download(medewerker_a, [items[A]]).items] == [items[A]]
