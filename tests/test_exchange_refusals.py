"""Every refusal after the ebMS Acknowledgment answered with a Fo01 and its GGk code, through the
real delivery worker on SQLite and PostgreSQL; plus what an exchange's settings do to delivery
(Portaal holds in the mailbox, the envelope generation and payload release it accepts)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.exchanges import ExchangeStore
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.stuf.envelope import parse_envelope
from ggk_ebms.stuf.generations import Generation, build_envelope
from ggk_ebms.stuf.model import MessageKind, Systeem
from tests.endpoint import CPA_RM, RINIS, SERVICE, cpa_folder, party_settings
from tests.message_support import received_di01

AGB = "65656055"
# Our own WMO305/WMO307 (aanbieder -> gemeente) header-only payload, release and code as given.
BERICHT = """<?xml version="1.0" encoding="UTF-8"?>
<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/{release}/{msg}/schema">
  <w:Header>
    <w:BerichtCode>{code}</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie><w:BerichtSubversie>2</w:BerichtSubversie>
    <w:Afzender>{agb}</w:Afzender><w:Ontvanger>{gemeente}</w:Ontvanger>
    <w:BerichtIdentificatie><w:Identificatie>{ident}</w:Identificatie><w:Dagtekening>2026-11-30</w:Dagtekening></w:BerichtIdentificatie>
  </w:Header>
</w:Bericht>
"""

ROUTES = """
[endpoint]
gemeentecodes = ["0363", "0014", "0599"]
test_gemeentecodes = []

[[sender]]
id = "{rinis}"
gemeentecodes = ["*"]

