"""The zorgaanbieder register: CSV import, first/last message per AGB code from the traffic, names
in the berichtenlog, and the verslag warning for an outbound message to an unknown AGB code."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.services import aanleveren, berichtenlog, zorgaanbieders
from ggk_ebms.services.aanleveren import Upload
from ggk_ebms.services.context import ServiceError
from ggk_ebms.store.db import Database
from ggk_ebms.zorgaanbieders import RegisterError, parse_csv
from tests.ketendata_support import AGB_A, CLIENTS, jw305
from tests.koppeltabel_support import Traffic
from tests.ops_support import AGB, Ops, ops_context, ops_settings, wmo301

REGISTER = (
    "\ufeffAGB;Naam;Bereikbaar\n"
    f"{AGB_A};Jeugdhulp De Linde;ja\n"
    "87654321;Thuiszorg Oost;\n"
    "1234;Te kort;ja\n"
    "11112222;;nee\n"
    "22223333;Misschien BV;soms\n"
).encode()


def test_parse_csv_keeps_good_lines_and_names_bad_ones_without_their_values() -> None:
    parsed = parse_csv(REGISTER)
    assert [(r.agb, r.naam, r.bereikbaar) for r in parsed.rows] == [
        (AGB_A, "Jeugdhulp De Linde", True),
        ("87654321", "Thuiszorg Oost", None),
    ]
    assert [e.split(":")[0] for e in parsed.errors] == ["regel 4", "regel 5", "regel 6"]
    assert "1234" not in " ".join(parsed.errors)  # a bad AGB could be anything: not echoed
    comma = parse_csv(b"naam,agb\nZorg & Co,12121212\n")
    assert [(r.agb, r.naam, r.bereikbaar) for r in comma.rows] == [("12121212", "Zorg & Co", None)]
    with pytest.raises(RegisterError):
        parse_csv(b"code;omschrijving\n1;x\n")
    with pytest.raises(RegisterError):
        parse_csv(b"\xff\xfeagb")


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path)


def test_register_traffic_names_and_unknown_agb_warning(ops: Ops, db: Database, tmp_path: Path) -> None:
    ctx = ops.ctx
    result = zorgaanbieders.import_csv(ctx, REGISTER)
    assert (result.added, result.updated, len(result.errors)) == (2, 0, 3)
    again = zorgaanbieders.import_csv(ctx, f"agb;naam\n{AGB_A};De Linde Jeugdhulp\n".encode())
    assert (again.added, again.updated) == (0, 1)
    with pytest.raises(ServiceError):
        zorgaanbieders.import_csv(ctx, b"onzin\n")

    # Traffic from AGB_A on two days: first and last message come from the traffic.
    traffic = Traffic(db, ops.clock)
    traffic.di01(jw305("S-1", CLIENTS[0], "1"), "JW305", "in")
    first = ops.clock.now()
    ops.clock.advance(timedelta(days=2))
    traffic.di01(jw305("S-2", CLIENTS[0], "2"), "JW305", "in")
    entries = {e.agb: e for e in zorgaanbieders.register(ctx)}
    linde = entries[AGB_A]
    assert (linde.naam, linde.bereikbaar, linde.in_register, linde.berichten) == (
        "De Linde Jeugdhulp",
        None,
        True,
        2,
    )
    assert linde.eerste_bericht == first and linde.laatste_bericht == first + timedelta(days=2)
    assert entries["87654321"].berichten == 0 and entries["87654321"].eerste_bericht is None

    # The berichtenlog names the aanbieder.
    page = berichtenlog.berichtenlog(
        ctx, berichtenlog.LogFilter(until=ops.clock.now() + timedelta(minutes=1))
    )
    assert {r.aanbieder_naam for r in page.rows} == {"De Linde Jeugdhulp"}

    # An aanlevering to an AGB code never seen and not registered gets a warning; once that
    # aanbieder is in the register, the next one does not.
    upload = tmp_path / "toewijzing.xml"
    upload.write_bytes(wmo301(ident="Z-1"))
    verslag = aanleveren.aanleveren(ctx, Upload("toewijzing.xml", upload))
    [file] = verslag.bestanden
    assert file.uitkomst == "correct"
    assert file.fout_detail is not None and f"AGB-code {AGB} is onbekend" in file.fout_detail
    zorgaanbieders.import_csv(ctx, f"agb;naam;bereikbaar\n{AGB};Wijkteam Zuid;ja\n".encode())
    upload.write_bytes(wmo301(ident="Z-2"))
    [file] = aanleveren.aanleveren(ctx, Upload("toewijzing.xml", upload)).bestanden
    assert file.uitkomst == "correct" and file.fout_detail is None


def test_cli_import_and_list(db: Database, tmp_path: Path) -> None:
    env = {"GGK_EBMS_DATABASE_URL": db.url, "GGK_EBMS_DATA_DIR": str(tmp_path)}
    register = tmp_path / "register.csv"
    register.write_bytes(REGISTER)
    runner = CliRunner()
    result = runner.invoke(cli, ["zorgaanbieders", "import", str(register)], env=env)
    assert result.exit_code == 0, result.output
    assert "2 toegevoegd, 0 bijgewerkt, 3 regels geweigerd" in result.output
    listed = runner.invoke(cli, ["zorgaanbieders", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(e["agb"], e["naam"]) for e in json.loads(listed.output)] == [
        (AGB_A, "Jeugdhulp De Linde"),
        ("87654321", "Thuiszorg Oost"),
    ]
