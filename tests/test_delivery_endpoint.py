"""Delivery end to end: the independent peer sends StUF-wrapped iStandaarden examples to the
gemeente endpoint over ebMS (mutual TLS on loopback), the delivery worker unwraps, checks and
routes them to directory targets; faulty payloads get a Fo01 StUF055 queued back.

The envelopes are built here with the stuf builders, as the counterpart (RINIS, for an aanbieder
or CAK) would: zender = the partner, ontvanger = the gemeente. Berichttypes a gemeente *sends*
(301, 306, 319, 401 ...) do not arrive at a gemeente endpoint; they are covered by the submit
tests (test_delivery_submit.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms import xml
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.submit import Submitter
from ggk_ebms.delivery.unwrap import Verdict, unwrap
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.errors import StufError
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Party
from ggk_ebms.payloads.detect import detect
from ggk_ebms.payloads.validate import PayloadSchemas
from ggk_ebms.routing.load import parse_routes
from ggk_ebms.store.exchanges import ExchangeStore
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import StufStore
from ggk_ebms.stuf.envelope import build_di01, build_du01, parse_envelope
from ggk_ebms.stuf.model import MessageKind, Systeem
from tests import peer
from tests.conftest import require_shared
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url

GEMEENTECODES = ("0363", "0384", "0861", "1916")
DI01_ACTION = "envelopHeenbericht-ggk_Di01"
DU01_ACTION = "envelopRetourbericht-ggk_Du01"


def routes_toml(folder: Path) -> str:
    rows = [
        "[endpoint]",
        f"gemeentecodes = [{', '.join(repr(c) for c in GEMEENTECODES)}]",
        "[[sender]]",
        f'id = "{RINIS}"',
        'gemeentecodes = ["*"]',
    ]
    for code in GEMEENTECODES:
        rows += [
            "[[route]]",
            f'name = "gemeente-{code}"',
            f'gemeentecode = "{code}"',
            'berichttype = "*"',
            f'target = {{ type = "directory", path = "{folder / code}", write_envelope = true }}',
        ]
    return "\n".join(rows) + "\n"


def examples() -> list[Path]:
    root = require_shared("spec", "istandaarden")
    return sorted(root.glob("*/berichten/*.xml"))


def wrap(payload: bytes, *, cross_ref: str | None = None) -> tuple[bytes, str, str]:
    """(envelope, action, referentienummer) as the counterpart builds it for the gemeente."""
    info = detect(payload)
    entry = DEFAULT_CATALOGUE.get(info.berichttype)
    assert entry is not None
    gemeente = info.header_value(entry.gemeente_field.value)
    assert gemeente is not None
    partner_party = entry.receiver if entry.sender is Party.GEMEENTE else entry.sender
    partner = "CAK" if partner_party is Party.CAK else (info.header_value(entry.other_field or "") or "")
    common = {
        "zender": Systeem(partner, "VECOZO-koppeling"),
        "ontvanger": Systeem(gemeente, "GGk"),
        "functie": entry.berichttype,
        "payload": payload,
        "ids": UuidIdGenerator(),
        "tijdstip": datetime.now(UTC),
        "functie_versie": int(info.bericht_versie or 0),
        "functie_subversie": int(info.bericht_subversie or 0),
    }
    if entry.envelope is MessageKind.DU01:
        built = build_du01(cross_ref=cross_ref or str(uuid.uuid4()), **common)  # type: ignore[arg-type]
        return built.data, DU01_ACTION, built.referentienummer
    built = build_di01(**common)  # type: ignore[arg-type]
    return built.data, DI01_ACTION, built.referentienummer


async def send(endpoint_url: str, envelope: bytes, action: str) -> peer.Header:
    header = peer.Header(CPA_RM, RINIS, GEMEENTE, SERVICE, action, from_role="GGk", to_role="Gemeente")
    cid = f"{uuid.uuid4()}@peer.test"
    soap = peer.envelope(header, content_ids=(cid,))
    content_type, body = peer.multipart(soap, [(cid, "application/xml", envelope)])
    answer = await peer.post(endpoint_url, body, content_type=content_type)
    assert answer.status in (200, 204), answer.text
    return header


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    schemas = require_shared("spec", "istandaarden")
    return party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        payload_schemas=schemas,
        delivery_retry_seconds=0.01,
        delivery_retry_max_seconds=0.01,
    )


def _receiver_side(path: Path) -> bool:
    entry = DEFAULT_CATALOGUE.get(detect(path.read_bytes()).berichttype)
    assert entry is not None, path
    return entry.sender is not Party.GEMEENTE


FAULTY = {("ijw_3_2", "JW315.xml"), ("ijw_3_2", "JW318.xml")}


async def test_every_received_example_lands_in_its_gemeente_folder(
    settings: Settings, tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    sent: dict[str, tuple[Path, str]] = {}
    wanted = [
        path
        for path in examples()
        if (path.parent.parent.name, path.name) not in FAULTY and _receiver_side(path)
    ]
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(routes_toml(inbox), source="routes.toml", base_dir=tmp_path)
        worker = DeliveryWorker(settings, endpoint.database, clock=SystemClock(), ids=UuidIdGenerator())
        # Each exchange accepts one payload release (3.2 by default): the 2.3 examples go in a
        # second round, after their exchanges are set to XML 2.3 as the GGk routing page would.
        for release in ("current", "2.3"):
            for path in wanted:
                info = detect(path.read_bytes())
                if (info.release == "2.3") != (release == "2.3"):
                    continue
                if release == "2.3":
                    ExchangeStore(endpoint.database).set(info.berichttype, {"payload_version": "2.3"})
                envelope, action, ref = wrap(path.read_bytes())
                header = await send(url(endpoint), envelope, action)
                sent[header.message_id] = (path, ref)
            await asyncio.to_thread(worker.run_once)
        store = MessageStore(endpoint.database)
        received = {m.message_id: m for m in store.list(direction="in", kind="business", limit=500)}
    assert len(sent) >= 20  # A->G and CAK->G messages of iWmo/iJw 3.2, 2.3 and iEb 1.0
    for message_id, (path, ref) in sent.items():
        message = received[message_id]
        assert message.status == "Forwarded", (path, message.status_reason)
        info = detect(path.read_bytes())
        entry = DEFAULT_CATALOGUE.get(info.berichttype)
        assert entry is not None
        gemeente = info.header_value(entry.gemeente_field.value)
        written = inbox / str(gemeente) / f"{gemeente}_{info.berichttype}_{ref}.xml"
        assert written.read_bytes() == path.read_bytes().removeprefix(b"\xef\xbb\xbf"), path
        assert (written.parent / f"{gemeente}_{info.berichttype}_{ref}.json").is_file()
        assert parse_envelope(
            (written.parent / f"{gemeente}_{info.berichttype}_{ref}.envelope.xml").read_bytes()
        )


@pytest.mark.parametrize("name", ["JW315.xml", "JW318.xml"])
async def test_known_faulty_examples_are_refused_with_fo01_stuf055(
    settings: Settings, tmp_path: Path, name: str
) -> None:
    payload = (require_shared("spec", "istandaarden", "ijw_3_2", "berichten") / name).read_bytes()
    envelope, action, ref = wrap(payload)
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(
            routes_toml(tmp_path / "in"), source="routes.toml", base_dir=None
        )
        header = await send(url(endpoint), envelope, action)
        await asyncio.to_thread(
            DeliveryWorker(settings, endpoint.database, clock=SystemClock(), ids=UuidIdGenerator()).run_once
        )
        store = MessageStore(endpoint.database)
        message = store.find("in", header.message_id)
        assert message is not None
        fo01s = [m for m in store.list(direction="out", kind="business") if m.action == "Fo01Bericht"]
        assert len(fo01s) == 1
        fo01 = parse_envelope(store.parts(fo01s[0].pk)[0].data)
    assert message.status == "Failed"
    assert message.error_code == "StUF055"
    assert f"{name[:-4]}.xsd" in (message.status_reason or "")
    assert "Fo01 StUF055 queued" in (message.status_reason or "")
    assert fo01.fout is not None and fo01.fout.code == "StUF055"
    assert fo01.stuurgegevens.cross_refnummer == ref
    assert fo01.stuurgegevens.ontvanger.organisatie == detect(payload).header_value("Afzender")
    assert fo01.fout.has_details_xml
    assert not list((tmp_path / "in").rglob("*.xml"))  # nothing delivered


async def test_retour_round_trip_305_to_306(settings: Settings, tmp_path: Path) -> None:
    """The counterpart sends JW305; the domain application answers JW306 through submit; the Du01
    queued back carries crossRefnummer = the 305's referentienummer, on the CPA it came in on."""
    berichten = require_shared("spec", "istandaarden", "ijw_3_2", "berichten")
    envelope, action, ref = wrap((berichten / "JW305.xml").read_bytes())
    async with running(settings) as endpoint:
        RouteStore(endpoint.database).replace(
            routes_toml(tmp_path / "in"), source="routes.toml", base_dir=None
        )
        await send(url(endpoint), envelope, action)
        await asyncio.to_thread(
            DeliveryWorker(settings, endpoint.database, clock=SystemClock(), ids=UuidIdGenerator()).run_once
        )
        delivered = list((tmp_path / "in" / "0363").glob("0363_JW305_*.xml"))
        assert [p.name for p in delivered if not p.name.endswith(".envelope.xml")] == [
            f"0363_JW305_{ref}.xml"
        ]
        submitter = Submitter(settings, endpoint.database, ids=UuidIdGenerator(), clock=_Clock())
        submitted = await asyncio.to_thread(submitter.submit, (berichten / "JW306.xml").read_bytes())
        stored_out = StufStore(endpoint.database).for_message(submitted.message.pk)
    du01 = submitted.stuf
    assert submitted.wrapped
    assert du01.kind is MessageKind.DU01
    assert du01.stuurgegevens.cross_refnummer == ref
    assert du01.stuurgegevens.zender.organisatie == "0363"
    assert du01.stuurgegevens.ontvanger == Systeem("65656055", "GGk")
    assert submitted.message.cpa_id == CPA_RM
    assert submitted.message.action == DU01_ACTION
    assert submitted.message.status == "Created"  # queued for the send worker
    assert stored_out is not None and stored_out.cross_refnummer == ref


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_every_sent_example_is_wrapped_and_queued_after_its_heen_came_in(
    settings: Settings, tmp_path: Path
) -> None:
    """Every example a gemeente sends (heen 301/319/401/403, retours 306/308/316/318, antwoord 325,
    legacy 304 in release 2.3) is wrapped and queued; a retour finds the heen example received
    first. Each release round sets the exchanges to that XML version."""
    wanted = [p for p in examples() if (p.parent.parent.name, p.name) not in FAULTY]
    served = settings.replace(served_gemeentecodes=list(GEMEENTECODES))
    queued: dict[str, str] = {}
    skipped: list[str] = []
    async with running(served) as endpoint:
        RouteStore(endpoint.database).replace(
            routes_toml(tmp_path / "in"), source="routes.toml", base_dir=tmp_path
        )
        worker = DeliveryWorker(served, endpoint.database, clock=SystemClock(), ids=UuidIdGenerator())
        for release in ("2.3", "3.2", "1.0"):
            ours = [p for p in wanted if detect(p.read_bytes()).release == release]
            for path in ours:
                info = detect(path.read_bytes())
                ExchangeStore(endpoint.database).set(info.berichttype, {"payload_version": release})
                if _receiver_side(path):
                    envelope, action, _ = wrap(path.read_bytes())
                    await send(url(endpoint), envelope, action)
            await asyncio.to_thread(worker.run_once)
            submitter = Submitter(served, endpoint.database, ids=UuidIdGenerator(), clock=_Clock())
            for path in ours:
                if _receiver_side(path):
                    continue
                label = f"{path.parent.parent.name}/{path.name}"
                try:
                    done = await asyncio.to_thread(submitter.submit, path.read_bytes())
                except StufError as exc:
                    # A retour whose heen example is not in the shared set cannot be paired.
                    if exc.code != "StUF043":
                        raise
                    skipped.append(label)
                    continue
                queued[label] = done.stuf.kind.value
    heen = {k for k, v in queued.items() if v == "Di01"}
    retour = {k for k, v in queued.items() if v == "Du01"}
    assert {"iwmo_3_2/WMO301.xml", "ijw_3_2/JW319.xml", "ieb_1_0/WMO401.xml", "ieb_1_0/WMO403.xml"} <= heen
    assert {"ijw_3_2/JW306.xml", "ijw_2_3/JW304.xml"} <= retour, (queued, skipped)  # legacy 304 too
    assert len(queued) >= 12, (queued, skipped)


