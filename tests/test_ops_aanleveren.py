"""Aanleveren through the service on SQLite and PostgreSQL: every batch status, the verslag of a
mixed ZIP, file-level refusals, zip bombs, the same ZIP twice."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from ggk_ebms.aanlevering import checks
from ggk_ebms.services import aanleveren as service
from ggk_ebms.services.aanleveren import Upload, UploadRefused
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.stuf.envelope import MAX_SEND_BYTES, parse_envelope
from tests.ops_support import Ops, make_zip, ops_context, ops_settings, wmo301


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path)


def _upload(ops: Ops, name: str, data: bytes) -> Upload:
    return Upload(name, ops.file(name, data))


def test_statuses_ontvangen_bezig_afgeleverd(ops: Ops) -> None:
    upload = _upload(ops, "0363_WMO301_20261201.zip", make_zip([("a.xml", wmo301(ident="A-1"))]))
    received = service.ontvang(ops.ctx, upload)
    assert received.status == "Ontvangen"
    assert service.verslag(ops.ctx, received.batch).status == "Ontvangen"

    # Bezig is visible while files are processed: look at the batch from inside the submitter.
    seen: list[tuple[str, object]] = []
    original = service.Submitter.submit

    def spy(
        self: service.Submitter, data: bytes, *, cpa_id: str | None = None, manual: bool = False
    ) -> object:
        current = service.verslag(ops.ctx, received.batch)
        seen.append((current.status, current.verwacht_einde))
        ops.clock.advance(timedelta(hours=1, minutes=2, seconds=3))
        return original(self, data, cpa_id=cpa_id, manual=manual)

    service.Submitter.submit = spy  # type: ignore[assignment,method-assign]
    try:
        done = service.verwerk(ops.ctx, received.batch, upload)
    finally:
        service.Submitter.submit = original  # type: ignore[method-assign]
    assert seen and seen[0][0] == "Bezig" and seen[0][1] is not None
    assert done.status == "Afgeleverd"
    assert (done.aantal_aangeleverd, done.aantal_correct, done.aantal_incorrect) == (1, 1, 0)
    assert done.verwerkingsduur == "01:02:03"  # the clock moved while the file was processed
    [file] = done.bestanden
    assert file.uitkomst == "correct" and file.message_pk is not None
    sent = MessageStore(ops.ctx.database).get(file.message_pk)
    assert sent.direction == "out" and sent.status == "Created"
    stuf = parse_envelope(MessageStore(ops.ctx.database).parts(sent.pk)[0].data)
    assert stuf.stuurgegevens.referentienummer == file.referentienummer
    assert stuf.stuurgegevens.zender.organisatie == "0363"


def test_a_single_xml_is_a_batch_of_one(ops: Ops) -> None:
    done = service.aanleveren(ops.ctx, _upload(ops, "toewijzing.XML", wmo301(ident="X-1")))
    assert done.status == "Afgeleverd" and done.aantal_correct == 1


def test_verslag_of_a_mixed_zip(ops: Ops) -> None:
    too_big = b"<a>" + b"x" * (MAX_SEND_BYTES + 10) + b"</a>"
    data = make_zip(
        [
            ("goed.xml", wmo301(ident="G-1")),
            ("ongeldig.xml", wmo301(ident="O-1", code="999")),
            ("andere-gemeente.xml", wmo301(gemeente="0014", ident="N-1")),
            ("foto.png", b"\x89PNG\r\n\x1a\n"),
            ("geen-xml.xml", b"\x89PNG\r\n\x1a\n not xml"),
            ("groot.xml", too_big),
            ("map/", b""),
            ("map/binnen.xml", wmo301(ident="M-1")),
            ("verkeerd-type.xml", wmo301(ident="V-1").replace(b"wmo301", b"wmo305")),
        ]
    )
    verslag = service.aanleveren(ops.ctx, _upload(ops, "gemengd.zip", data))
    assert verslag.status == "Afgekeurd"
    assert verslag.bestandsnaam == "gemengd.zip" and verslag.verzender == "medewerker"
    assert (verslag.aantal_aangeleverd, verslag.aantal_correct, verslag.aantal_incorrect) == (9, 1, 8)
    fouten = {f.bestand: f for f in verslag.fouten}
    assert fouten["ongeldig.xml"].foutomschrijving == checks.XSD
    assert fouten["ongeldig.xml"].fout_detail is not None
    assert fouten["ongeldig.xml"].fout_detail.startswith("Bericht voldoet niet aan de XSD:")
    assert fouten["andere-gemeente.xml"].foutomschrijving == "Organisatie is niet geautoriseerd"
    assert "Organisatie 0014" in (fouten["andere-gemeente.xml"].fout_detail or "")
    assert fouten["foto.png"].foutomschrijving == checks.GEEN_XML
    assert fouten["geen-xml.xml"].foutomschrijving == checks.XSD
    assert fouten["groot.xml"].foutomschrijving == "Bericht is te groot"
    assert fouten["map/"].foutomschrijving == checks.MAP
    assert fouten["map/binnen.xml"].foutomschrijving == checks.MAP
    # WMO305 is sent by an aanbieder: a gemeente cannot submit it.
    assert fouten["verkeerd-type.xml"].foutomschrijving == "Berichttype wordt niet ondersteund"
    [correct] = [f for f in verslag.bestanden if f.uitkomst == "correct"]
    assert correct.bestand == "goed.xml"
    # The verslag is kept: read back it is the same.
    assert service.verslag(ops.ctx, verslag.batch) == verslag


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("berichten.rar", b"Rar!", "alleen .zip"),
        ("kapot.zip", b"PK\x03\x04 this is no zip", "geen geldig ZIP"),
    ],
)
def test_file_level_refusals_leave_no_batch(ops: Ops, name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UploadRefused, match=reason):
        service.aanleveren(ops.ctx, _upload(ops, name, data))
    assert service.list_batches(ops.ctx, service.BatchQuery()) == ()
    [event] = list_audit(ops.ctx, AuditQuery()).events
    assert event.action == "aanlevering-geweigerd" and event.subject == name


def test_file_level_refusal_over_the_size_cap(ops: Ops, db: Database, db_url: str, tmp_path: Path) -> None:
    small = ops_context(ops_settings(tmp_path, db_url, aanlever_max_zip_bytes=1000), db, tmp_path)
    data = make_zip([("a.xml", wmo301())], compression=zipfile.ZIP_STORED) + b"\0" * 1000
    with pytest.raises(UploadRefused, match="groter dan het maximum van 1000 bytes"):
        service.aanleveren(small.ctx, _upload(small, "groot.zip", data))
    assert service.list_batches(small.ctx, service.BatchQuery()) == ()


def test_zip_bomb_by_ratio(ops: Ops) -> None:
    # 20 MB of zeros deflate to about 20 KB: a ratio near 1000, over the cap of 200.
    bomb = make_zip([("nullen.xml", b"\0" * 20_000_000), ("goed.xml", wmo301(ident="B-1"))])
    verslag = service.aanleveren(ops.ctx, _upload(ops, "evil.zip", bomb))
    assert verslag.status == "Afgekeurd"
    fouten = {f.bestand: f for f in verslag.fouten}
    assert fouten["nullen.xml"].foutomschrijving == checks.ZIPBOM
    assert verslag.aantal_correct == 1


def test_zip_bomb_by_entry_count(db: Database, db_url: str, tmp_path: Path) -> None:
    ops = ops_context(ops_settings(tmp_path, db_url, aanlever_max_entries=100), db, tmp_path)
    many = make_zip([(f"leeg_{n}.xml", b"") for n in range(101)])
    verslag = service.aanleveren(ops.ctx, _upload(ops, "zero_files_1000_x_1.zip", many))
    assert verslag.status == "Afgekeurd"
    [fout] = verslag.fouten
    assert fout.foutomschrijving == checks.TE_VEEL and "101 bestanden" in (fout.fout_detail or "")
    assert MessageStore(ops.ctx.database).list(direction="out") == []


def test_path_tricks_are_refused(ops: Ops) -> None:
    data = make_zip([("../buiten.xml", wmo301(ident="P-1")), ("/etc/passwd.xml", wmo301(ident="P-2"))])
    verslag = service.aanleveren(ops.ctx, _upload(ops, "paden.zip", data))
    assert {f.foutomschrijving for f in verslag.fouten} == {checks.PAD}
    assert verslag.aantal_incorrect == 2


def test_the_same_zip_twice_sends_nothing_twice(ops: Ops) -> None:
    data = make_zip([("een.xml", wmo301(ident="D-1")), ("twee.xml", wmo301(ident="D-2"))])
    first = service.aanleveren(ops.ctx, _upload(ops, "dubbel.zip", data))
    second = service.aanleveren(ops.ctx, _upload(ops, "dubbel.zip", data))
    assert first.status == second.status == "Afgeleverd"
    assert [f.uitkomst for f in second.bestanden] == ["al verzonden", "al verzonden"]
    assert [f.message_pk for f in second.bestanden] == [f.message_pk for f in first.bestanden]
    assert len(MessageStore(ops.ctx.database).list(direction="out", kind="business")) == 2


def test_a_ready_envelope_sent_again_is_recognised_by_referentienummer(ops: Ops) -> None:
    first = service.aanleveren(ops.ctx, _upload(ops, "kaal.xml", wmo301(ident="E-1")))
    [file] = first.bestanden
    assert file.message_pk is not None
    envelope = MessageStore(ops.ctx.database).parts(file.message_pk)[0].data
    again = service.aanleveren(ops.ctx, _upload(ops, "envelop.xml", envelope))
    assert [f.uitkomst for f in again.bestanden] == ["al verzonden"]
    assert again.bestanden[0].referentienummer == file.referentienummer


def test_no_served_gemeentecodes_refuses_with_a_reason(db: Database, db_url: str, tmp_path: Path) -> None:
    ops = ops_context(ops_settings(tmp_path, db_url, served_gemeentecodes=[]), db, tmp_path)
    verslag = service.aanleveren(ops.ctx, _upload(ops, "a.xml", wmo301()))
    [fout] = verslag.fouten
    assert fout.foutomschrijving == "Organisatie is niet geautoriseerd"
    assert "served_gemeentecodes" in (fout.fout_detail or "")


def test_expected_end_uses_measured_throughput(ops: Ops) -> None:
    from ggk_ebms.aanlevering.estimate import expected_end

    assert expected_end(ops.clock.now(), 10, [(10, 20.0), (1000, 1.0)]) == ops.clock.now() + timedelta(
        seconds=20
    )
    assert expected_end(ops.clock.now(), 10, []) == ops.clock.now() + timedelta(seconds=2)


def test_a_zip_in_the_outbox_becomes_an_aanlevering(ops: Ops) -> None:
    import json

    from ggk_ebms.delivery.submit import scan_outbox

    outbox = ops.ctx.settings.outbox_dir
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "dag.ZIP").write_bytes(make_zip([("a.xml", wmo301(ident="Z-1"))]))
    (outbox / "gemengd.zip").write_bytes(make_zip([("b.xml", wmo301(ident="Z-2")), ("c.txt", b"x")]))
    (outbox / "kapot.zip").write_bytes(b"no zip at all")
    assert scan_outbox(ops.ctx.settings, ops.ctx.database, ids=ops.ctx.ids, clock=ops.clock) == 3
    done = json.loads((outbox / "done" / "dag.ZIP.verslag.json").read_text())
    assert done["status"] == "Afgeleverd" and done["verzender"] == "outbox"
    failed = json.loads((outbox / "failed" / "gemengd.zip.verslag.json").read_text())
    assert failed["status"] == "Afgekeurd" and failed["fouten"][0]["bestand"] == "c.txt"
    assert "geen geldig ZIP" in (outbox / "failed" / "kapot.zip.reason.txt").read_text()
    assert len(service.list_batches(ops.ctx, service.BatchQuery())) == 2


def test_a_batch_is_processed_once(ops: Ops) -> None:
    from ggk_ebms.services.context import ServiceError

    upload = _upload(ops, "eenmaal.xml", wmo301(ident="O-9"))
    done = service.aanleveren(ops.ctx, upload)
    with pytest.raises(ServiceError, match="al verwerkt"):
        service.verwerk(ops.ctx, done.batch, upload)
