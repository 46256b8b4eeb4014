"""``ggk-ebms cpa ...`` through click's CliRunner, on a temporary SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import PROJECT_ROOT
from cpa_support import cpa_bytes, mutate
from ggk_ebms.cli.main import cli
from ggk_ebms.cpa.model import Profile
from ggk_ebms.cpa.parse import parse_agreement

DEV = PROJECT_ROOT / "certs" / "dev"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    settings = tmp_path / "settings.toml"
    settings.write_text("", encoding="utf-8")
    return {
        "GGK_EBMS_CONFIG": str(settings),
        "GGK_EBMS_DATA_DIR": str(tmp_path / "var"),
        "GGK_EBMS_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'test.db'}",
        "GGK_EBMS_AUTO_MIGRATE": "true",
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner(env=env).invoke(cli, ["cpa", *args], catch_exceptions=False)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_validate_reports_findings_and_exit_code(tmp_path: Path, env: dict[str, str]) -> None:
    good = _write(tmp_path, "good.xml", cpa_bytes())
    result = run(env, "validate", str(good))
    assert result.exit_code == 0, result.output
    assert "good.xml: valid, 2 warning(s)" in result.output
    plain_http = mutate(
        cpa_bytes(), 'cppa:uri="https://gemeente.example/ebms"', 'cppa:uri="http://gemeente.example/ebms"'
    )
    bad = _write(tmp_path, "http.xml", plain_http)
    result = run(env, "validate", str(good), str(bad))
    assert result.exit_code == 1
    assert (
        "http.xml: ERROR CPA-ENDPOINT-HTTPS at /CollaborationProtocolAgreement/PartyInfo[1]" in result.output
    )
    assert "what to do:" in result.output


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("missing.xml", None, "CPA-FILE"),
        ("picture.xml", b"\x89PNG\r\n\x1a\n", "CPA-XML"),
        ("laughs.xml", b'<!DOCTYPE a [<!ENTITY a "aaaa">]><a>&a;</a>', "CPA-XML-UNSAFE"),
        ("huge.xml", b"<a>" + b" " * (50 * 1024 * 1024) + b"</a>", "CPA-SIZE"),
    ],
)
def test_unusable_files_give_one_clear_line(
    tmp_path: Path, env: dict[str, str], name: str, content: bytes | None, rule: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run(env, "validate", str(path))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if " ERROR " in line]
    assert errors == [f"{path}: ERROR {rule} at /"]


def test_import_list_show_export_delete(tmp_path: Path, env: dict[str, str]) -> None:
    data = cpa_bytes(Profile.OSB_RM_S)
    cpa_id = parse_agreement(data).cpa_id
    path = _write(tmp_path, "agreement.xml", data)

    imported = run(env, "import", str(path))
    assert imported.exit_code == 0, imported.output
    assert f"imported as {cpa_id}" in imported.output

    again = run(env, "import", str(path))
    assert again.exit_code == 1
    assert "not imported" in again.output

    overwritten = run(env, "import", "--overwrite", str(path))
    assert overwritten.exit_code == 0, overwritten.output

    listed = run(env, "list")
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.startswith(cpa_id))
    assert "osb-rm-s" in row
    assert "urn:osb:oin:00000099000003630000" in row
    assert "agreed" in row

    shown = run(env, "show", cpa_id)
    assert shown.exit_code == 0
    for expected in (
        "Party 1: Gemeente Test",
        "PartyId: 00000099000003630000 (urn:osb:oin)",
        "MSH signal channel: A_SignalChannel (osb-be-s",
        "envelopHeenbericht-ggk_Di01",
        "https://rinis.example/ebms",
        "SHA-256 ",
        "Retries 8, RetryInterval PT3H, PersistDuration P1D",
    ):
        assert expected in shown.output, expected

    exported = run(env, "export", cpa_id)
    assert exported.stdout_bytes == data
    out = tmp_path / "out.xml"
    assert run(env, "export", cpa_id, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == data

    assert run(env, "delete", cpa_id).exit_code == 0
    assert "no CPAs stored" in run(env, "list").output
    missing = run(env, "delete", cpa_id)
    assert missing.exit_code == 1
    assert "no CPA" in missing.output


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("laughs.xml", b'<!DOCTYPE a [<!ENTITY a "aaaa">]><a>&a;</a>'),
        ("xxe.xml", b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'),
        ("huge.xml", b"<a>" + b" " * (50 * 1024 * 1024) + b"</a>"),
        ("notxml.xml", b"PK\x03\x04 zip, not xml"),
        ("missing-cert.xml", mutate(cpa_bytes(), 'ClientCertificateRef cppa:certId="A_ClientCert"',
                                    'ClientCertificateRef cppa:certId="A_NoSuchCert"')),
        ("expired.xml", mutate(mutate(cpa_bytes(), "<cppa:End>2029-12-31", "<cppa:End>2021-12-31"),
                               "<cppa:Start>2026-01-01", "<cppa:Start>2021-01-01")),
    ],
)  # fmt: skip
def test_nothing_stored_when_validation_fails(
    tmp_path: Path, env: dict[str, str], name: str, content: bytes
) -> None:
    path = _write(tmp_path, name, content)
    result = run(env, "import", str(path))
    assert result.exit_code == 1
    assert f"{path}: not imported" in result.output
    assert "no CPAs stored" in run(env, "list").output


def test_one_bad_file_does_not_block_a_good_one(tmp_path: Path, env: dict[str, str]) -> None:
    good = _write(tmp_path, "good.xml", cpa_bytes())
    bad = _write(tmp_path, "bad.xml", b"nope")
    result = run(env, "import", str(bad), str(good))
    assert result.exit_code == 1
    listed = run(env, "list").output
    assert parse_agreement(cpa_bytes()).cpa_id in listed


def test_create_writes_a_valid_cpa(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "new.xml"
    result = run(
        env, "create", "--profile", "osb-be-e", "--profile-name", "Gemeente Test iWmo",
        "--party-name", "Gemeente Test", "--party-oin", "00000099000003630000",
        "--party-endpoint", "https://gemeente.example/ebms",
        "--party-server-cert", str(DEV / "gemeente" / "server.pem"),
        "--party-client-cert", str(DEV / "gemeente" / "client.pem"),
        "--partner-name", "RINIS", "--partner-oin", "00000099000001000000",
        "--partner-endpoint", "https://rinis.example/ebms",
        "--partner-server-cert", str(DEV / "rinis" / "server.pem"),
        "--partner-client-cert", str(DEV / "rinis" / "client.pem"),
        "--start", "2026-01-01", "--connection", "internet", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    agreement = parse_agreement(out.read_bytes())
    assert agreement.cpa_id == "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_1"
    assert f"{agreement.end:%Y-%m-%d}" == "2035-12-30"  # the certificates' end
    assert b"connectietype Internet" in out.read_bytes()
    assert b"profielnaam: Gemeente Test iWmo" in out.read_bytes()
    assert run(env, "validate", str(out)).exit_code == 0


def test_create_refuses_bad_input_and_writes_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "new.xml"
    result = run(
        env, "create", "--party-name", "G", "--party-endpoint", "http://insecure.example/ebms",
        "--party-server-cert", str(DEV / "gemeente" / "server.pem"),
        "--party-client-cert", str(DEV / "gemeente" / "client.pem"),
        "--partner-name", "R", "--partner-oin", "00000099000001000000",
        "--partner-endpoint", "https://rinis.example/ebms",
        "--partner-server-cert", str(DEV / "rinis" / "server.pem"),
        "--partner-client-cert", str(DEV / "rinis" / "client.pem"), "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "https" in result.output
    assert not out.exists()


def test_create_import_stores_the_portal_fields_shown_by_list_and_show(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import json

    out = tmp_path / "new.xml"
    result = run(
        env, "create", "--profielnaam", "Gemeente Test iJw", "--connectietype", "Internet",
        "--party-name", "Gemeente Test", "--party-oin", "00000099000003630000",
        "--party-endpoint", "https://gemeente.example/ebms",
        "--party-server-cert", str(DEV / "gemeente" / "server.pem"),
        "--party-client-cert", str(DEV / "gemeente" / "client.pem"),
        "--partner-name", "RINIS", "--partner-oin", "00000099000001000000",
        "--partner-endpoint", "https://rinis.example/ebms",
        "--partner-server-cert", str(DEV / "rinis" / "server.pem"),
        "--partner-client-cert", str(DEV / "rinis" / "client.pem"),
        "--start", "2026-01-01", "--end", "2030-01-01", "--import", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cpa_id = parse_agreement(out.read_bytes()).cpa_id
    assert b"connectietype Internet" in out.read_bytes()  # --connectietype drives the CPA itself
    listed = json.loads(run(env, "list", "--json").output)
    [record] = listed["cpas"]
    assert record["cpa_id"] == cpa_id
    assert record["profielnaam"] == "Gemeente Test iJw" and record["connectietype"] == "Internet"
    table = run(env, "list").output
    assert "Gemeente Test iJw" in table and "Internet" in table
    portal = json.loads(run(env, "show", cpa_id, "--json").output)["portal"]
    assert portal["oin_of_hrn"] == "00000099000003630000"
    assert portal["endpoint"] == "https://gemeente.example/ebms"
    assert portal["ingangsdatum"].startswith("2026-01-01") and portal["einddatum"].startswith("2030-01-01")
    assert portal["server_certificate_stored"] and portal["client_certificate_stored"]
    shown = run(env, "show", cpa_id).output
    assert "profielnaam" in shown and "Gemeente Test iJw" in shown and "Internet" in shown
    # Without --import nothing is stored; the CPA goes to stdout as before.
    again = run(
        env, "create", "--profielnaam", "X", "--party-name", "G", "--party-oin", "00000099000003630000",
        "--party-endpoint", "https://gemeente.example/ebms",
        "--party-server-cert", str(DEV / "gemeente" / "server.pem"),
        "--party-client-cert", str(DEV / "gemeente" / "client.pem"),
        "--partner-name", "R", "--partner-oin", "00000099000001000001",
        "--partner-endpoint", "https://rinis.example/ebms",
        "--partner-server-cert", str(DEV / "rinis" / "server.pem"),
        "--partner-client-cert", str(DEV / "rinis" / "client.pem"),
    )  # fmt: skip
    assert again.exit_code == 0 and b"CollaborationProtocolAgreement" in again.stdout_bytes
    assert len(json.loads(run(env, "list", "--json").output)["cpas"]) == 1
