"""Exchanges as configuration: shipped defaults, changes and their checks, the store, the CLI, and
both envelope generations built and parsed (the official envelope XSDs in ../shared as oracle)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lxml import etree

from ggk_ebms import ns
from ggk_ebms.cli.main import cli
from ggk_ebms.clock import UuidIdGenerator
from ggk_ebms.exchanges.model import (
    DEFAULT_EXCHANGES,
    Product,
    Status,
    Via,
    apply_changes,
    check_consistent,
    with_changes,
)
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE
from ggk_ebms.store.db import Database
from ggk_ebms.store.exchanges import ExchangeStore
from ggk_ebms.stuf.envelope import parse_envelope
from ggk_ebms.stuf.generations import Generation, build_envelope, generation_of, parse_generation
from ggk_ebms.stuf.model import MessageKind, PayloadKind, Systeem
from ggk_ebms.stuf.versions import EnvelopeVersion
from tests.conftest import require_shared

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PAYLOAD = b"<Bericht xmlns='urn:eigen:test'><Header/></Bericht>"


def test_every_catalogue_berichttype_belongs_to_exactly_one_exchange() -> None:
    assert check_consistent(DEFAULT_EXCHANGES) == []
    for entry in DEFAULT_CATALOGUE:
        assert DEFAULT_EXCHANGES.for_berichttype(entry.berichttype) is not None, entry.berichttype


@pytest.mark.parametrize(
    ("key", "product", "payload_version"),
    [
        ("WMO301/WMO302", Product.IWMO, "3.2"),
        ("JW323/JW325", Product.IJW, "3.2"),
        ("JW321/JW322", Product.IJW, "2.3"),
        ("WMO303/WMO304", Product.IWMO, "2.3"),
        ("WMO403/WMO404", Product.IEB, "1.0"),
        ("PGBWMO-TKB", Product.PGB_WMO, None),
        ("PGBJW-BAB", Product.PGB_JW, None),
    ],
)
def test_shipped_defaults(key: str, product: Product, payload_version: str | None) -> None:
    exchange = DEFAULT_EXCHANGES.get(key)
    assert exchange is not None
    assert (exchange.product, exchange.payload_version) == (product, payload_version)
    assert (exchange.via, exchange.status, exchange.stuf_version) == (
        Via.DIGIKOPPELING,
        Status.ACTIEF,
        Generation.GGK0210,
    )


def test_lookup_by_either_berichttype_and_the_routing_page_line() -> None:
    exchange = DEFAULT_EXCHANGES.get("JW303")
    assert exchange is DEFAULT_EXCHANGES.get("jw304") is DEFAULT_EXCHANGES.get("JW303/JW304")
    assert exchange is not None
    changed = apply_changes(exchange, {"via": "portaal", "payload_version": "2.3", "stuf_version": "2.1"})
    assert changed.describe() == "JW303/JW304 (Portaal - actief - StUF ggk0210 - XML 2.3)"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("via", "fax", "not Digikoppeling or Portaal"),
        ("status", "aan", "not actief or inactief"),
        ("stuf_version", "0204", "not ggk0210"),
        ("payload_version", "drie", "not a release"),
        ("gemeentecodes", "0363,GM0014", "not four digits"),
        ("colour", "red", "is not one of"),
    ],
)
def test_bad_changes_are_refused(name: str, value: str, message: str) -> None:
    exchange = DEFAULT_EXCHANGES.get("WMO301")
    assert exchange is not None
    with pytest.raises(ValueError, match=message):
        apply_changes(exchange, {name: value})


def test_stale_stored_changes_are_reported_not_applied() -> None:
    exchanges, problems = with_changes(
        DEFAULT_EXCHANGES, {"WMO301/WMO302": {"via": "fax"}, "WMO999/WMO998": {"status": "inactief"}}
    )
    assert exchanges.get("WMO301") == DEFAULT_EXCHANGES.get("WMO301")
    assert any("WMO301/WMO302" in p and "fax" in p for p in problems)
    assert any("WMO999/WMO998" in p for p in problems)


def test_store_set_and_reset(db: Database) -> None:
    store = ExchangeStore(db)
    store.set("JW301", {"via": "Portaal", "gemeentecodes": "0363, 0014"})
    current, problems = store.current()
    exchange = current.get("JW301/JW302")
    assert exchange is not None and problems == []
    assert (exchange.via, exchange.gemeentecodes) == (Via.PORTAAL, ("0363", "0014"))
    with pytest.raises(ValueError, match="not actief"):
        store.set("JW301", {"status": "misschien"})
    assert store.changes()["JW301/JW302"] == {"via": "Portaal", "gemeentecodes": "0363, 0014"}
    assert store.reset("JW302") == 2
    assert store.current()[0].get("JW301") == DEFAULT_EXCHANGES.get("JW301")
    with pytest.raises(ValueError, match="no exchange"):
        store.set("WMO399", {"status": "actief"})


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env={"COLUMNS": "250"})


def test_cli_list_show_set(tmp_path: Path) -> None:
    config = tmp_path / "ggk-ebms.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\ncpa_autoimport = false\n', encoding="utf-8")
    listed = _run(config, "exchanges", "list")
    assert listed.exit_code == 0, listed.output
    for key in ("WMO301/WMO302", "JW321/JW322", "WMO401/WMO402", "PGBWMO-TKB", "PGBJW-BAB"):
        assert key in listed.output
    changed = _run(
        config,
        "exchanges",
        "set",
        "JW303",
        "--via",
        "Portaal",
        "--payload-version",
        "2.3",
        "--status",
        "actief",
    )
    assert changed.exit_code == 0, changed.output
    assert "JW303/JW304 (Portaal - actief - StUF ggk0210 - XML 2.3)" in changed.output
    shown = _run(config, "exchanges", "show", "JW304")
    assert shown.exit_code == 0 and "Portaal (gewijzigd)" in shown.output
    assert "JW303/JW304*" in _run(config, "exchanges", "list").output
    refused = _run(config, "exchanges", "set", "JW303", "--stuf-version", "0204")
    assert refused.exit_code != 0 and "0204" in refused.output
    assert _run(config, "exchanges", "show", "WMO399").exit_code != 0
    assert _run(config, "exchanges", "set", "JW303", "--reset").exit_code == 0
    assert "(gewijzigd)" not in _run(config, "exchanges", "show", "JW303").output


# --- both envelope generations --------------------------------------------------------------------


class _Ids:
    def uuid(self) -> str:
        return UUID

    def message_id(self) -> str:  # pragma: no cover - not used by the builders
        return f"{UUID}@test"


@pytest.mark.parametrize("generation", list(Generation))
@pytest.mark.parametrize("kind", [MessageKind.DI01, MessageKind.DU01])
def test_both_generations_build_and_parse(generation: Generation, kind: MessageKind) -> None:
    built = build_envelope(
        generation,
        kind,
        zender=Systeem("0363", "Wmo Zaaksysteem"),
        ontvanger=Systeem("65656055", "GGk"),
        functie="WMO306",
        payload=PAYLOAD,
        cross_ref="9c0f7b90-5c69-41e5-a837-0800200c9a66" if kind is MessageKind.DU01 else None,
        ids=_Ids(),
        tijdstip=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
        functie_versie=3,
        functie_subversie=2,
    )
    parsed = parse_envelope(built.data)
    assert parsed.kind is kind
    assert generation_of(parsed.version) is generation
    assert parsed.referentienummer == UUID and parsed.functie == "WMO306"
    assert parsed.payload is not None and parsed.payload.data == PAYLOAD
    assert parsed.payload.kind is PayloadKind.XML
    assert parsed.parameters is not None and parsed.parameters.functie_versie == "0003"


def _xsd(*parts: str) -> etree.XMLSchema:
    path = require_shared("spec", "stuf-ggk", *parts)
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.mark.parametrize(
    ("generation", "schema"),
    [
        (
            Generation.GGK0210,
            ("ggk0210_patch04_versie3", "ggk0210", "ggkberichten", "ggk0210_msg_ggkberichten.xsd"),
        ),
        (Generation.GGK0310, ("ggk0310_21_03", "ggk0310_21", "ggkberichten", "ggk0310_msg.xsd")),
    ],
)
def test_built_envelopes_validate_against_the_official_xsd(
    generation: Generation, schema: tuple[str, ...]
) -> None:
    xsd = _xsd(*schema)
    for kind, cross in ((MessageKind.DI01, None), (MessageKind.DU01, "9c0f7b90-5c69-41e5-a837-0800200c9a66")):
        built = build_envelope(
            generation,
            kind,
            zender=Systeem("0363", "Wmo Zaaksysteem", administratie="Amsterdam"),
            ontvanger=Systeem("CAK", "GGk"),
            functie="WMO401",
            payload=PAYLOAD,
            cross_ref=cross,
            ids=UuidIdGenerator(),
            tijdstip=datetime.now(UTC),
            functie_versie=1,
            functie_subversie=0,
        )
        document = etree.fromstring(built.data)
        assert xsd.validate(document), (kind, xsd.error_log)


def test_generation_names_and_namespaces() -> None:
    assert parse_generation("2.1") is Generation.GGK0210
    assert parse_generation("2.1.03") is Generation.GGK0310
    assert Generation.GGK0310.version is EnvelopeVersion.GGK0210_SECTOR
    assert Generation.GGK0310.version.namespace == ns.GGK_0210_SECTOR
    assert generation_of(EnvelopeVersion.GGK0310) is None  # 2.0 is read, never configured
    with pytest.raises(ValueError, match="not ggk0210"):
        parse_generation("StUF 3")


def test_official_examples_are_read_as_their_generation() -> None:
    current = require_shared(
        "spec",
        "stuf-ggk",
        "ggk0210_patch04_versie3",
        "voorbeeldberichten",
        "envelopHeenbericht-ggk_Di01_v21-xml.xml",
    )
    older = require_shared(
        "spec", "stuf-ggk", "ggk0310_21_03", "voorbeeldberichten", "envelopHeenbericht-ggk_Di01_v21.xml"
    )
    assert generation_of(parse_envelope(current.read_bytes()).version) is Generation.GGK0210
    assert generation_of(parse_envelope(older.read_bytes()).version) is Generation.GGK0310
