"""The delivery worker against a real database (SQLite and PostgreSQL): routing outcomes, retries
per target, parked messages re-tried, the mailbox, a real SOAP service on loopback checked against
our WSDL with zeep, and a received Fo01 matched to the message we sent."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zeep
from aiohttp import web
from lxml import etree

from ggk_ebms.clock import IdGenerator, SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.forwarders.http import BINDING, wsdl_path
from ggk_ebms.delivery.retry import retry_message
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE
from ggk_ebms.payloads.detect import detect
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import (
    StufRecord,
    StufStore,
    received_earlier_in,
    received_first_in,
    sent_among,
    sent_in,
)
from ggk_ebms.stuf.envelope import build_di01, build_du01, build_fo01, parse_envelope
from ggk_ebms.stuf.model import Systeem
from tests.conftest import require_shared
from tests.endpoint import CPA_RM, RINIS, cpa_folder, party_settings
from tests.http_target import BV03_SOAP, LoopbackTarget
from tests.message_support import outbound_di01, received_di01

AGB = "65656055"
OTHER_OIN = "00000099000009990000"
# A WMO305 (Start ondersteuning, aanbieder -> gemeente), written for these tests.
WMO305 = """<?xml version="1.0" encoding="UTF-8"?>
<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/3_2/wmo305/schema">
  <w:Header>
    <w:BerichtCode>418</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie><w:BerichtSubversie>2</w:BerichtSubversie>
    <w:Afzender>{agb}</w:Afzender><w:Ontvanger>{gemeente}</w:Ontvanger>
    <w:BerichtIdentificatie><w:Identificatie>{ident}</w:Identificatie><w:Dagtekening>2026-01-05</w:Dagtekening></w:BerichtIdentificatie>
  </w:Header>
</w:Bericht>
"""


def payload(gemeente: str = "0363", ident: str = "B-1") -> bytes:
    return WMO305.format(agb=AGB, gemeente=gemeente, ident=ident).encode()


def envelope(
    gemeente: str = "0363",
    functie: str = "WMO305",
    body: bytes | None = None,
    zender: str = AGB,
    ids: IdGenerator | None = None,
) -> bytes:
    """A Di01 from the aanbieder; ``ids`` gives its referentienummer (a fresh one by default)."""
    return build_di01(
        zender=Systeem(zender, "Zorgsysteem"),
        ontvanger=Systeem(gemeente, "GGk"),
        functie=functie,
        payload=body if body is not None else payload(gemeente),
        ids=ids if ids is not None else UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    ).data


def receive(
    db: Database, data: bytes, *, sender: str = RINIS, cpa_id: str = CPA_RM, deliver: bool = True
) -> int:
    now = datetime.now(UTC)
    message = received_di01(now, sender=sender, cpa_id=cpa_id)
    part = NewPart(f"{uuid.uuid4()}@peer.test", "application/xml", data)
    return (
        MessageStore(db)
        .receive(message, [part], response=None, deliver=deliver, send_response_async=False)
        .message_pk
    )


def sent_di01(db: Database, referentienummer: str, berichttype: str = "WMO301") -> int:
    """An outbound Di01 as ``submit`` stores it: message, StUF record and send job in one step."""
    now = datetime.now(UTC)
    message = outbound_di01(now)
    record = StufRecord(
        message_pk=0,
        direction="out",
        berichtcode="Di01",
        referentienummer=referentienummer,
        zender="0363",
        ontvanger=AGB,
        berichttype=berichttype,
    )
    part = NewPart(f"{uuid.uuid4()}@gemeente.test", "application/xml", b"<di01/>")
    return MessageStore(db).submit(message, [part], due_at=now + timedelta(days=1), stuf=record)


ROUTES = """
[endpoint]
gemeentecodes = ["0363", "0014", "0384"]

[[sender]]
id = "{rinis}"
gemeentecodes = ["0363", "0014"]