[[route]]
name = "alles"
gemeentecode = "*"
berichttype = "*"
target = {{ type = "directory", path = "{base}/in" }}
"""


def bericht(
    gemeente: str = "0363", msg: str = "wmo305", code: str = "418", release: str = "3_2", ident: str = "B-1"
) -> bytes:
    return BERICHT.format(
        release=release, msg=msg, code=code, agb=AGB, gemeente=gemeente, ident=ident
    ).encode()


def envelope(
    gemeente: str = "0363",
    functie: str = "WMO305",
    body: bytes | None = None,
    generation: Generation = Generation.GGK0210,
) -> bytes:
    return build_envelope(
        generation,
        MessageKind.DI01,
        zender=Systeem(AGB, "Zorgsysteem"),
        ontvanger=Systeem(gemeente, "GGk"),
        functie=functie,
        payload=body if body is not None else bericht(gemeente),
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    ).data


def receive(db: Database, data: bytes) -> int:
    message = received_di01(datetime.now(UTC))
    part = NewPart(f"{uuid.uuid4()}@peer.test", "application/xml", data)
    stored = MessageStore(db).receive(message, [part], response=None, deliver=True, send_response_async=False)
    return stored.message_pk


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        delivery_retry_seconds=0.01,
        delivery_retry_max_seconds=0.01,
    )


@pytest.fixture
def db(settings: Settings, tmp_path: Path) -> Iterator[Database]:
    database = Database.from_settings(settings)
    database.upgrade()
    for line in import_cpa_dir(settings, database):
        assert "not imported" not in line or "sync" in line, line
    routes = ROUTES.format(rinis=RINIS, base=tmp_path)
    RouteStore(database).replace(routes, source="routes.toml", base_dir=tmp_path)
    try:
        yield database
    finally:
        database.dispose()


def outcome(settings: Settings, db: Database, data: bytes) -> tuple[str, str | None, str, Any]:
    """Receive ``data``, run the worker; (status, error code, reason, the Fo01 sent back or None)."""
    pk = receive(db, data)
    DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()
    store = MessageStore(db)
    message = store.get(pk)
    answers = [
        parse_envelope(store.parts(m.pk)[0].data)
        for m in store.list(direction="out")
        if m.action == "Fo01Bericht"
    ]
    fo01 = next(
        (a for a in answers if a.stuurgegevens.cross_refnummer == parse_envelope(data).referentienummer), None
    )
    return message.status, message.error_code, message.status_reason or "", fo01


def assert_refused(result: tuple[str, str | None, str, Any], code: str, words: str) -> None:
    status, error_code, reason, fo01 = result
    assert (status, error_code) == ("Failed", code), reason
    assert words in reason
    assert fo01 is not None, f"no Fo01 went back: {reason}"
    assert fo01.fout.code == code
    assert fo01.stuurgegevens.ontvanger.organisatie == AGB
    # the refused envelope goes back in detailsXML (StUF 03.01: Fo01/Fo03/Bv03)
    assert fo01.fout.has_details_xml


def test_accepted_message_is_forwarded(settings: Settings, db: Database, tmp_path: Path) -> None:
    status, code, reason, fo01 = outcome(settings, db, envelope())
    assert (status, code, fo01) == ("Forwarded", None, None), reason
    assert len(list((tmp_path / "in").glob("0363_WMO305_*.xml"))) == 1


def test_berichttype_mismatch_envelope_functie_vs_payload(settings: Settings, db: Database) -> None:
    # A WMO307 envelope around a WMO305 payload: IB006 (berichtcode and functie do not combine).
    assert_refused(outcome(settings, db, envelope(functie="WMO307")), "IB006", "envelope functie 'WMO307'")


def test_berichttype_mismatch_across_products(settings: Settings, db: Database) -> None:
    assert_refused(outcome(settings, db, envelope(functie="JW305")), "IB006", "payload disagrees")


def test_payload_gemeentecode_differs_from_the_envelope(settings: Settings, db: Database) -> None:
    data = envelope("0363", body=bericht("0014"))
    assert_refused(outcome(settings, db, data), "IB005", "differs from the envelope gemeentecode")


def test_gemeentecode_not_served(settings: Settings, db: Database) -> None:
    # 0518 is a CBS gemeentecode ('s-Gravenhage) that the routes file does not serve.
    assert_refused(outcome(settings, db, envelope("0518")), "IB005", "not served by this installation")


def test_gemeentecode_not_in_the_cbs_list(settings: Settings, db: Database) -> None:
    assert_refused(outcome(settings, db, envelope("9998")), "IB005", "not in the CBS gemeentecode list")


def test_served_gemeentecodes_setting_narrows_the_routes_file(settings: Settings, db: Database) -> None:
    narrowed = settings.replace(served_gemeentecodes=["0363"])
    assert_refused(outcome(narrowed, db, envelope("0014")), "IB005", "setting served_gemeentecodes")
    assert outcome(narrowed, db, envelope("0363"))[0] == "Forwarded"


def test_gemeentecode_not_served_by_the_exchange(settings: Settings, db: Database) -> None:
    ExchangeStore(db).set("WMO305", {"gemeentecodes": "0014"})
    assert_refused(outcome(settings, db, envelope("0363")), "IB005", "not served on exchange WMO305/WMO306")


def test_xsd_invalid_payload(settings: Settings, db: Database) -> None:
    # BerichtCode 999 is no WMO305 (the XSD fixes 418): StUF055, the code the GGk spec names.
    data = envelope(body=bericht(code="999"))
    assert_refused(outcome(settings, db, data), "StUF055", "is not valid against")


def test_xsd_invalid_payload_against_the_official_xsd(settings: Settings, db: Database) -> None:
    from tests.conftest import require_shared

    schemas = require_shared("spec", "istandaarden")
    with_schemas = settings.replace(payload_schemas=schemas)
    # Our header-only WMO305 lacks the Client the official XSD requires.
    assert_refused(outcome(with_schemas, db, envelope()), "StUF055", "iwmo_3_2/xsd/WMO305.xsd")


def test_envelope_generation_not_accepted(settings: Settings, db: Database) -> None:
    data = envelope(generation=Generation.GGK0310)
    assert_refused(outcome(settings, db, data), "IB001", "accepts ggk0210 only")


def test_exchange_set_to_ggk0310_accepts_it_and_refuses_ggk0210(settings: Settings, db: Database) -> None:
    ExchangeStore(db).set("WMO305", {"stuf_version": "ggk0310"})
    assert outcome(settings, db, envelope(generation=Generation.GGK0310))[0] == "Forwarded"
    assert_refused(outcome(settings, db, envelope()), "IB001", "accepts ggk0310 only")


def test_payload_release_not_accepted(settings: Settings, db: Database) -> None:
    data = envelope(body=bericht(release="2_3"))
    assert_refused(outcome(settings, db, data), "IB014", "accepts XML 3.2 only")
    ExchangeStore(db).set("WMO305", {"payload_version": "2.3"})
    assert outcome(settings, db, envelope(body=bericht(release="2_3", ident="B-2")))[0] == "Forwarded"


def test_duplicate_referentienummer_with_other_content(settings: Settings, db: Database) -> None:
    first = envelope()
    assert outcome(settings, db, first)[0] == "Forwarded"
    ref = parse_envelope(first).referentienummer
    payload_b64 = base64.b64encode(bericht()).decode()
    other = first.replace(payload_b64.encode(), base64.b64encode(bericht(ident="B-9")))
    assert parse_envelope(other).referentienummer == ref
    assert_refused(outcome(settings, db, other), "IB016", f"referentienummer {ref}")


def test_inactive_exchange(settings: Settings, db: Database) -> None:
    ExchangeStore(db).set("WMO305", {"status": "inactief"})
    assert_refused(outcome(settings, db, envelope()), "IB023", "exchange WMO305/WMO306 is inactief")


def test_portaal_exchange_holds_in_the_mailbox(settings: Settings, db: Database, tmp_path: Path) -> None:
    ExchangeStore(db).set("WMO305", {"via": "Portaal"})
    status, _, reason, fo01 = outcome(settings, db, envelope())
    assert status == "Processed" and fo01 is None, reason
    assert [item.berichttype for item in Mailbox(db).list()] == ["WMO305"]
    assert not list((tmp_path / "in").glob("*.xml"))  # the route's directory target is not used


def test_pgb_bab_is_routed_on_the_envelope(settings: Settings, db: Database, tmp_path: Path) -> None:
    data = build_envelope(
        Generation.GGK0210,
        MessageKind.DI01,
        zender=Systeem("SVB", "PGB-Portaal"),
        ontvanger=Systeem("0363", "GGk"),
        functie="PGBWMO-BAB",
        payload=b"<BudgetAfsluiting><Regel/></BudgetAfsluiting>",
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=1,
        functie_subversie=0,
    ).data
    status, _, reason, _ = outcome(settings, db, data)
    assert status == "Forwarded", reason
    assert len(list((tmp_path / "in").glob("0363_PGBWMO-BAB_*.xml"))) == 1


# --- outbound: refused before anything is sent ------------------------------------------------------

WMO301 = """<?xml version="1.0" encoding="UTF-8"?>
<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/{release}/wmo301/schema">
  <w:Header>
    <w:BerichtCode>414</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie><w:BerichtSubversie>2</w:BerichtSubversie>
    <w:Afzender>{gemeente}</w:Afzender><w:Ontvanger>{agb}</w:Ontvanger>
    <w:BerichtIdentificatie><w:Identificatie>T-1</w:Identificatie><w:Dagtekening>2026-11-30</w:Dagtekening></w:BerichtIdentificatie>
  </w:Header>
