"""StUF-GGk envelope: every shared example parses, our Di01/Du01/Fo01 pass the official XSDs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from conftest import require_shared
from ggk_ebms import ns
from ggk_ebms.clock import SequenceIdGenerator
from ggk_ebms.errors import StufError, XmlError, XmlTooLargeError
from ggk_ebms.stuf.envelope import (
    MAX_SEND_BYTES,
    build_di01,
    build_du01,
    build_fo01,
    build_fo01_reply,
    format_tijdstip,
    parse_envelope,
    versienr,
)
from ggk_ebms.stuf.model import MessageKind, PayloadKind, Stuurgegevens, Systeem
from ggk_ebms.stuf.versions import EnvelopeVersion

GEMEENTE = Systeem("0363", "Wmo Zaaksysteem", administratie="Amsterdam")
GGK = Systeem("42420001", "GGk")
MOMENT = datetime(2026, 3, 5, 11, 4, 5, 678000, tzinfo=UTC)
PAYLOAD = b'<?xml version="1.0" encoding="UTF-8"?><Bericht/>'


class _FolderResolver(etree.Resolver):
    """Imports only from inside the schema folder; anything else fails the test."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        path = Path(system_url.removeprefix("file://")).resolve()
        assert path.is_relative_to(self.root), f"schema import outside {self.root}: {system_url}"
        return self.resolve_filename(str(path), context)


def _schema(*parts: str) -> etree.XMLSchema:
    folder = require_shared("spec", "stuf-ggk", "ggk0210_patch04_versie3")
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_FolderResolver(folder))
    return etree.XMLSchema(etree.parse(str(folder.joinpath(*parts)), parser))


@pytest.fixture(scope="module")
def envelope_schema() -> etree.XMLSchema:
    return _schema("ggk0210", "ggkberichten", "ggk0210_msg_ggkberichten.xsd")


@pytest.fixture(scope="module")
def stuf_schema() -> etree.XMLSchema:
    return _schema("0301", "stuf0301.xsd")


def _assert_valid(schema: etree.XMLSchema, data: bytes) -> None:
    doc = etree.fromstring(data)
    assert schema.validate(doc), [e.message for e in schema.error_log]


def _di01(**changes: object) -> bytes:
    args: dict[str, object] = {
        "zender": GEMEENTE,
        "ontvanger": GGK,
        "functie": "WMO301",
        "payload": PAYLOAD,
        "ids": SequenceIdGenerator(),
        "tijdstip": MOMENT,
        "functie_versie": 3,
        "functie_subversie": 2,
    }
    args.update(changes)
    return build_di01(**args).data  # type: ignore[arg-type]


# --- every example in the shared folder ---------------------------------------------------------

EXAMPLES = [
    ("ggk0210_patch04_versie3/voorbeeldberichten/envelopHeenbericht-ggk_Di01_v21-xml.xml", "Di01", "WMO301"),
    ("ggk0210_patch04_versie3/voorbeeldberichten/envelopHeenbericht-ggk_Di01_v21-tekst.xml", "Di01", "Dummy"),
    ("ggk0210_patch04_versie3/voorbeeldberichten/envelopRetourbericht-ggk_Du01-v21.xml", "Du01", "WMO302"),
    ("ggk0210_patch04_versie3/voorbeeldberichten/Fo01.xml", "Fo01", None),
    ("ggk0310_21_03/voorbeeldberichten/envelopHeenbericht-ggk_Di01_v21.xml", "Di01", "WMO301"),
    ("ggk0310_21_03/ggk0310_21/ggkberichten/ggk_Di01.xml", "Di01", "WMO301"),
    ("ggk0310_21_03/ggk0310_21/ggkberichten/ggk_Du01.xml", "Du01", "WMO302"),
    ("constructed/constructed_Di01_WMO301_iwmo3_2.xml", "Di01", "WMO301"),
    ("constructed/constructed_Bv03.xml", "Bv03", None),
    ("constructed/constructed_Fo03.xml", "Fo03", None),
    ("soap_examples_messagestub/soap-envelope-di01.xml", "Di01", "WMO301"),
    ("soap_examples_messagestub/soap-envelope-du01.xml", "Du01", "WMO302"),
    ("soap_examples_messagestub/soap-envelope-fo01.xml", "Fo01", None),
]