class _NothingEarlier:
    """A store that has seen no StUF message before (docs/stuf-routing.md inbound checks 8 and 9)."""

    def earlier_payload(self, zender: str, referentienummer: str) -> tuple[int, str | None] | None:
        return None

    def we_sent(self, referentienummer: str) -> bool:
        return False


def test_payload_is_parsed_once_for_detection_and_xsd_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With payload schemas, steps 12 (detect) and 13 (XSD) share one parse of the payload."""
    payload = next(
        p.read_bytes()
        for p in examples()
        if p.parent.parent.name == "iwmo_3_2" and _receiver_side(p)  # the exchanges' default release
    )
    envelope, _, _ = wrap(payload)
    table = parse_routes(routes_toml(tmp_path / "in"), base_dir=tmp_path)
    schemas = PayloadSchemas(require_shared("spec", "istandaarden"))
    parsed: list[bytes] = []
    real_parse_with, real_parse_target = xml._parse_with, xml._parse_target

    def parse_with(parser: Any, data: bytes, **kwargs: Any) -> Any:
        parsed.append(data)
        return real_parse_with(parser, data, **kwargs)

    def parse_target(data: bytes, target: Any, what: str) -> Any:
        parsed.append(data)
        return real_parse_target(data, target, what)

    monkeypatch.setattr(xml, "_parse_with", parse_with)
    monkeypatch.setattr(xml, "_parse_target", parse_target)
    decision = unwrap([envelope], sender_ids=[RINIS], table=table, history=_NothingEarlier(), schemas=schemas)
    assert decision.verdict is Verdict.DELIVER, decision.reason
    assert parsed.count(payload) == 1
    assert parsed.count(envelope) == 1
