"""``ggk-ebms ketendata export|list|fetch|delete|rotate-key`` on a week of traffic."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.clock import FixedClock
from ggk_ebms.store.db import Database
from tests.ketendata_support import BSNS, NAMES, WEEK_START, Traffic, a_week


def test_cli_export_list_fetch_zip_and_rotate(db: Database, tmp_path: Path) -> None:
    a_week(Traffic(db, FixedClock(WEEK_START)))
    key = tmp_path / "secret" / "ketendata.key"
    env = {
        "GGK_EBMS_DATABASE_URL": db.url,
        "GGK_EBMS_DATA_DIR": str(tmp_path),
        "GGK_EBMS_KETENDATA_KEY_FILE": str(key),
        "COLUMNS": "200",
    }
    run = CliRunner().invoke
    result = run(cli, ["ketendata", "export", "--since", "2026-11-30", "--until", "2026-12-07"], env=env)
    assert result.exit_code == 0, result.output
    assert "6 berichten, 1 dubbel verwijderd, 18 bestanden" in result.output
    assert key.exists()

    result = run(cli, ["ketendata", "list", "--nieuw"], env=env)
    assert result.exit_code == 0, result.output
    assert "JW301_ToegewezenProduct.csv" in result.output and "nee" in result.output

    out = tmp_path / "los"
    result = run(cli, ["ketendata", "fetch", "1", "2", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert len(list(out.iterdir())) == 2

    archive_path = tmp_path / "nieuw.zip"
    result = run(cli, ["ketendata", "fetch", "--nieuw", "-o", str(archive_path)], env=env)
    assert result.exit_code == 0, result.output
    assert "16 bestanden" in result.output
    with zipfile.ZipFile(io.BytesIO(archive_path.read_bytes())) as archive:
        text = b"".join(archive.read(n) for n in archive.namelist()).decode()
    assert not any(secret in text for secret in NAMES | BSNS)
    result = run(cli, ["ketendata", "fetch", "--nieuw", "-o", str(archive_path)], env=env)
    assert "geen nieuwe Ketendata-bestanden" in result.output

    result = run(cli, ["ketendata", "export", "--historie"], env=env)
    assert result.exit_code != 0 and "--since" in result.output

    result = run(cli, ["ketendata", "rotate-key"], env=env)
    assert result.exit_code == 0, result.output
    assert "nieuwe sleutel" in result.output and "(was " in result.output

    result = run(cli, ["ketendata", "delete", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert "export 1 verwijderd (18 bestanden)" in result.output
    result = run(cli, ["ketendata", "list"], env=env)
    assert "geen Ketendata-bestanden" in result.output