@pytest.mark.parametrize(("name", "kind", "functie"), EXAMPLES)
def test_shared_example_parses(name: str, kind: str, functie: str | None) -> None:
    data = require_shared("spec", "stuf-ggk", *name.split("/")).read_bytes()
    message = parse_envelope(data)
    assert message.kind == MessageKind(kind)
    assert message.functie == functie
    if message.kind.is_envelope:
        assert message.payload is not None
        assert message.payload.data
        assert message.parameters is not None
    else:
        assert message.payload is None
        assert message.stuurgegevens.cross_refnummer


def test_every_shared_envelope_example_is_covered() -> None:
    folder = require_shared("spec", "stuf-ggk")
    listed = {name for name, _, _ in EXAMPLES}
    known_other = {
        "ggk0310_21_03/voorbeeldberichten/envelopRetourbericht-ggk_Du01-v21.xml",  # not well-formed
        "constructed/decoded_payload_from_messagestub_soap-envelope-di01_WMO301_iwmo2_3.xml",  # a payload
        "vecozo_vsp_example/IndienenBericht_JW315.xml",  # VECOZO's envelope, never seen by a gemeente
    }
    found = {str(p.relative_to(folder)) for p in folder.rglob("*.xml")}
    assert found == listed | known_other


def test_known_malformed_ggk0310_du01_is_a_clear_xml_error() -> None:
    data = require_shared(
        "spec", "stuf-ggk", "ggk0310_21_03", "voorbeeldberichten", "envelopRetourbericht-ggk_Du01-v21.xml"
    ).read_bytes()
    with pytest.raises(XmlError, match="StUF envelope is not well-formed XML"):
        parse_envelope(data)


@pytest.mark.parametrize(
    "name",
    [
        "constructed/decoded_payload_from_messagestub_soap-envelope-di01_WMO301_iwmo2_3.xml",
        "vecozo_vsp_example/IndienenBericht_JW315.xml",
    ],
)
def test_foreign_roots_are_refused_without_stuurgegevens(name: str) -> None:
    data = require_shared("spec", "stuf-ggk", *name.split("/")).read_bytes()
    with pytest.raises(StufError) as caught:
        parse_envelope(data)
    assert caught.value.code == "StUF022"
    assert caught.value.stuurgegevens is None  # nothing to address a Fo01 to: quarantine


def test_current_envelope_fields() -> None:
    data = require_shared(
        "spec",
        "stuf-ggk",
        "ggk0210_patch04_versie3",
        "voorbeeldberichten",
        "envelopRetourbericht-ggk_Du01-v21.xml",
    ).read_bytes()
    message = parse_envelope(data)
    sg = message.stuurgegevens
    assert message.version is EnvelopeVersion.GGK0210
    assert sg.zender == Systeem("01023456", "Applicatie leverancier")
    assert sg.ontvanger == Systeem("0484", "GGk")
    assert sg.referentienummer == "b6e9f182-bc44-4f27-9863-9a5ccc1e1cf0"
    assert sg.cross_refnummer == "9c0f7b90-5c69-41e5-a837-0800200c9a66"
    assert sg.tijdstip_bericht == "20160422142804"
    assert message.parameters is not None
    assert (message.parameters.applicatie_versie, message.parameters.functie_subversie) == ("0004", "0002")
    assert message.payload is not None
    assert message.payload.kind is PayloadKind.XML


