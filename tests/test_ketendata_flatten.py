"""Flattening rules on small hand-written payloads: hashing, the elfproef safety net, birth year,
dropped subtrees, repeated simple elements and the `|` join."""

from __future__ import annotations

from datetime import UTC, datetime

from ggk_ebms.ketendata.flatten import MessageMeta, flatten, looks_like_bsn
from ggk_ebms.ketendata.hashing import KeyedHasher

NS = "http://www.istandaarden.nl/iwmo/3_2/wmo302/schema"
B = "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema"
PAYLOAD = f"""<?xml version="1.0"?>
<m:Bericht xmlns:m="{NS}" xmlns:b="{B}">
  <m:Header>
    <m:BerichtCode>415</m:BerichtCode>
    <m:BerichtIdentificatie><b:Identificatie>123456782</b:Identificatie></m:BerichtIdentificatie>
    <m:IdentificatieRetour>123456782</m:IdentificatieRetour>
    <m:RetourCodes><m:RetourCode>0001</m:RetourCode><m:RetourCode>8001</m:RetourCode></m:RetourCodes>
  </m:Header>
  <m:Client>
    <m:Bsn>111222333</m:Bsn>
    <m:Geboortedatum><b:Datum>1980-05-17</b:Datum><b:DatumGebruik>1</b:DatumGebruik></m:Geboortedatum>
    <m:Naam><b:Geslachtsnaam><b:Achternaam>Kwakernaak</b:Achternaam></b:Geslachtsnaam></m:Naam>
    <m:BtwIDNummer>NL123456782B01</m:BtwIDNummer>
    <m:Soort>A</m:Soort><m:Soort>B</m:Soort>
    <m:ToegewezenProducten>
      <m:ToegewezenProduct>
        <m:ToewijzingNummer>300200</m:ToewijzingNummer>
        <m:RetourCodes><m:RetourCode>9001</m:RetourCode></m:RetourCodes>
      </m:ToegewezenProduct>
    </m:ToegewezenProducten>
  </m:Client>
</m:Bericht>
""".encode()


def meta() -> MessageMeta:
    return MessageMeta("m@x", "c", "ontvangen", datetime(2026, 1, 1, tzinfo=UTC), "0363", "1", "WMO302", "r")


def test_rules() -> None:
    hasher = KeyedHasher(b"s" * 32)
    rows = flatten(PAYLOAD, meta(), hasher)
    by_file = {}
    for row in rows:
        by_file.setdefault(row.file, []).append(row.values)
    (message,) = by_file["WMO302.csv"]
    ident = message["Header_BerichtIdentificatie_Identificatie"]
    assert ident == message["Header_IdentificatieRetour"] == hasher.hash("bericht-identificatie", "123456782")
    assert message["Client_Bsn"] == hasher.hash("bsn", "111222333")
    assert message["Client_Geboortedatum_Jaar"] == "1980"
    assert message["Client_Geboortedatum_DatumGebruik"] == "1"
    assert message["Client_BtwIDNummer"] == hasher.hash("negen-cijfers", "NL123456782B01")
    assert message["Client_Soort"] == "A|B"
    assert not any("Naam" in column or "Achternaam" in column for column in message)
    assert "Kwakernaak" not in repr(rows)
    header_codes = by_file["WMO302_HeaderRetourCode.csv"]
    assert [r["RetourCode"] for r in header_codes] == ["0001", "8001"]
    assert {r["OuderBestand"] for r in header_codes} == {"WMO302.csv"}
    (product,) = by_file["WMO302_ToegewezenProduct.csv"]
    (product_code,) = by_file["WMO302_ToegewezenProductRetourCode.csv"]
    assert product_code["OuderBestand"] == "WMO302_ToegewezenProduct.csv"
    assert product_code["OuderRegel"] == product["Regel"] == "1"
    assert product["ToewijzingNummer"] == hasher.hash("toewijzing", "300200")


def test_keys_differ_and_domains_differ() -> None:
    one, two = KeyedHasher(b"a" * 32), KeyedHasher(b"b" * 32)
    assert one.hash("bsn", "111222333") != two.hash("bsn", "111222333")
    assert one.hash("bsn", "300200") != one.hash("toewijzing", "300200")
    assert one.key_id != two.key_id and "a" * 8 not in repr(one)


def test_elfproef_safety_net() -> None:
    assert looks_like_bsn("123456782") and looks_like_bsn("NL123456782B01")
    assert not looks_like_bsn("123456789") and not looks_like_bsn("1234567820")