</w:Bericht>
"""
# Legacy declaratie/factuur (iWmo 2.3) and its retour: header with Gemeente/Aanbieder and the
# DeclarantFactuurNummer that pairs them (no BerichtIdentificatie).
LEGACY = """<?xml version="1.0" encoding="UTF-8"?>
<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/2_3/{msg}/schema" xmlns:b="http://www.istandaarden.nl/iwmo/2_3/basisschema/schema">
  <w:Header>
    <w:BerichtCode>{code}</w:BerichtCode><w:BerichtVersie>2</w:BerichtVersie><w:BerichtSubversie>3</w:BerichtSubversie>
    <w:Gemeente>0363</w:Gemeente><w:Aanbieder>{agb}</w:Aanbieder>
    <w:DeclaratieFactuurIdentificatie><b:DeclarantFactuurNummer>F-2018-7</b:DeclarantFactuurNummer><b:FactuurDagtekening>2018-07-10</b:FactuurDagtekening></w:DeclaratieFactuurIdentificatie>
  </w:Header>
</w:Bericht>
"""


def wmo301(gemeente: str = "0363", release: str = "3_2") -> bytes:
    return WMO301.format(gemeente=gemeente, agb=AGB, release=release).encode()


def submitter(settings: Settings, db: Database) -> Any:
    from ggk_ebms.clock import SystemClock
    from ggk_ebms.delivery.submit import Submitter

    return Submitter(settings, db, ids=UuidIdGenerator("gemeente.test"), clock=SystemClock())


def sent(db: Database) -> list[Any]:
    return MessageStore(db).list(direction="out")


@pytest.mark.parametrize(
    ("gemeente", "words"),
    [
        (
            "0518",
            "gemeentecode 0518 is not served by this installation (setting served_gemeentecodes: 0014, 0363)",
        ),
        ("9998", "gemeentecode 9998 is not in the CBS gemeentecode list"),
    ],
)
def test_outbound_gemeentecode_refused_before_sending(
    settings: Settings, db: Database, gemeente: str, words: str
) -> None:
    from ggk_ebms.errors import StufError

    ours = settings.replace(served_gemeentecodes=["0363", "0014"])
    with pytest.raises(StufError) as refused:
        submitter(ours, db).submit(wmo301(gemeente))
    assert refused.value.code == "IB005" and words in str(refused.value)
    assert sent(db) == []
    assert submitter(ours, db).submit(wmo301("0363")).stuf.functie == "WMO301"


def test_outbound_served_codes_fall_back_to_the_routes_file(settings: Settings, db: Database) -> None:
    from ggk_ebms.errors import StufError

    with pytest.raises(StufError, match="the routes file's"):
        submitter(settings, db).submit(wmo301("0518"))
    assert submitter(settings, db).submit(wmo301("0599")).stuf.stuurgegevens.zender.organisatie == "0599"


def test_outbound_exchange_rules(settings: Settings, db: Database) -> None:
    from ggk_ebms.errors import StufError

    store = ExchangeStore(db)
    store.set("WMO301", {"status": "inactief"})
    with pytest.raises(StufError, match="IB023: exchange WMO301/WMO302 is inactief"):
        submitter(settings, db).submit(wmo301())
    store.set("WMO301", {"status": "actief", "via": "Portaal"})
    with pytest.raises(StufError, match="goes via Portaal"):
        submitter(settings, db).submit(wmo301())
    assert sent(db) == []
    manual = submitter(settings, db).submit(wmo301(), manual=True)  # a manual aanlevering may
    assert manual.wrapped
    store.set("WMO301", {"via": "Digikoppeling"})
    with pytest.raises(StufError, match=r"IB014: payload is release 2\.3"):
        submitter(settings, db).submit(wmo301(release="2_3"))


def test_outbound_wraps_in_the_exchange_generation(settings: Settings, db: Database) -> None:
    from ggk_ebms import ns
    from ggk_ebms.errors import StufError

    ExchangeStore(db).set("WMO301", {"stuf_version": "ggk0310"})
    done = submitter(settings, db).submit(wmo301())
    assert done.stuf.version is not None and done.stuf.version.namespace == ns.GGK_0210_SECTOR
    # A ready envelope in the other generation is refused for this exchange.
    ready = build_envelope(
        Generation.GGK0210,
        MessageKind.DI01,
        zender=Systeem("0363", "Wmo Zaaksysteem"),
        ontvanger=Systeem(AGB, "GGk"),
        functie="WMO301",
        payload=wmo301(),
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    ).data
    with pytest.raises(StufError, match="IB001"):
        submitter(settings, db).submit(ready)


def test_legacy_wmo304_is_sendable_as_the_retour_of_a_received_wmo303(
    settings: Settings, db: Database
) -> None:
    declaratie = LEGACY.format(msg="wmo303", code="416", agb=AGB).encode()
    received = envelope("0363", functie="WMO303", body=declaratie)
    status, _, reason, _ = outcome(settings, db, received)
    assert status == "Forwarded", reason
    retour = LEGACY.format(msg="wmo304", code="417", agb=AGB).encode()
    answer = submitter(settings, db).submit(retour)
    assert answer.stuf.kind is MessageKind.DU01
    assert answer.stuf.stuurgegevens.cross_refnummer == parse_envelope(received).referentienummer


# --- messages retry of a refused message ------------------------------------------------------------


def test_retry_of_a_refused_message_needs_force_and_a_reason(settings: Settings, db: Database) -> None:
    from ggk_ebms.delivery.outcome import refusal_outcome
    from ggk_ebms.delivery.retry import retry_message
    from ggk_ebms.errors import StoreError
    from ggk_ebms.store.jobs import JobQueue

    ExchangeStore(db).set("WMO305", {"status": "inactief"})
    pk = receive(db, envelope())
    DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()
    assert MessageStore(db).get(pk).error_code == "IB023"
    assert "we refused it with Fo01 IB023" in (refusal_outcome(db, pk) or "")
    ExchangeStore(db).set("WMO305", {"status": "actief"})
    now = datetime.now(UTC)
    with pytest.raises(StoreError, match="--force --reason"):
        retry_message(db, pk, now=now)
    with pytest.raises(StoreError, match="--force --reason"):
        retry_message(db, pk, now=now, force=True, reason="  ")
    assert MessageStore(db).get(pk).status == "Failed"
    done = retry_message(db, pk, now=now, force=True, reason="zorgaanbieder vroeg erom, ticket 42")
    assert "queued for delivery again" in done
    recorded = [a.error or "" for a in JobQueue(db).attempts(pk)]
    assert any("forced" in text and "ticket 42" in text and "IB023" in text for text in recorded)
    DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()
    assert MessageStore(db).get(pk).status == "Forwarded"


def test_a_message_nobody_refused_is_retried_as_before(settings: Settings, db: Database) -> None:
    from ggk_ebms.delivery.outcome import refusal_outcome

    pk = receive(db, envelope())
    DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()
    assert refusal_outcome(db, pk) is None


def test_outbound_pgb_tkb_as_a_ready_envelope(settings: Settings, db: Database) -> None:
    # PGB payloads cannot be detected (no known format): a ready envelope is sent as it is, after
    # the exchange and gemeentecode rules.
    from ggk_ebms.errors import StufError

    def tkb(gemeente: str) -> bytes:
        return build_envelope(
            Generation.GGK0210,
            MessageKind.DI01,
            zender=Systeem(gemeente, "Wmo Zaaksysteem"),
            ontvanger=Systeem("SVB", "GGk"),
            functie="PGBWMO-TKB",
            payload=b"<Toekenning><Budget/></Toekenning>",
            ids=UuidIdGenerator(),
            tijdstip=datetime.now(UTC),
            functie_versie=1,
            functie_subversie=0,
        ).data

    done = submitter(settings, db).submit(tkb("0363"))
    assert (done.stuf.functie, done.wrapped) == ("PGBWMO-TKB", False)
    with pytest.raises(StufError, match="IB005"):
        submitter(settings, db).submit(tkb("0518"))


def test_raw_send_of_a_stuf_envelope_meets_the_same_rules(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from ggk_ebms.cli.main import cli
    from ggk_ebms.config import dump_toml

    config = tmp_path / "send.toml"
    config.write_text(dump_toml(settings.replace(served_gemeentecodes=["0363"])), encoding="utf-8")

    def send(gemeente: str) -> Any:
        envelope_file = tmp_path / f"di01-{gemeente}.xml"
        envelope_file.write_bytes(
            build_envelope(
                Generation.GGK0210,
                MessageKind.DI01,
                zender=Systeem(gemeente, "Wmo Zaaksysteem"),
                ontvanger=Systeem(AGB, "GGk"),
                functie="WMO301",
                payload=wmo301(gemeente),
                ids=UuidIdGenerator(),
                tijdstip=datetime.now(UTC),
                functie_versie=3,
                functie_subversie=2,
            ).data
        )
        args = ["--config", str(config), "send", "--cpa", CPA_RM, "--service", SERVICE]
        args += ["--action", "envelopHeenbericht-ggk_Di01", str(envelope_file)]
        return CliRunner().invoke(cli, args)

    refused = send("0518")
    assert refused.exit_code != 0 and "IB005: gemeentecode 0518 is not served" in refused.output
    assert sent(db) == []
    accepted = send("0363")
    assert accepted.exit_code == 0, accepted.output
    assert len(sent(db)) == 1


JW32X = """<?xml version="1.0" encoding="UTF-8"?>
<j:Bericht xmlns:j="http://www.istandaarden.nl/ijw/2_3/{msg}/schema">
  <j:Header>
    <j:BerichtCode>{code}</j:BerichtCode><j:BerichtVersie>2</j:BerichtVersie><j:BerichtSubversie>3</j:BerichtSubversie>
    <j:Afzender>{agb}</j:Afzender><j:Ontvanger>0363</j:Ontvanger>
    <j:BerichtIdentificatie><j:Identificatie>DBC-1</j:Identificatie><j:Dagtekening>2026-11-30</j:Dagtekening></j:BerichtIdentificatie>
  </j:Header>