def test_older_envelope_reads_content_type_and_optional_parameters() -> None:
    data = require_shared(
        "spec", "stuf-ggk", "ggk0310_21_03", "ggk0310_21", "ggkberichten", "ggk_Du01.xml"
    ).read_bytes()
    message = parse_envelope(data)
    assert message.version is EnvelopeVersion.GGK0210_SECTOR
    assert message.parameters is not None
    assert message.parameters.referentienummer_bericht == "234567890123"
    assert message.parameters.cross_refnummer_bericht == "123456789012"
    assert message.payload is not None
    assert (message.payload.content_type, message.payload.bestandsnaam) == ("application/xml", "WMO302.txt")
    # 2.1.02/03 do not force UUID v4: the example's v1 UUID is accepted
    assert message.stuurgegevens.cross_refnummer == "9c0f7b90-5c69-11e5-a837-0800200c9a66"


def test_text_payload_keeps_bestandsnaam() -> None:
    data = require_shared(
        "spec",
        "stuf-ggk",
        "ggk0210_patch04_versie3",
        "voorbeeldberichten",
        "envelopHeenbericht-ggk_Di01_v21-tekst.xml",
    ).read_bytes()
    message = parse_envelope(data)
    assert message.payload is not None
    assert message.payload.kind is PayloadKind.TEXT
    assert message.payload.bestandsnaam == "AanleveringQ1.csv"


def test_fo01_body_is_read_and_details_xml_only_noted() -> None:
    data = require_shared(
        "spec", "stuf-ggk", "ggk0210_patch04_versie3", "voorbeeldberichten", "Fo01.xml"
    ).read_bytes()
    message = parse_envelope(data)
    assert message.fout is not None
    assert (message.fout.code, message.fout.plek, message.fout.details) == (
        "IB210",
        "client",
        "JW315-00010004",
    )
    assert message.fout.has_details_xml


# --- the 2.0 namespace (PDF only, so built here) -----------------------------------------------


def _ggk0310_envelope(functie: str) -> bytes:
    text = _di01(functie="WMO305").decode()
    text = text.replace(ns.GGK_0210, ns.GGK_0310).replace(">WMO305<", f">{functie}<")
    payload = base64.b64encode(PAYLOAD).decode()
    text = text.replace(
        f"<GGK:bericht><GGK:xmlBestand>{payload}</GGK:xmlBestand></GGK:bericht>",
        f'<GGK:bericht xmlns:xmime="{ns.XMIME}" xmime:contentType="text/xml">{payload}</GGK:bericht>',
    )
    return text.encode()


def test_ggk0310_functie_with_version_is_split() -> None:
    message = parse_envelope(_ggk0310_envelope("WMO305-0204"))
    assert message.version is EnvelopeVersion.GGK0310
    assert (message.functie, message.stuurgegevens.functie_suffix) == ("WMO305", "0204")
    assert message.payload is not None
    assert message.payload.data == PAYLOAD


# --- refusals ---------------------------------------------------------------------------------


def _mutate(old: str, new: str) -> bytes:
    data = _di01().decode()
    assert old in data
    return data.replace(old, new, 1).encode()


REFUSALS = [
    ("berichtcode-not-di01", "<StUF:berichtcode>Di01<", "<StUF:berichtcode>Du01<", "StUF040"),
    ("referentienummer-not-uuid4", "00000000-0000-4000-8000-000000000001", "20160421-132514", "StUF055"),
    ("tijdstip-not-digits", "<StUF:tijdstipBericht>", "<StUF:tijdstipBericht>2026-", "StUF055"),
    ("applicatie-too-short", "Wmo Zaaksysteem", "Wm", "StUF055"),
    ("missing-functie", "<StUF:functie>WMO301</StUF:functie>", "", "StUF055"),
    ("version-not-4-digits", "<GGK:functieVersie>0003<", "<GGK:functieVersie>3<", "StUF055"),
    ("base64-not-strict", "<GGK:xmlBestand>", "<GGK:xmlBestand>*", "StUF055"),
    ("unexpected-element", "</GGK:parameters>", "</GGK:parameters><GGK:extra/>", "StUF055"),
]


