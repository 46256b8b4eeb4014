"""Every refused submission shows in the berichtenlog as Geweigerd with its reason: ``submit``
(the service and the CLI) and an outbox ``.xml``, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ggk_ebms.aanlevering import checks
from ggk_ebms.cli.main import cli
from ggk_ebms.delivery.submit import scan_outbox
from ggk_ebms.services import aanleveren
from ggk_ebms.services.berichtenlog import REFUSED, LogFilter, berichtenlog
from ggk_ebms.services.indienen import Indiening, indienen
from ggk_ebms.store.db import Database
from tests.ops_support import Ops, ops_context, ops_settings, wmo301


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path)


def refused_rows(ops: Ops) -> list[tuple[str | None, str | None, str | None]]:
    page = berichtenlog(ops.ctx, LogFilter(status=REFUSED))
    return [(r.status_reason, r.gemeentecode, r.berichttype) for r in page.rows]


def test_submit_refusal_is_geweigerd_in_the_berichtenlog(ops: Ops) -> None:
    ok = indienen(ops.ctx, Indiening("goed.xml", wmo301(ident="S-1"), manual=True))
    assert ok.submitted is not None and ok.batch is None
    bad = indienen(ops.ctx, Indiening("kapot.xml", b"<niet-af"))
    assert bad.refused and bad.batch is not None and bad.reden
    # An envelope-less payload for a gemeente we do not serve: refused by the submit path.
    other = indienen(ops.ctx, Indiening("0014.xml", wmo301(gemeente="0014", ident="S-2")))
    assert other.refused and other.batch is not None

    rows = refused_rows(ops)
    assert len(rows) == 2
    assert (checks.XSD, None, None) in rows
    [(reason, _gemeente, berichttype)] = [r for r in rows if r[1] == "0014"]
    assert berichttype == "WMO301" and reason
    # The accepted one is an ordinary message; the refusals are one-file aanleveringen.
    log = berichtenlog(ops.ctx, LogFilter())
    assert [r.message_pk for r in log.rows if r.message_pk is not None] == [ok.submitted.message.pk]
    verslag = aanleveren.verslag(ops.ctx, bad.batch)
    assert verslag.status == "Afgekeurd" and verslag.verzender == "medewerker"
    assert verslag.aantal_aangeleverd == 1 and verslag.aantal_incorrect == 1
    assert verslag.fouten[0].bestand == "kapot.xml" and verslag.fouten[0].fout_detail


def test_outbox_xml_refusals_are_geweigerd_in_the_berichtenlog(ops: Ops) -> None:
    outbox = ops.ctx.settings.outbox_dir
    outbox.mkdir(parents=True)
    (outbox / "a.xml").write_bytes(wmo301(ident="O-1"))
    (outbox / "b.xml").write_bytes(b"not xml at all")
    (outbox / "c.txt").write_text("geen bericht", encoding="utf-8")
    assert scan_outbox(ops.ctx.settings, ops.ctx.database, ids=ops.ctx.ids, clock=ops.clock) == 3
    assert (outbox / "done" / "a.xml").is_file()
    assert "aanlevering" in (outbox / "failed" / "b.xml.reason.txt").read_text()
    reasons = sorted(r[0] or "" for r in refused_rows(ops))
    assert reasons == sorted([checks.XSD, checks.GEEN_XML])
    batches = aanleveren.list_batches(ops.ctx, aanleveren.BatchQuery())
    assert {b.bestandsnaam for b in batches} == {"b.xml", "c.txt"}
    assert {b.verzender for b in batches} == {"outbox"}


def test_cli_submit_refusal_shows_in_messages_list(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import PROJECT_ROOT

    cpa = tmp_path / "cpa"
    cpa.mkdir()
    shutil.copy(PROJECT_ROOT / "cpa" / "dev-osb-rm.xml", cpa / "dev-osb-rm.xml")
    config = tmp_path / "ggk-ebms.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\ncpa_dir = "{cpa}"\nserved_gemeentecodes = ["0363"]\n',
        encoding="utf-8",
    )
    bad = tmp_path / "kapot.xml"
    bad.write_bytes(b"<niet-af")
    runner = CliRunner()
    env = {"COLUMNS": "250", "GGK_EBMS_ACTOR": "tester"}
    result = runner.invoke(cli, ["--config", str(config), "submit", str(bad)], env=env)
    assert result.exit_code == 1
    assert "Geweigerd in de berichtenlog" in result.output
    listed = runner.invoke(
        cli, ["--config", str(config), "messages", "list", "--status", REFUSED, "--json"], env=env
    )
    assert listed.exit_code == 0, listed.output
    assert "kapot.xml" in listed.output or checks.XSD in listed.output