[[route]]
name = "exact"
gemeentecode = "0363"
berichttype = "WMO305"
target = {{ type = "directory", path = "{base}/exact" }}

[[route]]
name = "gemeente"
gemeentecode = "0363"
berichttype = "*"
target = {{ type = "directory", path = "{base}/gemeente" }}

[[route]]
name = "any-gemeente"
gemeentecode = "*"
berichttype = "WMO305"
target = {{ type = "mailbox" }}

[[route]]
name = "switched-off"
gemeentecode = "0014"
berichttype = "WMO307"
status = "inactief"
target = {{ type = "mailbox" }}
"""


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        delivery_retry_seconds=0.0,
        delivery_retry_max_seconds=0.0,
        delivery_max_attempts=2,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    database.upgrade()
    for line in import_cpa_dir(settings, database):
        assert "not imported" not in line or "sync" in line, line
    try:
        yield database
    finally:
        database.dispose()


def use_routes(db: Database, text: str, tmp_path: Path) -> None:
    RouteStore(db).replace(text.format(rinis=RINIS, base=tmp_path), source="routes.toml", base_dir=tmp_path)


def run(settings: Settings, db: Database) -> None:
    DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()


def fo01s(db: Database) -> list[Any]:
    store = MessageStore(db)
    return [
        parse_envelope(store.parts(m.pk)[0].data)
        for m in store.list(direction="out")
        if m.action == "Fo01Bericht"
    ]


# --- routing outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gemeente", "functie", "body_gemeente", "sender", "status", "code", "where"),
    [
        ("0363", "WMO305", "0363", RINIS, "Forwarded", None, "exact"),  # exact/exact wins
        ("0014", "WMO305", "0014", RINIS, "Processed", None, "mailbox"),  # */WMO305 (mailbox)
        ("0014", "WMO307", "0014", RINIS, "Failed", "IB023", None),  # only an inactive route
        ("0599", "WMO305", "0599", RINIS, "Failed", "IB005", None),  # gemeente not served
        ("0384", "WMO305", "0384", RINIS, "Failed", "IB007", None),  # sender's scope lacks 0384
        ("0363", "WMO305", "0363", OTHER_OIN, "Failed", "IB002", None),  # unknown sender
    ],
)
def test_routing_outcomes(
    settings: Settings,
    db: Database,
    tmp_path: Path,
    gemeente: str,
    functie: str,
    body_gemeente: str,
    sender: str,
    status: str,
    code: str | None,
    where: str | None,
) -> None:
    use_routes(db, ROUTES, tmp_path)
    body = payload(body_gemeente)
    if functie == "WMO307":  # Stop ondersteuning: same header, BerichtCode 420
        body = body.replace(b"wmo305", b"wmo307").replace(b">418<", b">420<")
    pk = receive(db, envelope(gemeente, functie, body), sender=sender)
    run(settings, db)
    message = MessageStore(db).get(pk)
    assert (message.status, message.error_code) == (status, code), message.status_reason
    if where == "mailbox":
        assert [i.message_pk for i in Mailbox(db).list()] == [pk]
    elif where is not None:
        assert len(list((tmp_path / where).glob(f"{gemeente}_{functie}_*.xml"))) == 1
    if code is not None:
        [fo01] = fo01s(db)
        assert fo01.fout.code == code
        assert fo01.stuurgegevens.ontvanger.organisatie == AGB


def test_no_route_is_held_for_an_operator_without_fo01(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    use_routes(
        db,
        '[endpoint]\ngemeentecodes = ["0363"]\n[[sender]]\nid = "{rinis}"\ngemeentecodes = ["*"]\n',
        tmp_path,
    )
    pk = receive(db, envelope())
    run(settings, db)
    message = MessageStore(db).get(pk)
    assert message.status == "Failed" and message.error_code == "IB102"
    assert "no route for 0363/WMO305" in (message.status_reason or "")
    assert fo01s(db) == []
    use_routes(db, ROUTES, tmp_path)  # the operator adds the route and re-tries
    retry_message(db, pk, now=datetime.now(UTC))
    run(settings, db)
    assert MessageStore(db).get(pk).status == "Forwarded"


def test_duplicates_same_payload_is_a_no_op_other_payload_is_ib016(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    use_routes(db, ROUTES, tmp_path)
    data = envelope()
    first, again = receive(db, data), receive(db, data)  # two ebMS messages, one StUF message
    ref = parse_envelope(data).referentienummer
    third = receive(db, envelope(body=payload(ident="B-2"), ids=_FixedIds(ref)))
    run(settings, db)
    store = MessageStore(db)
    assert store.get(first).status == "Forwarded"
    assert store.get(again).status == "Processed"
    assert f"message {first}" in (store.get(again).status_reason or "")
    assert store.get(third).error_code == "IB016"
    assert len(list((tmp_path / "exact").glob("*.xml"))) == 1


class _FixedIds:
    def __init__(self, value: str) -> None:
        self.value = value

    def uuid(self) -> str:
        return self.value

    def message_id(self) -> str:
        return f"{uuid.uuid4()}@test"


# --- targets that fail ------------------------------------------------------------------------------


def test_directory_that_cannot_be_written_parks_then_retry_delivers(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    use_routes(db, ROUTES, tmp_path)
    (tmp_path / "exact").write_text("a file where the folder should be")  # unwritable target
    pk = receive(db, envelope())
    run(settings, db)  # try 1: retry (no wait in these settings)
    run(settings, db)  # try 2 = delivery_max_attempts: parked
    message = MessageStore(db).get(pk)
    assert message.status == "Failed"
    assert "cannot write to folder" in (message.status_reason or "")
    assert "messages retry" in (message.status_reason or "")
    assert [a.outcome for a in JobQueue(db).attempts(pk)] == ["retry", "fail"]
    assert [p.data for p in MessageStore(db).parts(pk)] == [MessageStore(db).parts(pk)[0].data]  # kept
    (tmp_path / "exact").unlink()  # the operator fixes the folder
    retry_message(db, pk, now=datetime.now(UTC))
    run(settings, db)
    assert MessageStore(db).get(pk).status == "Forwarded"
    assert len(list((tmp_path / "exact").glob("0363_WMO305_*.xml"))) == 1


class SoapService(LoopbackTarget):
    """A domain application on loopback: checks each request against our WSDL with zeep."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = 0
        self.received: list[tuple[str, str]] = []  # (operation, referentienummer)
        client = zeep.Client(str(wsdl_path()))
        self.binding = client.wsdl.bindings[BINDING]

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503, text="down for maintenance")
        action = request.headers.get("SOAPAction", "").strip('"')
        operation = next(op for op in self.binding.all().values() if op.soapaction == action)
        document = etree.fromstring(await request.read())
        operation.input.deserialize(document)  # raises when the request does not fit the WSDL
        body = document.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        stuf = parse_envelope(etree.tostring(body[0]))
        self.received.append((operation.name, stuf.referentienummer))
        return web.Response(text=BV03_SOAP, content_type="text/xml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_routes(service_url: str) -> str:
    return (
        '[endpoint]\ngemeentecodes = ["0363"]\n[[sender]]\nid = "{rinis}"\ngemeentecodes = ["*"]\n'
        f'[[route]]\nname = "app"\ngemeentecode = "*"\nberichttype = "*"\n'
        f'target = {{{{ type = "http", url = "{service_url}" }}}}\n'
    )


def test_http_target_gets_a_wsdl_conform_soap_request(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    with SoapService() as service:
        use_routes(db, http_routes(service.url), tmp_path)
        data = envelope()
        pk = receive(db, data)
        run(settings, db)
    message = MessageStore(db).get(pk)
    assert message.status == "Forwarded", message.status_reason
    assert service.received == [("ontvangDi01", parse_envelope(data).referentienummer)]


def test_http_target_down_then_up_is_delivered_after_retry(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    with SoapService() as service:
        service.fail_next = 1
        use_routes(db, http_routes(service.url), tmp_path)
        pk = receive(db, envelope())
        run(settings, db)
        assert MessageStore(db).get(pk).status == "Received"  # waiting for its next try
        run(settings, db)
    assert MessageStore(db).get(pk).status == "Forwarded"
    attempts = JobQueue(db).attempts(pk)
    assert [(a.outcome, a.http_status) for a in attempts] == [("retry", 503), ("ok", 200)]


def test_unreachable_http_target_is_parked_not_lost(settings: Settings, db: Database, tmp_path: Path) -> None:
    use_routes(db, http_routes(f"http://127.0.0.1:{_free_port()}/ggk"), tmp_path)
    pk = receive(db, envelope())
    run(settings, db)
    run(settings, db)
    message = MessageStore(db).get(pk)
    assert message.status == "Failed" and message.error_code == "DeliveryFailure"
    assert "cannot reach" in (message.status_reason or "")


# --- mailbox and Fo01 in ----------------------------------------------------------------------------


def test_mailbox_item_is_processed_until_fetched(settings: Settings, db: Database, tmp_path: Path) -> None:
    use_routes(db, ROUTES, tmp_path)
    pk = receive(db, envelope("0014"))
    run(settings, db)
    assert MessageStore(db).get(pk).status == "Processed"
    [item] = Mailbox(db).list(gemeentecode="0014", berichttype="WMO305")
    assert not item.gelezen and item.payload is None
    fetched = Mailbox(db).fetch(item.pk)
    assert fetched.payload == payload("0014")
    assert MessageStore(db).get(pk).status == "Forwarded"
    assert Mailbox(db).list(include_fetched=False) == []


def test_received_fo01_is_matched_to_our_message(settings: Settings, db: Database, tmp_path: Path) -> None:
    use_routes(db, ROUTES, tmp_path)
    our_ref = str(uuid.uuid4())
    ours = sent_di01(db, our_ref)
    assert MessageStore(db).get(ours).business_status == "sent"
    fo01 = build_fo01(
        zender=Systeem("VECOZO", "VECOZOWebservice"),
        ontvanger=Systeem("0363", "GGk"),
        cross_ref=our_ref,
        code="IB014",
        omschrijving="payload voldoet niet aan het XSD",
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
    ).data
    pk = receive(db, fo01)
    run(settings, db)
    message = MessageStore(db).get(pk)
    assert message.status == "Processed"
    assert "IB014" in (message.status_reason or "") and f"our message {ours}" in (message.status_reason or "")
    marked = StufStore(db).for_message(ours)
    assert marked is not None and marked.fout_code == "IB014"
    # The business layer: our Di01 is refused with the Fo01's code, linked to the Fo01 message.
    sent = MessageStore(db).get(ours)
    assert (sent.business_status, sent.business_code, sent.business_ref_pk) == ("refused", "IB014", pk)
    assert [m.pk for m in MessageStore(db).list(direction="out", status="refused")] == [ours]
    history = [(h.layer, h.event, h.to_status) for h in MessageStore(db).history(ours)]
    assert history == [
        ("ebms", "submitted", "Created"),
        ("business", "stuf-sent", "sent"),
        ("business", "stuf-refused", "refused"),
    ]


def test_non_stuf_payload_is_quarantined(settings: Settings, db: Database, tmp_path: Path) -> None:
    use_routes(db, ROUTES, tmp_path)
    pk = receive(db, b"<iets-anders/>")
    run(settings, db)
    message = MessageStore(db).get(pk)
    assert message.status == "Failed" and message.error_code is None
    assert "no payload part is a StUF-GGk message" in (message.status_reason or "")
    assert fo01s(db) == []


def test_retour_links_to_its_heenbericht(settings: Settings, db: Database, tmp_path: Path) -> None:
    """Our WMO301 (Di01) is answered by a WMO302 (Du01) whose crossRefnummer is its
    referentienummer: once the WMO302 is delivered, ours is 'answered', linked to it."""
    from tests.test_delivery_endpoint import wrap

    wmo302 = require_shared("spec", "istandaarden", "iwmo_3_2", "berichten", "WMO302.xml").read_bytes()
    info = detect(wmo302)
    entry = DEFAULT_CATALOGUE.get(info.berichttype)
    assert entry is not None
    gemeente = info.header_value(entry.gemeente_field.value)
    assert gemeente is not None
    routes = (
        f'[endpoint]\ngemeentecodes = ["{gemeente}"]\n[[sender]]\nid = "{{rinis}}"\ngemeentecodes = ["*"]\n'
        '[[route]]\nname = "all"\ngemeentecode = "*"\nberichttype = "*"\ntarget = { type = "mailbox" }\n'
    )
    use_routes(db, routes.replace("{ type", "{{ type").replace(" }\n", " }}\n"), tmp_path)
    our_ref = str(uuid.uuid4())
    ours = sent_di01(db, our_ref, "WMO301")
    data, _, _ = wrap(wmo302, cross_ref=our_ref)
    pk = receive(db, data)
    run(settings, db)
    answer = MessageStore(db).get(pk)
    assert (answer.status, answer.business_status) == ("Processed", "delivered"), answer.status_reason
    heen = MessageStore(db).get(ours)
    assert (heen.business_status, heen.business_ref_pk) == ("answered", pk)
    assert "WMO302" in (heen.business_reason or "")
    assert [m.pk for m in MessageStore(db).list(direction="out", status="answered")] == [ours]


def test_a_bv03_about_our_message_makes_it_accepted(settings: Settings, db: Database, tmp_path: Path) -> None:
    use_routes(db, ROUTES, tmp_path)
    bv03 = require_shared("spec", "stuf-ggk", "constructed", "constructed_Bv03.xml").read_bytes()
    cross_ref = parse_envelope(bv03).stuurgegevens.cross_refnummer
    assert cross_ref is not None
    ours = sent_di01(db, cross_ref)
    pk = receive(db, bv03)
    run(settings, db)
    assert MessageStore(db).get(pk).status == "Processed"
    sent = MessageStore(db).get(ours)
    assert (sent.business_status, sent.business_ref_pk) == ("accepted", pk)


# --- the history questions of a batch (docs/stuf-routing.md inbound checks 8 and 9) ---------------


def wmo302(ident: str) -> bytes:
    """A WMO302 (Toewijzing ontvangen, aanbieder -> gemeente): a retour in a Du01, whose header
    repeats the WMO301's (the gemeente as Afzender)."""
    header = WMO305.format(agb="0363", gemeente=AGB, ident=ident)
    return header.replace("wmo305", "wmo302").replace(">418<", ">415<").encode()


def du01(cross_ref: str, ident: str) -> bytes:
    return build_du01(
        zender=Systeem(AGB, "Zorgsysteem"),
        ontvanger=Systeem("0363", "GGk"),
        functie="WMO302",
        payload=wmo302(ident),
        cross_ref=cross_ref,
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    ).data


@contextmanager
def stuf_questions(db: Database) -> Iterator[list[str]]:
    """The SELECTs on stuf_message by referentienummer that run meanwhile: the history
    questions (the batch's own record looks its rows up by message)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split())
        where = text.rpartition(" WHERE ")[2]
        if text.upper().startswith("SELECT") and "FROM stuf_message" in text and "referentienummer" in where:
            seen.append(text)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)


def test_a_batch_asks_its_history_once_whatever_its_size(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    """Check 8 against messages of earlier batches and check 9 for the batch's Du01s: each asked
    in one statement for the whole batch, with the answers the one-by-one questions gave."""
    use_routes(db, ROUTES, tmp_path)
    data = envelope()
    first = receive(db, data)
    with stuf_questions(db) as one:
        run(settings, db)
    assert MessageStore(db).get(first).status == "Forwarded"

    ref = parse_envelope(data).referentienummer
    our_ref = str(uuid.uuid4())
    ours = sent_di01(db, our_ref, "WMO301")
    again = receive(db, data)  # an earlier batch delivered it: a no-op
    # The same referentienummer with another payload: IB016.
    other = receive(db, envelope(body=payload(ident="B-2"), ids=_FixedIds(ref)))
    answered = receive(db, du01(our_ref, "R-1"))
    stray = receive(db, du01(str(uuid.uuid4()), "R-2"))
    fresh = [receive(db, envelope()) for _ in range(6)]
    with stuf_questions(db) as many:
        run(settings, db)

    store = MessageStore(db)
    assert store.get(again).status == "Processed"
    assert f"message {first}" in (store.get(again).status_reason or "")
    assert store.get(other).error_code == "IB016"
    assert f"(message {first})" in (store.get(other).status_reason or "")
    assert [store.get(pk).status for pk in (answered, stray, *fresh)] == ["Forwarded"] * 8
    flags = {pk: StufStore(db).for_message(pk) for pk in (answered, stray)}
    assert [None if flag is None else flag.cross_ref_unknown for flag in flags.values()] == [False, True]
    assert store.get(ours).business_ref_pk == answered
    # One batch of one asked check 8 (by zender and referentienummer) once; a batch of ten asks
    # check 8 once and check 9 (by referentienummer alone) once.
    assert len(one) == 1 and "zender" in one[0].lower()
    assert len(many) == 2, many
    assert sorted("zender" in text.lower() for text in many) == [False, True], many


def test_batch_questions_answer_what_the_single_questions_answer(db: Database) -> None:
    """``received_first_in`` (one statement for many pairs) against ``received_earlier_in`` (one
    pair): the same answer for every pair and every asking message, including the asker being
    the first, the second or no holder of the pair, and sent messages with the same pair;
    ``sent_among`` against ``sent_in``."""
    stufs = StufStore(db)
    pairs = [(AGB, "R-none"), (AGB, "R-one"), (AGB, "R-two"), (AGB, "R-three"), ("CAK", "R-two")]
    holders = {(AGB, "R-one"): 1, (AGB, "R-two"): 2, (AGB, "R-three"): 3, ("CAK", "R-two"): 1}
    pks: list[int] = []
    for (zender, ref), count in holders.items():
        for n in range(count):
            pk = receive(db, envelope(), deliver=False)
            pks.append(pk)
            stufs.record(
                StufRecord(
                    message_pk=pk,
                    direction="in",
                    berichtcode="Di01",
                    referentienummer=ref,
                    zender=zender,
                    ontvanger="0363",
                    payload_sha256=f"{n:064d}",
                )
            )
    for ref in ("R-none", "R-out", "R-out"):  # sent messages: no earlier receipt; the last one answers
        stufs.record(
            StufRecord(
                message_pk=receive(db, envelope(), deliver=False),
                direction="out",
                berichtcode="Di01",
                referentienummer=ref,
                zender=AGB,
                ontvanger="0363",
            )
        )
    with db.session() as session:
        firsts = received_first_in(session, pairs)
        for zender, ref in pairs:
            for asker in (*pks, 0):
                one = received_earlier_in(session, zender, ref, not_message_pk=asker)
                expected = None if one is None else (one.message_pk, one.payload_sha256)
                got = next((row for row in firsts.get((zender, ref), ()) if row[0] != asker), None)
                assert got == expected, (zender, ref, asker)
        refs = ["R-none", "R-out", "R-one"]
        sent = sent_among(session, refs)
        for ref in refs:
            one_sent = sent_in(session, ref)
            assert sent.get(ref) == (None if one_sent is None else one_sent.message_pk), ref
    assert (AGB, "R-none") not in firsts and "R-one" not in sent
