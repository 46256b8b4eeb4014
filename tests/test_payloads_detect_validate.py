"""Payload detection, envelope cross-check and XSD validation over every shared example (iStandaarden)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import require_shared
from ggk_ebms.clock import SequenceIdGenerator
from ggk_ebms.errors import ConfigError, StufError
from ggk_ebms.payloads.catalogue import Standaard
from ggk_ebms.payloads.detect import Severity, check_against_envelope, detect
from ggk_ebms.payloads.validate import PayloadSchemas, scrub_schema_error, validate
from ggk_ebms.stuf.envelope import build_di01, build_du01, parse_envelope
from ggk_ebms.stuf.model import StufMessage, Systeem

KNOWN_FAULTY = {"ijw_3_2/JW315", "ijw_3_2/JW318"}  # iStandaarden examples


def _examples() -> list[Path]:
    folder = require_shared("spec", "istandaarden")
    return sorted(folder.glob("*/berichten/*.xml"))


@pytest.fixture(scope="module")
def schemas() -> PayloadSchemas:
    return PayloadSchemas(require_shared("spec", "istandaarden"))


def _key(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.stem}"


def test_every_example_detects_and_validates(schemas: PayloadSchemas) -> None:
    examples = _examples()
    assert len(examples) == 46
    for path in examples:
        data = path.read_bytes()
        info = detect(data)
        assert info.berichttype == path.stem
        assert info.schema_folder == path.parent.parent.name
        assert schemas.has_schema(info)
        errors = schemas.validate(data, info)
        if _key(path) in KNOWN_FAULTY:
            assert errors, path
        else:
            assert errors == [], (path, errors)
        assert validate(data, info) == []  # structural checks pass for all of them


def test_known_faulty_examples_fail_with_the_xsd_reason(schemas: PayloadSchemas) -> None:
    folder = require_shared("spec", "istandaarden", "ijw_3_2", "berichten")
    jw315 = (folder / "JW315.xml").read_bytes()
    errors = schemas.validate(jw315, detect(jw315))
    assert errors
    assert all("ToewijzingEinddatum" in e and "LDT_Datum" in e for e in errors)
    assert not any("2027-06-31" in e for e in errors)
    jw318 = (folder / "JW318.xml").read_bytes()
    (error,) = schemas.validate(jw318, detect(jw318))
    assert "RetourCode" in error
    assert "not expected" in error


def test_detect_reads_the_header() -> None:
    data = require_shared("spec", "istandaarden", "iwmo_3_2", "berichten", "WMO301.xml").read_bytes()
    info = detect(data)
    assert (info.standaard, info.release, info.berichttype) == (Standaard.IWMO, "3.2", "WMO301")
    assert (info.bericht_code, info.bericht_versie, info.bericht_subversie) == ("414", "3", "2")
    assert (info.header_value("Afzender"), info.header_value("Ontvanger")) == ("0384", "42420001")
    assert (info.identificatie, info.dagtekening) == ("123456789012", "2023-08-13")
    assert info.bericht_xsd_versie == "1.0.0"


def test_detect_legacy_and_ieb_headers() -> None:
    wmo303 = detect(
        require_shared("spec", "istandaarden", "iwmo_2_3", "berichten", "WMO303.xml").read_bytes()
    )
    assert (wmo303.header_value("Gemeente"), wmo303.header_value("Aanbieder")) == ("0384", "42420001")
    wmo401 = detect(_payload("ieb_1_0", "WMO401"))
    assert wmo401.header == (("Afzender", "1916"),)
    assert wmo401.standaard is Standaard.IEB


@pytest.mark.parametrize(
    "payload",
    [
        b"<Bericht xmlns='http://www.istandaarden.nl/iwmo/3_2/wmo399x/schema'/>",
        b"<Bericht xmlns='urn:something-else'/>",
        b"<Bericht",
        b"<Header xmlns='http://www.istandaarden.nl/iwmo/3_2/wmo301/schema'/>",
    ],
)
def test_unknown_payloads_are_stuf055(payload: bytes) -> None:
    with pytest.raises(StufError) as caught:
        detect(payload)
    assert caught.value.code == "StUF055"


def test_wmo21_namespace_suffix_is_accepted() -> None:
    info = detect(b"<Bericht xmlns='http://www.istandaarden.nl/iwmo/2_1/wmo301/schema/2_1'/>")
    assert (info.release, info.berichttype) == ("2.1", "WMO301")


# --- cross-check against the envelope --------------------------------------------------------


def _wrap(payload: bytes, *, functie: str, zender: str, ontvanger: str, du01: bool = False) -> StufMessage:
    common = {
        "zender": Systeem(zender, "Applicatie"),
        "ontvanger": Systeem(ontvanger, "GGk"),
        "functie": functie,
        "payload": payload,
        "ids": SequenceIdGenerator(),
        "tijdstip": datetime(2026, 1, 1, tzinfo=UTC),
        "functie_versie": 3,
        "functie_subversie": 2,
    }
    if du01:
        built = build_du01(cross_ref="9c0f7b90-5c69-41e5-a837-0800200c9a66", **common)  # type: ignore[arg-type]
    else:
        built = build_di01(**common)  # type: ignore[arg-type]
    return parse_envelope(built.data)


def _payload(folder: str, name: str) -> bytes:
    return require_shared("spec", "istandaarden", folder, "berichten", f"{name}.xml").read_bytes()


# (folder, message, envelope functie, zender, ontvanger, Du01?, rules expected as errors)
CROSS_CHECKS = [
    ("constructed-ok", "iwmo_3_2", "WMO301", "WMO301", "0384", "42420001", False, set()),
    ("retour-ok", "ijw_3_2", "JW302", "JW302", "42420001", "0384", True, set()),
    ("heen-to-gemeente-ok", "iwmo_3_2", "WMO305", "WMO305", "65656055", "0363", False, set()),
    ("ieb-ok", "ieb_1_0", "WMO401", "WMO401", "1916", "CAK", False, set()),
    ("legacy-ok", "iwmo_2_3", "WMO303", "WMO303", "42420001", "0384", False, set()),
    ("functie-differs", "iwmo_3_2", "WMO301", "WMO319", "0384", "42420001", False, {"functie"}),
    ("gemeente-differs", "iwmo_3_2", "WMO305", "WMO305", "65656055", "0384", False, {"gemeentecode"}),
    ("addressee-differs", "iwmo_3_2", "WMO301", "WMO301", "0384", "12345678", False, {"addressee"}),
    ("retour-in-di01", "ijw_3_2", "JW302", "JW302", "42420001", "0384", False, {"envelope"}),
]


@pytest.mark.parametrize(
    ("case", "folder", "name", "functie", "zender", "ontvanger", "du01", "rules"),
    CROSS_CHECKS,
    ids=[c[0] for c in CROSS_CHECKS],
)
def test_check_against_envelope(
    case: str, folder: str, name: str, functie: str, zender: str, ontvanger: str, du01: bool, rules: set[str]
) -> None:
    payload = _payload(folder, name)
    envelope = _wrap(payload, functie=functie, zender=zender, ontvanger=ontvanger, du01=du01)
    findings = check_against_envelope(detect(payload), envelope)
    assert {f.rule for f in findings if f.severity is Severity.ERROR} == rules


def test_version_mismatch_is_only_a_warning() -> None:
    payload = _payload("iwmo_2_3", "WMO301")  # BerichtVersie 2.3, envelope says 0003/0002
    envelope = _wrap(payload, functie="WMO301", zender="0384", ontvanger="42420001")
    findings = check_against_envelope(detect(payload), envelope)
    assert [(f.rule, f.severity) for f in findings] == [("versie", Severity.WARNING)]


def test_constructed_di01_agrees_with_its_payload() -> None:
    data = require_shared(
        "spec", "stuf-ggk", "constructed", "constructed_Di01_WMO301_iwmo3_2.xml"
    ).read_bytes()
    envelope = parse_envelope(data)
    assert envelope.payload is not None
    assert check_against_envelope(detect(envelope.payload.data), envelope) == []


# --- validation details ----------------------------------------------------------------------


def test_structural_checks_without_schemas() -> None:
    payload = _payload("iwmo_3_2", "WMO301").replace(b">414<", b">999<")
    errors = validate(payload, detect(payload))
    assert errors == ["Header/BerichtCode '999' is not 414 for WMO301"]


def test_schema_is_compiled_once(schemas: PayloadSchemas) -> None:
    info = detect(_payload("iwmo_3_2", "WMO307"))
    assert schemas.schema(info) is schemas.schema(info)


def test_missing_schema_falls_back_to_structural_checks(tmp_path: Path) -> None:
    payload = _payload("iwmo_3_2", "WMO301")
    empty = PayloadSchemas(tmp_path)
    assert not empty.has_schema(detect(payload))
    assert empty.validate(payload, detect(payload)) == []


def test_schema_imports_outside_the_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.xsd"
    outside.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x"/>')
    folder = tmp_path / "schemas" / "iwmo_3_2" / "xsd"
    folder.mkdir(parents=True)
    (folder / "WMO301.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="http://www.istandaarden.nl/iwmo/3_2/wmo301/schema">'
        '<xs:import namespace="urn:x" schemaLocation="../../../outside.xsd"/>'
        '<xs:element name="Bericht"/></xs:schema>'
    )
    payload = _payload("iwmo_3_2", "WMO301")
    with pytest.raises(ConfigError, match="outside the schema folder"):
        PayloadSchemas(tmp_path / "schemas").validate(payload, detect(payload))


SCRUB = [
    (
        "Element '{urn:a}Bsn': [facet 'pattern'] The value '12345678' is not accepted by the pattern "
        "'[0-9]{9}'.",
        "Element 'Bsn': [facet 'pattern'] The value '…' is not accepted by the pattern '[0-9]{9}'.",
    ),
    (
        "Element '{urn:a}Datum': '1967-02-30' is not a valid value of the atomic type '{urn:b}LDT_Datum'.",
        "Element 'Datum': '…' is not a valid value of the atomic type 'LDT_Datum'.",
    ),
    (
        "Element '{urn:a}Achternaam': [facet 'maxLength'] The value 'Jansen-de Vries' has a length of '15'.",
        "Element 'Achternaam': [facet 'maxLength'] The value '…' has a length of '…'.",
    ),
    (
        "Element '{urn:a}Geslacht': [facet 'enumeration'] The value '7' is not an element of the set "
        "{'0', '1'}.",
        "Element 'Geslacht': [facet 'enumeration'] The value '…' is not an element of the set {'…', '…'}.",
    ),
]


@pytest.mark.parametrize(("raw", "scrubbed"), SCRUB)
def test_scrub_schema_error(raw: str, scrubbed: str) -> None:
    assert scrub_schema_error(raw) == scrubbed


def test_invalid_values_never_reach_error_texts(schemas: PayloadSchemas) -> None:
    payload = _payload("iwmo_3_2", "WMO301")
    broken = re.sub(rb"<wmo301:Bsn>\d+<", b"<wmo301:Bsn>12345678<", payload)
    broken = broken.replace(b"<iwmo:Achternaam>Wit<", b"<iwmo:Achternaam>" + b"W" * 300 + b"<")
    errors = schemas.validate(broken, detect(broken))
    assert len(errors) >= 2
    assert not any("12345678" in e or "WWW" in e for e in errors)