@pytest.mark.parametrize(("case", "old", "new", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_codes(case: str, old: str, new: str, code: str) -> None:
    with pytest.raises(StufError) as caught:
        parse_envelope(_mutate(old, new))
    assert caught.value.code == code


def test_refusal_after_stuurgegevens_carries_them_for_a_fo01() -> None:
    with pytest.raises(StufError) as caught:
        parse_envelope(_mutate("<GGK:xmlBestand>", "<GGK:xmlBestand>*"))
    sg = caught.value.stuurgegevens
    assert isinstance(sg, Stuurgegevens)
    assert sg.zender.organisatie == "0363"


def test_size_limit_applies_before_parsing_and_names_the_sender() -> None:
    # Over the limit: refused with the GGk's "over 25 MB" code, addressed from the head alone.
    with pytest.raises(StufError) as caught:
        parse_envelope(_di01(), max_bytes=100)
    assert caught.value.code == "IB003"
    sg = caught.value.stuurgegevens
    assert isinstance(sg, Stuurgegevens)
    assert sg.referentienummer == parse_envelope(_di01()).referentienummer


def test_oversized_non_envelope_is_only_too_large() -> None:
    with pytest.raises(XmlTooLargeError):
        parse_envelope(b"<other>" + b"x" * 200 + b"</other>", max_bytes=100)
    with pytest.raises(XmlTooLargeError):  # a DOCTYPE in the head: not even looked into
        parse_envelope(b"<!DOCTYPE x []>" + _di01(), max_bytes=100)


def test_bom_in_payload_is_stripped_with_a_warning() -> None:
    data = _di01().decode()
    plain = base64.b64encode(PAYLOAD).decode()
    with_bom = base64.b64encode(b"\xef\xbb\xbf" + PAYLOAD).decode()
    message = parse_envelope(data.replace(plain, with_bom).encode())
    assert message.payload is not None
    assert message.payload.data == PAYLOAD
    assert any("byte order mark" in w for w in message.warnings)


# --- building ---------------------------------------------------------------------------------


def test_built_di01_validates_and_round_trips(envelope_schema: etree.XMLSchema) -> None:
    built = build_di01(
        zender=GEMEENTE,
        ontvanger=GGK,
        functie="WMO301",
        payload=PAYLOAD,
        ids=SequenceIdGenerator(),
        tijdstip=MOMENT,
        functie_versie=3,
        functie_subversie=2,
    )
    _assert_valid(envelope_schema, built.data)
    message = parse_envelope(built.data)
    assert message.referentienummer == built.referentienummer
    assert message.stuurgegevens.tijdstip_bericht == built.tijdstip_bericht == "20260305120405678"
    assert message.parameters is not None
    assert (message.parameters.functie_versie, message.parameters.functie_subversie) == ("0003", "0002")
    assert message.payload is not None
    assert message.payload.data == PAYLOAD


def test_built_di01_with_text_file_validates(envelope_schema: etree.XMLSchema) -> None:
    data = _di01(
        functie="Dummy", ontvanger=Systeem("CBS", "GGk"), bestandsnaam="monitor_2026-Q1.csv", payload=b"a;b\n"
    )
    _assert_valid(envelope_schema, data)
    message = parse_envelope(data)
    assert message.payload is not None
    assert message.payload.bestandsnaam == "monitor_2026-Q1.csv"


def test_built_du01_validates(envelope_schema: etree.XMLSchema) -> None:
    cross_ref = "9c0f7b90-5c69-41e5-a837-0800200c9a66"
    built = build_du01(
        zender=GEMEENTE,
        ontvanger=GGK,
        functie="WMO306",
        payload=PAYLOAD,
        cross_ref=cross_ref,
        ids=SequenceIdGenerator(),
        tijdstip=MOMENT,
        functie_versie="0003",
        functie_subversie="0002",
    )
    _assert_valid(envelope_schema, built.data)
    assert parse_envelope(built.data).stuurgegevens.cross_refnummer == cross_ref


def test_built_fo01_validates_and_embeds_the_original(stuf_schema: etree.XMLSchema) -> None:
    original = _di01()
    failed = parse_envelope(original)
    error = StufError("StUF055", "payload WMO301 is not schema-conform")
    built = build_fo01_reply(
        failed, error, zender=GEMEENTE, ids=SequenceIdGenerator(), tijdstip=MOMENT, original=original
    )
    _assert_valid(stuf_schema, built.data)
    fo01 = parse_envelope(built.data)
    assert fo01.kind is MessageKind.FO01
    assert fo01.stuurgegevens.cross_refnummer == failed.referentienummer
    assert fo01.stuurgegevens.ontvanger.organisatie == "0363"
    assert fo01.fout is not None
    assert (fo01.fout.code, fo01.fout.details, fo01.fout.has_details_xml) == (
        "StUF055",
        "WMO301-00010000",
        True,
    )
    holder = etree.fromstring(built.data).find(f".//{{{ns.STUF}}}detailsXML")
    assert holder is not None
    assert holder[0].tag == f"{{{ns.GGK_0210}}}envelopHeenbericht-ggk_Di01"


def test_built_fo01_without_details_validates(stuf_schema: etree.XMLSchema) -> None:
    built = build_fo01(
        zender=GEMEENTE,
        ontvanger=GGK,
        cross_ref="9c0f7b90-5c69-11e5-a837-0800200c9a66",
        code="StUF010",
        omschrijving="Ontvanger is onbekend",
        ids=SequenceIdGenerator(),
        tijdstip=MOMENT,
    )
    _assert_valid(stuf_schema, built.data)


def test_referentienummer_is_lowercase_uuid4_from_the_generator() -> None:
    class Upper(SequenceIdGenerator):
        def uuid(self) -> str:
            return super().uuid().upper()

    message = parse_envelope(_di01(ids=Upper()))
    assert message.referentienummer == message.referentienummer.lower()


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 15, 9, 30, 0, tzinfo=UTC), "20260115103000000"),  # CET = UTC+1
        (datetime(2026, 7, 15, 9, 30, 0, 123456, tzinfo=UTC), "20260715113000123"),  # CEST = UTC+2
        (datetime(2026, 7, 15, 9, 30, 0), "20260715093000000"),  # naive: already local
    ],
)
def test_tijdstip_is_local_time_with_milliseconds(moment: datetime, expected: str) -> None:
    assert format_tijdstip(moment) == expected


