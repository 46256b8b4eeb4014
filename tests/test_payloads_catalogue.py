"""The message catalogue agrees with the BerichtCode patterns
of the official XSDs (iWmo/iJw 3.2 message catalogue)."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from conftest import require_shared
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Standaard
from ggk_ebms.payloads.catalogue import HeaderField as H
from ggk_ebms.payloads.catalogue import Party as P
from ggk_ebms.payloads.catalogue import Soort as S
from ggk_ebms.stuf.model import MessageKind as K

XS = "{http://www.w3.org/2001/XMLSchema}"


def _xsd_berichtcodes(path: str) -> tuple[str, ...]:
    """The values the XSD's BerichtCode restriction allows (a pattern such as ``416|448``)."""
    doc = etree.parse(path, etree.XMLParser(no_network=True, resolve_entities=False))
    for element in doc.iter(f"{XS}element"):
        if element.get("name") == "BerichtCode":
            pattern = element.find(f".//{XS}pattern")
            assert pattern is not None
            return tuple(sorted(pattern.get("value", "").split("|")))
    raise AssertionError(f"{path} has no BerichtCode element")


def test_every_official_xsd_matches_the_catalogue() -> None:
    folder = require_shared("spec", "istandaarden")
    checked = 0
    for xsd in sorted(folder.glob("*/xsd/*.xsd")):
        if xsd.stem == "basisschema":
            continue
        entry = DEFAULT_CATALOGUE.get(xsd.stem)
        assert entry is not None, f"{xsd.stem} missing from the catalogue"
        assert tuple(sorted(entry.berichtcodes)) == _xsd_berichtcodes(str(xsd)), xsd
        standaard, major, minor = xsd.parent.parent.name.split("_")
        assert entry.standaard is Standaard(standaard)
        assert f"{major}.{minor}" in entry.releases
        checked += 1
    assert checked == 46  # iEb 1.0: 4, iJw 2.3: 10, iJw 3.2: 14, iWmo 2.3: 10, iWmo 3.2: 8


def test_the_xsd_namespace_tells_the_berichttype() -> None:
    folder = require_shared("spec", "istandaarden")
    for xsd in folder.glob("*/xsd/[WJ]*.xsd"):
        target = etree.parse(str(xsd)).getroot().get("targetNamespace", "")
        assert re.search(rf"/{xsd.stem.lower()}/schema$", target), xsd


# berichttype, soort, sender, receiver, envelope, pair,
# gemeente field: iWmo/iJw 3.2 message catalogue row by row
ROWS = [
    ("WMO301", S.HEEN, P.GEMEENTE, P.AANBIEDER, K.DI01, "WMO302", H.AFZENDER),
    ("JW302", S.RETOUR, P.AANBIEDER, P.GEMEENTE, K.DU01, "JW301", H.AFZENDER),
    ("JW305", S.HEEN, P.AANBIEDER, P.GEMEENTE, K.DI01, "JW306", H.ONTVANGER),
    (
        "WMO306",
        S.RETOUR,
        P.GEMEENTE,
        P.AANBIEDER,
        K.DU01,
        "WMO305",
        H.ONTVANGER,
    ),
    (
        "WMO315",
        S.HEEN,
        P.AANBIEDER,
        P.GEMEENTE,
        K.DI01,
        "WMO316",
        H.ONTVANGER,
    ),
    (
        "JW318",
        S.RETOUR,
        P.GEMEENTE,
        P.AANBIEDER,
        K.DU01,
        "JW317",
        H.ONTVANGER,
    ),
    ("WMO319", S.HEEN, P.GEMEENTE, P.AANBIEDER, K.DI01, "WMO320", H.AFZENDER),
    ("JW320", S.RETOUR, P.AANBIEDER, P.GEMEENTE, K.DU01, "JW319", H.AFZENDER),
    (
        "WMO323",
        S.HEEN,
        P.AANBIEDER,
        P.GEMEENTE,
        K.DI01,
        "WMO325",
        H.ONTVANGER,
    ),
    (
        "JW325",
        S.ANTWOORD,
        P.GEMEENTE,
        P.AANBIEDER,
        K.DU01,
        "JW323",
        H.AFZENDER,
    ),
    ("WMO303", S.HEEN, P.AANBIEDER, P.GEMEENTE, K.DI01, "WMO304", H.GEMEENTE),
    ("JW304", S.RETOUR, P.GEMEENTE, P.AANBIEDER, K.DU01, "JW303", H.GEMEENTE),
    ("WMO401", S.HEEN, P.GEMEENTE, P.CAK, K.DI01, "WMO402", H.AFZENDER),
    ("WMO404", S.RETOUR, P.CAK, P.GEMEENTE, K.DU01, "WMO403", H.AFZENDER),
    ("JW321", S.HEEN, P.AANBIEDER, P.GEMEENTE, K.DI01, "JW322", H.ONTVANGER),
    ("JW322", S.RETOUR, P.GEMEENTE, P.AANBIEDER, K.DU01, "JW321", H.ONTVANGER),
    ("PGBWMO-TKB", S.HEEN, P.GEMEENTE, P.SVB, K.DI01, None, H.AFZENDER),
    ("PGBJW-BAB", S.HEEN, P.SVB, P.GEMEENTE, K.DI01, None, H.ONTVANGER),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_catalogue_rows(row: tuple[object, ...]) -> None:
    berichttype, soort, sender, receiver, envelope, pair, field = row
    entry = DEFAULT_CATALOGUE.get(str(berichttype))
    assert entry is not None
    assert (entry.soort, entry.sender, entry.receiver, entry.envelope, entry.pair, entry.gemeente_field) == (
        soort,
        sender,
        receiver,
        envelope,
        pair,
        field,
    )


def test_pairs_point_at_each_other() -> None:
    for entry in DEFAULT_CATALOGUE:
        if entry.pair is None:  # PGB TKB and BAB stand alone (soort "n.v.t.")
            assert not entry.standaard.detectable
            continue
        partner = DEFAULT_CATALOGUE.get(entry.pair)
        assert partner is not None
        assert partner.pair == entry.berichttype
        assert {entry.envelope, partner.envelope} == {K.DI01, K.DU01}


def test_legacy_and_ieb_facts() -> None:
    assert DEFAULT_CATALOGUE.get("WMO303").legacy  # type: ignore[union-attr]
    assert DEFAULT_CATALOGUE.get("WMO401").other_field is None  # type: ignore[union-attr]  # no Ontvanger in iEb
    assert DEFAULT_CATALOGUE.get("JW325").envelope_inferred  # type: ignore[union-attr]
    assert "WMO399" not in DEFAULT_CATALOGUE
