"""``ggk-ebms cbs``: a bad name is refused with the rule named; a good file is queued for RINIS
with its referentienummer shown; ``status`` lists it; ``toestemming`` builds and queues the CSV."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.stuf.envelope import parse_envelope
from tests.endpoint import CPA_RM, cpa_folder, party_settings


def test_cbs_cli(db: Database, tmp_path: Path) -> None:
    folder = cpa_folder(tmp_path)
    settings = party_settings("gemeente", tmp_path, db.url, folder)
    list(import_cpa_dir(settings, db))
    env = {
        "GGK_EBMS_DATABASE_URL": db.url,
        "GGK_EBMS_DATA_DIR": str(tmp_path),
        "GGK_EBMS_CPA_DIR": str(folder),
        "GGK_EBMS_ROUTES_FILE": "",
        "COLUMNS": "200",
    }
    run = CliRunner().invoke
    good = tmp_path / "WmoBasis_GM0363_2026H1.csv"
    good.write_bytes(b"Gemeentecode;BSN\r\n0363;123456782\r\n")
    result = run(cli, ["cbs", "aanleveren", str(good)], env=env)
    assert result.exit_code != 0 and "cbs_cpa_id" in result.output

    env["GGK_EBMS_CBS_CPA_ID"] = CPA_RM
    bad = tmp_path / "WmoBasis_GM0363_2026.csv"
    bad.write_bytes(b"x")
    result = run(cli, ["cbs", "aanleveren", str(bad)], env=env)
    assert result.exit_code != 0
    assert "regel CBS-N6" in result.output and "JJJJH1 of JJJJH2" in result.output

    result = run(cli, ["cbs", "aanleveren", str(good)], env=env)
    assert result.exit_code == 0, result.output
    ref = re.search(r"referentienummer (\d{8}-\d{6})", result.output)
    assert ref is not None
    (queued,) = MessageStore(db).list(direction="out", kind="business")
    stuf = parse_envelope(MessageStore(db).parts(queued.pk)[0].data)
    assert stuf.payload is not None and stuf.payload.bestandsnaam == f"{ref.group(1)}_{good.name}"
    assert "123456782" not in result.output

    result = run(cli, ["cbs", "status"], env=env)
    assert result.exit_code == 0 and ref.group(1) in result.output and "Created" in result.output

    result = run(
        cli,
        [
            "cbs",
            "toestemming",
            "--gemeentecode",
            "0363",
            "--organisatie",
            "Gemeente Amsterdam",
            "--naam",
            "A. Ambtenaar",
            "--email",
            "monitor@gemeente.test",
            "--telefoon",
            "0201234567",
            "--periode",
            "2026H1",
            "--set",
            "wmo",
            "--set",
            "jw",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Toestemming_GM0363_2026H1.csv: verzonden" in result.output
