"""CBS Monitor Sociaal Domein end to end between two real endpoints on loopback: the gemeente
delivers CSV files (single and in a ZIP) and the opt-in to a second instance playing RINIS/CBS,
a bad file name is refused before anything is sent, RINIS sends a PDF report back that lands in
the gemeente's mailbox linked to its delivery, and the notifications reach a local SMTP server."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import uuid
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ggk_ebms.cbs import envelope as cbs_envelope
from ggk_ebms.cbs.toestemming import COLUMNS, Gebruiker, Toestemming
from ggk_ebms.clock import FixedClock, SystemClock, UuidIdGenerator
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.services import cbs as service
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.stuf.envelope import parse_envelope
from ggk_ebms.stuf.model import MessageKind, StufMessage
from tests.outbound_support import eventually, free_port, make_cpa, side_settings, started, status_of

pytestmark = pytest.mark.slow

DU01 = "envelopRetourbericht-ggk_Du01"
TIMEOUT = 90.0
# CSV contents as a gemeente exports them; the BSN column is why contents are never logged.
BASIS = b"Aanmaakdatum;Gemeentecode;BSN;Productcategorie\r\n20260801;0363;123456782;04\r\n"
KOSTEN = b"Gemeentecode;Kosten\r\n0363;123456\r\n"
JW = b"Gemeentecode;KostenJw\r\n0363;7890\r\n"


class Inbox:
    """An SMTP handler (aiosmtpd) keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"

    def subjects(self) -> list[str]:
        with self.lock:
            return [line for m in self.messages for line in m.splitlines() if line.startswith("Subject:")]


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _received(database: Any) -> list[StufMessage]:
    store = MessageStore(database)
    found = store.list(direction="in", kind="business", limit=1000)
    return [parse_envelope(store.parts(m.pk)[0].data) for m in found]