@pytest.mark.parametrize(("value", "expected"), [(3, "0003"), (0, "0000"), ("0002", "0002")])
def test_versienr(value: int | str, expected: str) -> None:
    assert versienr(value) == expected


BUILD_REFUSALS = [
    ("cross-ref-not-uuid4", {"cross_ref": "9c0f7b90-5c69-11e5-a837-0800200c9a66"}),
    ("bestandsnaam-with-space", {"bestandsnaam": "my file.csv"}),
    ("functie-too-long", {"functie": "W" * 31}),
    ("version-too-long", {"functie_versie": 10000}),
]


@pytest.mark.parametrize(("case", "change"), BUILD_REFUSALS, ids=[r[0] for r in BUILD_REFUSALS])
def test_build_refuses_what_the_xsd_would(case: str, change: dict[str, object]) -> None:
    args: dict[str, object] = {
        "zender": GEMEENTE,
        "ontvanger": GGK,
        "functie": "WMO306",
        "payload": PAYLOAD,
        "cross_ref": "9c0f7b90-5c69-41e5-a837-0800200c9a66",
        "ids": SequenceIdGenerator(),
        "tijdstip": MOMENT,
        "functie_versie": 3,
        "functie_subversie": 2,
    }
    args.update(change)
    with pytest.raises(StufError) as caught:
        build_du01(**args)  # type: ignore[arg-type]
    assert caught.value.code == "StUF055"


def test_build_refuses_over_25_million_bytes() -> None:
    with pytest.raises(StufError) as caught:
        _di01(payload=b"x" * (MAX_SEND_BYTES * 3 // 4 + 1000))
    assert caught.value.code == "IB003"
