"""CBS core: file-name rules, ZIP checks, referentienummers, the envelope layout (validated against
the official ggk0210 XSD in ../shared as oracle, and parsed back by our own envelope reader), the
opt-in CSV and the reminder dates."""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lxml import etree

from conftest import require_shared
from ggk_ebms.cbs import envelope as cbs_envelope
from ggk_ebms.cbs.names import RULES, CbsNameError, CbsSet, check_name, csvs_from_zip
from ggk_ebms.cbs.notify import Periode, delivery_start, due_reminders
from ggk_ebms.cbs.referentie import referentienummer, unique_referentienummer
from ggk_ebms.cbs.toestemming import COLUMNS, Gebruiker, Toestemming, toestemming_csv
from ggk_ebms.clock import SequenceIdGenerator
from ggk_ebms.stuf.envelope import parse_envelope

CODES = frozenset({"0363", "0014"})


def check(name: str):  # type: ignore[no-untyped-def]
    return check_name(name, gemeentecodes=CODES, current_year=2026, current_half=2)


def test_a_good_name_gives_its_parts() -> None:
    parsed = check("WmoBasis_GM0363_2026H1.csv")
    assert (parsed.set, parsed.gemeentecode, parsed.verslagperiode) == (CbsSet.WMO_BASIS, "0363", "2026H1")
    assert check("SboKosten_GM0014_2025H2.csv").set is CbsSet.SBO_KOSTEN


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("WmoBasis_GM0363_2026H1.CSV", "CBS-N1"),
        ("WmoBasis_GM0363_2026H1.txt", "CBS-N1"),
        ("Wmo Basis_GM0363_2026H1.csv", "CBS-N2"),
        ("WmoBasis_GM0363.csv", "CBS-N3"),
        ("WmoBasis_GM0363_2026H1_v2.csv", "CBS-N3"),
        ("WmoTotaal_GM0363_2026H1.csv", "CBS-N4"),
        ("WmoBasis_0363_2026H1.csv", "CBS-N5"),
        ("WmoBasis_GM9999_2026H1.csv", "CBS-N5"),
        ("WmoBasis_GM0363_2026Q1.csv", "CBS-N6"),
        ("WmoBasis_GM0363_2027H1.csv", "CBS-N6"),
        ("WmoBasis_GM0363_2014H2.csv", "CBS-N6"),
    ],
)
def test_a_bad_name_is_refused_naming_the_rule(name: str, rule: str) -> None:
    with pytest.raises(CbsNameError) as caught:
        check(name)
    assert caught.value.rule == rule
    assert rule in str(caught.value) and RULES[rule] in str(caught.value) and name in str(caught.value)


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_zip_rules() -> None:
    good = _zip({"WmoBasis_GM0363_2026H1.csv": b"a;b\r\n", "JwKosten_GM0363_2026H1.csv": b"c\r\n"})
    assert [u.name for u in csvs_from_zip("msd.zip", good)] == [
        "WmoBasis_GM0363_2026H1.csv",
        "JwKosten_GM0363_2026H1.csv",
    ]
    for bad in (
        _zip({"map/WmoBasis_GM0363_2026H1.csv": b"x"}),
        _zip({"leesmij.txt": b"x"}),
        b"not a zip",
        _zip({}),
    ):
        with pytest.raises(CbsNameError) as caught:
            csvs_from_zip("msd.zip", bad)
        assert caught.value.rule == "CBS-Z1"


def test_referentienummer_is_dutch_local_time_and_unique() -> None:
    moment = datetime(2026, 12, 5, 12, 19, 0, tzinfo=UTC)
    assert referentienummer(moment) == "20261205-131900"
    taken = {"20261205-131900", "20261205-131901"}
    assert unique_referentienummer(moment, taken.__contains__) == "20261205-131902"
    assert referentienummer(datetime(2026, 7, 1, 10, 0, tzinfo=UTC)) == "20260701-120000"


class _FolderResolver(etree.Resolver):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        path = Path(system_url.removeprefix("file://")).resolve()
        assert path.is_relative_to(self.root)
        return self.resolve_filename(str(path), context)


def ggk0210_schema() -> etree.XMLSchema:
    folder = require_shared("spec", "stuf-ggk", "ggk0210_patch04_versie3")
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_FolderResolver(folder))
    return etree.XMLSchema(
        etree.parse(str(folder / "ggk0210" / "ggkberichten" / "ggk0210_msg_ggkberichten.xsd"), parser)
    )


CSV = b"BSN;Gemeentecode\r\n123456782;0363\r\n"


def _delivery() -> bytes:
    return cbs_envelope.build_delivery(
        gemeentecode="0363",
        applicatie="GGkEbms",
        functie="CBSMSD",
        referentienummer="20261205-131900",
        filename="WmoBasis_GM0363_2026H1.csv",
        data=CSV,
        ids=SequenceIdGenerator(),
        moment=datetime(2026, 12, 5, 12, 19, tzinfo=UTC),
    ).data


