"""Delivery: retour round trip between two real endpoints on loopback, every hop over ebMS.

RINIS (the counterpart, its own endpoint and send worker) sends a JW305 in a Di01 to the gemeente;
the gemeente's delivery worker routes it to a directory target; the domain application answers
with a JW306 through `submit`; the gemeente's send worker delivers the Du01 to RINIS, which
receives it with crossRefnummer = the 305's referentienummer.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.delivery.submit import Submitter
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.stuf.envelope import build_di01, parse_envelope
from ggk_ebms.stuf.model import MessageKind, Systeem
from tests.conftest import require_shared
from tests.outbound_support import eventually, free_port, make_cpa, side_settings, started, status_of

pytestmark = pytest.mark.slow

SERVICE = "ggk:berichtenverkeer:1.0"
DI01 = "envelopHeenbericht-ggk_Di01"
DU01 = "envelopRetourbericht-ggk_Du01"
AANBIEDER = "65656055"  # the AGB code in the JW305/JW306 examples


def _routes(folder: Path) -> str:
    return f"""
[endpoint]
gemeentecodes = ["0363"]
[[sender]]
id = "00000099000001000000"
gemeentecodes = ["*"]
[[route]]
name = "jeugd-0363"
gemeentecode = "0363"
berichttype = "*"
target = {{ type = "directory", path = "{folder}", write_envelope = true }}
"""


async def test_305_in_306_back_over_ebms(tmp_path: Path) -> None:
    berichten = require_shared("spec", "istandaarden", "ijw_3_2", "berichten")
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, version="retour-1")
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    inbox = tmp_path / "inbox"
    di01 = build_di01(
        zender=Systeem(AANBIEDER, "VECOZO-koppeling"),
        ontvanger=Systeem("0363", "GGk"),
        functie="JW305",
        payload=(berichten / "JW305.xml").read_bytes(),
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    )
    async with started(rinis) as counterpart, started(gemeente) as us:
        RouteStore(us.database).replace(_routes(inbox), source="routes.toml", base_dir=None)

        # RINIS -> gemeente: its own send worker delivers the Di01 over mutual TLS.
        sent = await asyncio.to_thread(
            submit_message,
            rinis,
            counterpart.database,
            cpa_id=cpa_id,
            service=SERVICE,
            action=DI01,
            parts=[NewPart(f"{uuid.uuid4()}@rinis.test", "application/xml", di01.data)],
            ids=UuidIdGenerator("rinis.test"),
            clock=SystemClock(),
        )
        await eventually(
            lambda: status_of(counterpart.database, sent.pk) == "Delivered" or None, what="Di01 Delivered"
        )

        # The gemeente routes it to the domain application's folder.
        delivery = DeliveryWorker(gemeente, us.database, clock=SystemClock(), ids=UuidIdGenerator())
        await eventually(
            lambda: delivery.run_once() >= 0 and (list(inbox.glob("0363_JW305_*.xml")) or None),
            what="JW305 in the inbox",
        )
        assert (inbox / f"0363_JW305_{di01.referentienummer}.xml").read_bytes() == (
            berichten / "JW305.xml"
        ).read_bytes()

        # The domain application answers with a JW306; the gemeente wraps and sends a Du01.
        submitter = Submitter(
            gemeente, us.database, ids=UuidIdGenerator("gemeente.test"), clock=SystemClock()
        )
        answer = await asyncio.to_thread(submitter.submit, (berichten / "JW306.xml").read_bytes())
        await eventually(
            lambda: status_of(us.database, answer.message.pk) == "Delivered" or None, what="Du01 Delivered"
        )

        # RINIS received it, with the right crossRefnummer.
        theirs = MessageStore(counterpart.database)
        received = theirs.find("in", answer.message.message_id)
        assert received is not None
        assert received.action == DU01
        du01 = parse_envelope(theirs.parts(received.pk)[0].data)
    assert du01.kind is MessageKind.DU01
    assert du01.stuurgegevens.cross_refnummer == di01.referentienummer
    assert du01.stuurgegevens.zender.organisatie == "0363"
    assert du01.stuurgegevens.functie == "JW306"