async def test_cbs_deliveries_report_opt_in_and_mail(tmp_path: Path, db_url: str, smtp: Any) -> None:
    inbox, smtp_port = smtp
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, version="cbs-1")
    gemeente = side_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa,
        g_port,
        cbs_cpa_id=cpa_id,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        notify_to=["monitor@gemeente.test"],
    )
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    zip_path = tmp_path / "MSD.zip"
    zip_path.write_bytes(_zip({"WmoKosten_GM0363_2026H1.csv": KOSTEN, "JwKosten_GM0363_2026H1.csv": JW}))
    csv_path = tmp_path / "WmoBasis_GM0363_2026H1.csv"
    csv_path.write_bytes(BASIS)
    bad_path = tmp_path / "Wmo basis 2026.csv"
    bad_path.write_bytes(BASIS)

    async with started(rinis) as counterpart, started(gemeente) as us:
        ctx = service.CbsContext(
            gemeente, us.database, SystemClock(), UuidIdGenerator("gemeente.test"), "test"
        )

        # A bad name: refused naming the rule, nothing sent.
        refused = await asyncio.to_thread(service.aanleveren, ctx, service.read_uploads([csv_path, bad_path]))
        assert [r.accepted for r in refused] == [False, False]
        assert "CBS-N2" in refused[1].detail and "geweigerd" in refused[0].detail
        assert MessageStore(us.database).list(direction="out", kind="business") == []

        # One CSV and a ZIP of two: three envelopes, one referentienummer each.
        results = await asyncio.to_thread(service.aanleveren, ctx, service.read_uploads([csv_path, zip_path]))
        assert [r.name for r in results] == [
            "WmoBasis_GM0363_2026H1.csv",
            "WmoKosten_GM0363_2026H1.csv",
            "JwKosten_GM0363_2026H1.csv",
        ]
        refs = [r.referentienummer for r in results]
        assert all(r.accepted for r in results) and len(set(refs)) == 3
        await eventually(
            lambda: all(d.message_status == "Delivered" for d in service.deliveries(ctx)) or None,
            timeout=TIMEOUT,
            what="three CBS files Delivered",
        )

        # RINIS received each CSV unchanged, in a Di01 to CBS carrying referentienummer and name.
        arrived = {m.payload.bestandsnaam: m for m in _received(counterpart.database) if m.payload}
        expected = {
            f"{refs[0]}_WmoBasis_GM0363_2026H1.csv": BASIS,
            f"{refs[1]}_WmoKosten_GM0363_2026H1.csv": KOSTEN,
            f"{refs[2]}_JwKosten_GM0363_2026H1.csv": JW,
        }
        assert set(arrived) == set(expected)
        for name, content in expected.items():
            stuf = arrived[name]
            assert stuf.kind is MessageKind.DI01 and stuf.functie == "CBSMSD"
            assert stuf.stuurgegevens.zender.organisatie == "0363"
            assert stuf.stuurgegevens.ontvanger.organisatie == "CBS"
            assert stuf.payload is not None and stuf.payload.data == content

        # CBS answers the first file with a PDF report, relayed by RINIS as a Du01.
        first = arrived[f"{refs[0]}_WmoBasis_GM0363_2026H1.csv"]
        report = cbs_envelope.build_report(
            gemeentecode="0363",
            functie=gemeente.cbs_rapport_functie,
            cross_ref=first.referentienummer,
            referentienummer=refs[0] or "",
            filename="Technisch_WmoBasis_GM0363_2026H1.pdf",
            pdf=b"%PDF-1.4\n% technisch rapport\n%%EOF\n",
            ids=UuidIdGenerator("rinis.test"),
            moment=datetime.now(UTC),
        )
        sent = await asyncio.to_thread(
            submit_message,
            rinis,
            counterpart.database,
            cpa_id=cpa_id,
            service="ggk:berichtenverkeer:1.0",
            action=DU01,
            parts=[NewPart(f"{uuid.uuid4()}@rinis.test", "application/xml", report.data)],
            ids=UuidIdGenerator("rinis.test"),
            clock=SystemClock(),
        )
        await eventually(
            lambda: status_of(counterpart.database, sent.pk) == "Delivered" or None,
            timeout=TIMEOUT,
            what="report Delivered to the gemeente",
        )
        delivery = DeliveryWorker(gemeente, us.database, clock=SystemClock(), ids=UuidIdGenerator())
        await eventually(
            lambda: delivery.run_once() >= 0 and (service.reports(ctx) or None),
            timeout=TIMEOUT,
            what="the report in the mailbox",
        )
        (kept,) = service.reports(ctx)
        by_ref = {d.referentienummer: d for d in service.deliveries(ctx)}
        assert kept.delivery_pk == by_ref[refs[0]].pk and by_ref[refs[0]].reports == 1
        item = Mailbox(us.database).fetch(kept.mailbox_item_pk)
        assert item.berichttype == "CBS rapport" and item.filename == "Technisch_WmoBasis_GM0363_2026H1.pdf"
        assert item.payload is not None and item.payload.startswith(b"%PDF")

        # The opt-in CSV for the current period and a corrected earlier one.
        opt_in = await asyncio.to_thread(
            service.toestemming,
            ctx,
            gemeentecode="0363",
            gebruiker=Gebruiker("Gemeente Amsterdam", "A. Ambtenaar", "monitor@gemeente.test", "0201234567"),
            rows=[
                Toestemming("2026H1", "WMO basis + kosten + facultatief", "akkoord", date(2026, 8, 3)),
                Toestemming("2025H2", "Kosten JW", "akkoord", date(2026, 8, 3)),
            ],
        )
        await eventually(
            lambda: (
                any(
                    m.payload is not None
                    and m.payload.bestandsnaam == f"{opt_in.referentienummer}_{opt_in.name}"
                    for m in _received(counterpart.database)
                )
                or None
            ),
            timeout=TIMEOUT,
            what="the opt-in at RINIS",
        )
        (consent,) = [m for m in _received(counterpart.database) if m.functie == "CBSMSDToestemming"]
        assert consent.payload is not None
        lines = list(csv.reader(io.StringIO(consent.payload.data.decode()), delimiter=";"))
        assert tuple(lines[0]) == COLUMNS and len(lines) == 3
        assert opt_in.name == "Toestemming_GM0363_2026H1.csv"

        # Reminders on a later date: the 2026H2 delivery period started on 1 January 2027 and
        # its opt-in is asked from 29 January; neither happened. Sent once per interval.
        later = service.CbsContext(gemeente, us.database, FixedClock(datetime(2027, 1, 30, 9, tzinfo=UTC)))
        sent_now = await asyncio.to_thread(service.remind, later)
        assert sent_now == ["Herinnering: CBS-levering 2026H2", "Herinnering: CBS-toestemming 2026H2"]
        assert await asyncio.to_thread(service.remind, later) == []

    subjects = inbox.subjects()
    assert any("CBS-rapport ontvangen: Technisch_WmoBasis_GM0363_2026H1.pdf" in s for s in subjects)
    assert sum("Herinnering" in s for s in subjects) == 2
    assert not [m for m in inbox.messages if "123456782" in m]  # no CSV content by e-mail