</j:Bericht>
"""


def test_jw321_in_and_jw322_back(settings: Settings, db: Database) -> None:
    # Declaratie Jeugd met DBC/Basis-GGZ: no BerichtCode or XSD is known here, so the code is not
    # checked (docs/exchanges.md); the pair still works both ways.
    heen = envelope("0363", functie="JW321", body=JW32X.format(msg="jw321", code="900", agb=AGB).encode())
    status, _, reason, _ = outcome(settings, db, heen)
    assert status == "Forwarded", reason
    retour = JW32X.format(msg="jw322", code="901", agb=AGB).encode()
    answer = submitter(settings, db).submit(retour)
    assert (answer.stuf.kind, answer.stuf.functie) == (MessageKind.DU01, "JW322")
    assert answer.stuf.stuurgegevens.cross_refnummer == parse_envelope(heen).referentienummer


def test_a_sent_message_the_partner_refused_counts_as_refused(settings: Settings, db: Database) -> None:
    from ggk_ebms.delivery.outcome import refusal_outcome
    from ggk_ebms.store.stuf import StufStore

    done = submitter(settings, db).submit(wmo301())
    assert refusal_outcome(db, done.message.pk) is None
    StufStore(db).record_fout(done.message.pk, "IB014", "Payload voldoet niet aan de XSD")
    assert refusal_outcome(db, done.message.pk) == (
        "the partner refused it with Fo01 IB014 (Payload voldoet niet aan de XSD)"
    )
