"""``ggk-ebms config show|check|docs`` and ``ggk-ebms db upgrade|current`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ggk_ebms.cli.config_cmd import configuration_markdown
from ggk_ebms.cli.main import cli
from ggk_ebms.store.db import Database

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV = PROJECT_ROOT / "certs" / "dev"


def run(settings_file: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(settings_file), *args], catch_exceptions=False)


def write_settings(tmp_path: Path, database_url: str, **overrides: object) -> Path:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": str(tmp_path / "var"),
        "cpa_dir": str(tmp_path / "cpa"),
        "tls_server_cert": str(DEV / "gemeente" / "server.pem"),
        "tls_server_key": str(DEV / "gemeente" / "server-key.pem"),
        "tls_client_cert": str(DEV / "gemeente" / "client.pem"),
        "tls_client_key": str(DEV / "gemeente" / "client-key.pem"),
        "tls_trust_store": str(DEV / "ca.pem"),
        "signing_key": str(DEV / "gemeente" / "client-key.pem"),
        "encryption_key": str(DEV / "gemeente" / "client-key.pem"),
        "auto_migrate": False,
    }
    values.update(overrides)
    (tmp_path / "cpa").mkdir(exist_ok=True)
    lines = []
    for key, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else f'"{value}"'
        lines.append(f"{key} = {text}")
    path = tmp_path / "ggk-ebms.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lines_of(result: Result, level: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(level)]


def test_db_upgrade_and_current(tmp_path: Path, db_url: str) -> None:
    settings = write_settings(tmp_path, db_url)
    before = run(settings, "db", "current")
    assert before.exit_code == 0
    assert "ggk-ebms db upgrade" in before.output

    upgraded = run(settings, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    head = Database(db_url).head_revision()
    assert f"revision {head} (latest)" in upgraded.output
    assert "upgraded from empty" in upgraded.output

    again = run(settings, "db", "upgrade")
    assert f"already at revision {head}" in again.output

    current = run(settings, "db", "current")
    assert current.output.strip() == f"{head} (latest)"


def test_db_current_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    database_file = tmp_path / "var" / "never.db"
    result = run(write_settings(tmp_path, f"sqlite:///{database_file}"), "db", "current")
    assert result.exit_code == 0
    assert "no database yet" in result.output
    assert not database_file.exists()


def test_db_upgrade_reports_an_unreachable_database(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, "postgresql+psycopg://postgres:topsecret@127.0.0.1:1/test")
    result = run(settings, "db", "upgrade")
    assert result.exit_code == 1
    assert "unavailable" in result.output or "unreachable" in result.output
    assert "topsecret" not in result.output


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, "postgresql+psycopg://ebms:topsecret@db.example:5432/ebms")
    result = run(settings, "config", "show")
    assert result.exit_code == 0
    assert "topsecret" not in result.output
    assert "***" in result.output
    for name in ("party_ids", "database_url", "tls_trust_store", "payload_schemas"):
        assert name in result.output


def test_config_check_all_good_with_dev_material_warned(tmp_path: Path, db_url: str) -> None:
    settings = write_settings(tmp_path, db_url)
    assert run(settings, "db", "upgrade").exit_code == 0
    result = run(settings, "config", "check")
    assert result.exit_code == 0, result.output
    assert lines_of(result, "ERROR") == []
    assert any("test material, never for production" in line for line in lines_of(result, "WARN"))
    assert any(
        "payload_schemas: not set: structural payload checks only" in line
        for line in result.output.splitlines()
    )
    assert any(line.startswith("OK    database") and "latest" in line for line in result.output.splitlines())
    assert any(line.startswith("OK    tls_server_key") for line in result.output.splitlines())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"tls_server_key": str(DEV / "gemeente" / "client-key.pem")}, "tls_server_key: "),
        (
            {"tls_client_cert": "/nonexistent/client.pem"},
            "tls_client_cert: /nonexistent/client.pem does not exist",
        ),
        ({"tls_trust_store": str(DEV / "gemeente" / "client-key.pem")}, "tls_trust_store: "),
        ({"signing_key": str(DEV / "ca.pem")}, "signing_key: "),
        ({"cpa_dir": "/nonexistent/cpa"}, "cpa_dir: /nonexistent/cpa is not a folder"),
        ({"payload_schemas": "/nonexistent/xsd"}, "payload_schemas: /nonexistent/xsd is not a folder"),
        ({"key_passphrase_env": "GGK_EBMS_TEST_UNSET_PASSPHRASE"}, "key passphrase: "),
    ],
    ids=[
        "key-of-other-cert",
        "missing-cert",
        "trust-store-not-certs",
        "key-not-a-key",
        "cpa-dir",
        "schemas",
        "passphrase-env-unset",
    ],
)
def test_config_check_errors(tmp_path: Path, overrides: dict[str, object], expected: str) -> None:
    settings = write_settings(tmp_path, f"sqlite:///{tmp_path / 'ok.db'}", **overrides)
    assert run(settings, "db", "upgrade").exit_code == 0
    result = run(settings, "config", "check")
    assert result.exit_code == 1
    errors = lines_of(result, "ERROR")
    assert len(errors) >= 1
    assert any(expected in line for line in errors), result.output


def test_config_check_unmigrated_database(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, f"sqlite:///{tmp_path / 'new.db'}")
    result = run(settings, "config", "check")
    assert result.exit_code == 1
    [error] = lines_of(result, "ERROR")
    assert "database" in error
    assert "run `ggk-ebms db upgrade`" in error
    assert not (tmp_path / "new.db").exists()
    # With auto_migrate the server upgrades at start: a warning, not an error.
    lenient = run(
        write_settings(tmp_path, f"sqlite:///{tmp_path / 'new.db'}", auto_migrate=True), "config", "check"
    )
    assert lenient.exit_code == 0
    assert any("db upgrade" in line for line in lines_of(lenient, "WARN"))


def test_config_check_unreadable_settings_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("port = [", encoding="utf-8")
    result = run(broken, "config", "check")
    assert result.exit_code == 1
    assert lines_of(result, "ERROR")[0].startswith("ERROR settings:")


def test_configuration_docs_are_up_to_date() -> None:
    committed = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == configuration_markdown(), (
        "run `ggk-ebms config docs` and commit docs/configuration.md"
    )


def test_config_docs_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    settings = write_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    assert run(settings, "config", "docs", "--check", "--out", str(out)).exit_code == 1
    assert run(settings, "config", "docs", "--out", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8") == configuration_markdown()
    assert run(settings, "config", "docs", "--check", "--out", str(out)).exit_code == 0