def test_delivery_envelope_layout_parses_back_with_the_csv_unchanged() -> None:
    data = _delivery()
    stuf = parse_envelope(data)
    assert stuf.functie == "CBSMSD" and stuf.stuurgegevens.ontvanger.organisatie == "CBS"
    assert stuf.stuurgegevens.zender.organisatie == "0363"
    assert stuf.payload is not None and stuf.payload.data == CSV
    assert stuf.payload.bestandsnaam == "20261205-131900_WmoBasis_GM0363_2026H1.csv"
    assert cbs_envelope.split_bestandsnaam(stuf.payload.bestandsnaam) == (
        "20261205-131900",
        "WmoBasis_GM0363_2026H1.csv",
    )
    # The element text is plain base64 of the file's bytes.
    root = etree.fromstring(data)
    (bestand,) = root.iter("{http://www.stufstandaarden.nl/koppelvlak/ggk0210}tekstBestand")
    assert base64.b64decode(bestand.text or "") == CSV


def test_report_layout_reads_back() -> None:
    delivery = parse_envelope(_delivery())
    built = cbs_envelope.build_report(
        gemeentecode="0363",
        functie="CBSMSDRapport",
        cross_ref=delivery.referentienummer,
        referentienummer="20261205-131900",
        filename="Technisch_WmoBasis_GM0363_2026H1.pdf",
        pdf=b"%PDF-1.4\n%test\n",
        ids=SequenceIdGenerator(),
        moment=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
    )
    stuf = parse_envelope(built.data)
    assert cbs_envelope.is_cbs_report(stuf, "CBSMSDRapport")
    assert not cbs_envelope.is_cbs_report(stuf, "CBSMSD")
    report = cbs_envelope.read_report(stuf)
    assert report.cross_ref == delivery.referentienummer
    assert report.cbs_referentienummer == "20261205-131900"
    assert report.filename == "Technisch_WmoBasis_GM0363_2026H1.pdf" and report.pdf.startswith(b"%PDF")
    assert "PDF" not in repr(report)


@pytest.mark.shared
def test_envelopes_valid_against_the_official_ggk0210_xsd() -> None:
    schema = ggk0210_schema()
    delivery = _delivery()
    report = cbs_envelope.build_report(
        gemeentecode="0363",
        functie="CBSMSDRapport",
        cross_ref=parse_envelope(delivery).referentienummer,
        referentienummer="20261205-131900",
        filename="Inhoud_WmoBasis_GM0363_2026H1.pdf",
        pdf=b"%PDF-1.4\n",
        ids=SequenceIdGenerator(),
        moment=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
    ).data
    for data in (delivery, report):
        document = etree.fromstring(data)
        assert schema.validate(document), schema.error_log


def test_toestemming_csv() -> None:
    gebruiker = Gebruiker("Gemeente Amsterdam", "A. Ambtenaar", "monitor@gemeente.test", "0201234567")
    rows = [
        Toestemming("2026H1", "WMO basis + kosten + facultatief", "akkoord", date(2026, 8, 3)),
        Toestemming("2026H1", "Kosten JW", "niet akkoord", date(2026, 8, 3)),
        Toestemming("2025H2", "Kosten SBO", "akkoord", date(2026, 8, 3)),
    ]
    data = toestemming_csv(gebruiker, rows)
    parsed = list(csv.reader(io.StringIO(data.decode()), delimiter=";"))
    assert tuple(parsed[0]) == COLUMNS
    assert parsed[1] == [
        "Gemeente Amsterdam",
        "2026H1",
        "WMO basis + kosten + facultatief",
        "akkoord",
        "2026-08-03",
        "A. Ambtenaar",
        "monitor@gemeente.test",
        "0201234567",
    ]
    with pytest.raises(ValueError, match="onbekend verzoek"):
        toestemming_csv(gebruiker, [Toestemming("2026H1", "Alles", "akkoord", date(2026, 8, 3))])
    with pytest.raises(ValueError, match="conclusie"):
        toestemming_csv(gebruiker, [Toestemming("2026H1", "Kosten JW", "ja", date(2026, 8, 3))])


def test_reminder_dates() -> None:
    assert delivery_start(Periode(2026, 1)) == date(2026, 7, 1)
    assert delivery_start(Periode(2026, 2)) == date(2027, 1, 1)
    assert delivery_start(Periode(2026, 2), offset_months=2) == date(2027, 2, 1)
    none: frozenset[str] = frozenset()
    assert [r.kind for r in due_reminders(date(2026, 7, 1), delivered=none, consented=none)] == ["aanleveren"]
    assert due_reminders(date(2026, 7, 1), delivered=frozenset({"2026H1"}), consented=none) == []
    late = due_reminders(date(2026, 7, 29), delivered=frozenset({"2026H1"}), consented=none)
    assert [(r.kind, r.periode.text) for r in late] == [("toestemming", "2026H1")]
    assert (
        due_reminders(date(2026, 7, 29), delivered=frozenset({"2026H1"}), consented=frozenset({"2026H1"}))
        == []
    )
    # In June the latest started delivery period is that of 2025H2 (from 1 January).
    assert due_reminders(date(2026, 6, 15), delivered=none, consented=none)[0].periode.text == "2025H2"
