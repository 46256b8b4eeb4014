"""Parsing from a temporary file (ggk_ebms/spool.py), slice by slice, reads what parsing the
bytes reads, with the same refusals; and the koppeltabel's outline of a payload keeps the keys."""

from __future__ import annotations

import pytest

from ggk_ebms.errors import StufError, UnsafeXmlError, XmlError, XmlTooLargeError
from ggk_ebms.koppeltabel import BODY_IDENTIFIERS, keys_of
from ggk_ebms.payloads.detect import detect_root
from ggk_ebms.services.koppeltabel import read_keys
from ggk_ebms.spool import spool
from ggk_ebms.stuf.codes import GGK_TOO_LARGE
from ggk_ebms.stuf.envelope import MAX_RECEIVE_BYTES, parse_envelope
from ggk_ebms.xml import parse, parse_outline, parse_streaming_text
from tests.large_support import MIB, sized_envelope


def test_a_spooled_envelope_parses_as_its_bytes_do() -> None:
    sized = sized_envelope(3 * MIB)
    from_bytes = parse_envelope(sized.envelope)
    from_file = parse_envelope(spool([sized.envelope]))
    assert from_file.payload is not None and from_file.payload.data == sized.payload
    assert from_file == from_bytes


def test_a_small_spooled_envelope_takes_the_tree_path() -> None:
    sized = sized_envelope(64 * 1024)
    assert parse_envelope(spool([sized.envelope])) == parse_envelope(sized.envelope)


def test_a_spooled_envelope_over_the_limit_is_refused_with_ib003() -> None:
    over = sized_envelope(MAX_RECEIVE_BYTES + 1024)
    with pytest.raises(StufError) as refused:
        parse_envelope(spool([over.envelope]))
    assert refused.value.code == GGK_TOO_LARGE
    assert refused.value.stuurgegevens is not None


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>' + b" " * 2 * MIB, UnsafeXmlError),
        (b"<x>" + b"a" * 2 * MIB + b"</y>", XmlError),
    ],
)
def test_a_spooled_document_keeps_the_hardened_refusals(document: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_envelope(spool([document]), max_bytes=4 * MIB)
    with pytest.raises(XmlTooLargeError):
        parse_streaming_text(spool([document]), max_bytes=MIB, sink_for=lambda tag: None)


PAYLOAD = (
    b'<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/3_2/wmo305/schema">'
    b"<w:Header><w:BerichtCode>418</w:BerichtCode></w:Header>"
    b"<w:Client><w:Bsn>999999999</w:Bsn><w:Product><w:ToewijzingNummer>T-1</w:ToewijzingNummer>"
    b"<w:Nested><w:BeschikkingNummer>B-2</w:BeschikkingNummer></w:Nested></w:Product>"
    b"<w:ReferentieAanbieder>R-3<w:DeclaratieIdentificatie>D-4</w:DeclaratieIdentificatie>"
    b"</w:ReferentieAanbieder></w:Client></w:Bericht>"
)


def _header(tag: str) -> bool:
    return tag.endswith("}Header")


def _identifier(tag: str) -> bool:
    return tag.rpartition("}")[2] in BODY_IDENTIFIERS


def test_an_outline_with_picked_elements_keeps_what_the_whole_tree_has() -> None:
    outline = parse_outline(PAYLOAD, max_bytes=MIB, keep=_header, pick=_identifier)
    full = parse(PAYLOAD)
    picked = sorted((el.tag, (el.text or "").strip()) for el in outline.iter() if _identifier(el.tag))
    everywhere = sorted((el.tag, (el.text or "").strip()) for el in full.iter() if _identifier(el.tag))
    assert picked == everywhere and len(picked) == 4
    assert outline.find("{*}Header") is not None and outline.find("{*}Client") is None


def test_the_koppeltabel_keys_of_a_large_envelope_are_those_of_the_whole_tree() -> None:
    sized = sized_envelope(2 * MIB)
    whole_tree = parse(sized.payload, max_bytes=4 * MIB)
    expected = keys_of(parse_envelope(sized.envelope), detect_root(whole_tree), whole_tree)
    assert read_keys(spool([sized.envelope])) == expected == read_keys(sized.envelope)
    assert expected.identificatie == "GROOT-1"
