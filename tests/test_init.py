"""``ggk-ebms init``: a guided set-up that checks every answer against the real thing and writes
nothing unless all hold; ``dev-certs --oin --name --host`` makes the test PKI for it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ggk_ebms.cli.main import cli
from ggk_ebms.config import load
from ggk_ebms.security.identity import oin_of
from ggk_ebms.setup.certcheck import chain_problem, check_certificate, host_in_certificate
from ggk_ebms.store.db import Database
from ggk_ebms.testing.pki import create_ca, issue_server_certificate

OIN = "00000099001234560000"
HOST = "ebms.testdorp.example"
NOW = datetime.now(UTC)


def _pki(folder: Path, *extra: str) -> Path:
    result = CliRunner().invoke(
        cli,
        [
            "dev-certs",
            "--out",
            str(folder),
            "--oin",
            OIN,
            "--name",
            "Gemeente Testdorp",
            "--host",
            HOST,
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pki(tmp_path_factory.mktemp("pki") / "pki")


def _args(pki: Path, tmp: Path, **changes: str) -> list[str]:
    values = {
        "--organisation": "Gemeente Testdorp",
        "--oin": OIN,
        "--gemeentecodes": "0363, 0518",
        "--data-dir": str(tmp / "data"),
        "--database-url": "",
        "--server-cert": str(pki / "gemeente" / "server.pem"),
        "--server-key": str(pki / "gemeente" / "server-key.pem"),
        "--client-cert": str(pki / "gemeente" / "client.pem"),
        "--client-key": str(pki / "gemeente" / "client-key.pem"),
        "--trust-store": str(pki / "ca.pem"),
        "--endpoint-url": f"https://{HOST}:8443/ggk/ebms",
        "--listen": "127.0.0.1:8443",
        "--out": str(tmp / "ggk-ebms.toml"),
    }
    values.update(changes)
    return [item for pair in values.items() for item in pair]


def _init(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["init", *args], input=input)


def test_dev_certs_carry_the_given_oin_name_and_host(pki: Path) -> None:
    from cryptography import x509

    server = x509.load_pem_x509_certificate((pki / "gemeente" / "server.pem").read_bytes())
    client = x509.load_pem_x509_certificate((pki / "gemeente" / "client.pem").read_bytes())
    assert oin_of(server) == oin_of(client) == OIN
    assert host_in_certificate(HOST, server) and host_in_certificate("localhost", server)
    assert "Gemeente Testdorp" in client.subject.rfc4514_string()
    result = CliRunner().invoke(
        cli, ["dev-certs", "--out", str(pki.parent / "x"), "--oin", "00000001001234560000"]
    )
    assert result.exit_code == 1 and "test OIN" in result.output


def test_test_setup_writes_settings_folders_and_database(pki: Path, tmp_path: Path, db_url: str) -> None:
    result = _init(*_args(pki, tmp_path, **{"--database-url": db_url}), "--no-input", "--test-setup")
    assert result.exit_code == 0, result.output
    out = tmp_path / "ggk-ebms.toml"
    assert out.stat().st_mode & 0o007 == 0  # may hold a database password
    text = out.read_text()
    assert "# TEST SET-UP" in text and "# Our TLS server certificate (PEM)." in text
    settings = load(out)
    assert settings.party_ids == [OIN]
    assert settings.served_gemeentecodes == ["0363", "0518"]
    assert (settings.host, settings.port, settings.path) == ("127.0.0.1", 8443, "/ggk/ebms")
    assert settings.message_id_host == HOST
    assert settings.routes_file is None  # no dev routing table in a real set-up
    assert settings.signing_key == (pki / "gemeente" / "client-key.pem").resolve()
    for folder in ("cpa", "outbox", "backups"):
        assert (tmp_path / "data" / folder).is_dir()
    database = Database(settings.effective_database_url)
    try:
        assert database.is_current()
    finally:
        database.dispose()
    assert "config check:" in result.output and "0 error(s)" in result.output
    assert "Volgende stappen" in result.output and "cpa import" in result.output and "ping" in result.output


def test_dev_certificates_and_test_oin_need_test_setup(pki: Path, tmp_path: Path) -> None:
    result = _init(*_args(pki, tmp_path), "--no-input")
    assert result.exit_code == 1
    assert "test-OIN" in result.output and "TEST certificate" in result.output
    assert "niets geschreven" in result.output
    assert not (tmp_path / "ggk-ebms.toml").exists() and not (tmp_path / "data").exists()


def _expired_pki(tmp: Path) -> Path:
    return _pki(tmp / "old", "--not-before", (NOW - timedelta(days=10)).strftime("%Y-%m-%d"), "--days", "2")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"--oin": "00000099009999990000"}, "carries OIN 00000099001234560000"),
        (
            {"--endpoint-url": "https://ebms.elders.example/ebms"},
            "ebms.elders.example van de endpoint-URL staat niet",
        ),
        ({"--server-key": "gemeente/client-key.pem"}, "private key does not belong"),
        (
            {"--client-cert": "gemeente/server.pem", "--client-key": "gemeente/server-key.pem"},
            "lacks clientAuth",
        ),
        ({"--trust-store": "OTHER"}, "does not chain to the trust store"),
        ({"--server-cert": "EXPIRED"}, "expired on"),
        ({"--database-url": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"}, "database:"),
    ],
)
def test_each_wrong_answer_is_refused_and_nothing_written(
    pki: Path, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    resolved = {}
    for flag, value in change.items():
        if value == "OTHER":
            value = str(_pki(tmp_path / "other") / "ca.pem")
        elif value == "EXPIRED":
            old = _expired_pki(tmp_path)
            value = str(old / "gemeente" / "server.pem")
            resolved["--server-key"] = str(old / "gemeente" / "server-key.pem")
            resolved["--trust-store"] = str(old / "ca.pem")
            resolved["--client-cert"] = str(old / "gemeente" / "client.pem")
            resolved["--client-key"] = str(old / "gemeente" / "client-key.pem")
        elif value.startswith("gemeente/"):
            value = str(pki / value)
        resolved[flag] = value
    result = _init(*_args(pki, tmp_path, **resolved), "--no-input", "--test-setup")
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert not (tmp_path / "ggk-ebms.toml").exists()


def test_malformed_answers_are_refused_by_the_flags(pki: Path, tmp_path: Path) -> None:
    for flag, value, why in [
        ("--oin", "1234", "20 cijfers"),
        ("--gemeentecodes", "GM0363", "4 cijfers"),
        ("--endpoint-url", "http://ebms.testdorp.example/ebms", "https://"),
        ("--listen", "8443", "host:poort"),
    ]:
        result = _init(*_args(pki, tmp_path, **{flag: value}), "--no-input", "--test-setup")
        assert result.exit_code == 2, result.output
        assert why in result.output


def test_interactive_prompts_ask_again_on_a_wrong_answer(pki: Path, tmp_path: Path) -> None:
    answers = [
        "Gemeente Testdorp",
        "1234",  # not an OIN: asked again
        OIN,
        "0363",
        str(tmp_path / "data"),
        "",  # database: SQLite in the data folder
        str(pki / "gemeente" / "server.pem"),
        str(pki / "gemeente" / "server-key.pem"),
        str(pki / "gemeente" / "client.pem"),
        str(pki / "gemeente" / "client-key.pem"),
        str(pki / "ca.pem"),
        f"https://{HOST}/ebms",
        "",  # listen: the default 0.0.0.0:8443
    ]
    result = _init("--test-setup", "--out", str(tmp_path / "s.toml"), input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "20 cijfers" in result.output
    settings = load(tmp_path / "s.toml")
    assert settings.party_ids == [OIN] and settings.host == "0.0.0.0" and settings.port == 8443
    assert settings.effective_database_url.endswith("data/ggk-ebms.db")
    assert not os.environ.get("GGK_EBMS_CONFIG")


def test_chain_through_an_intermediate() -> None:
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=400)
    root = create_ca("Test Root", not_before=start, not_after=end)
    middle = create_ca("Test Intermediate", not_before=start, not_after=end, issuer=root)
    leaf = issue_server_certificate(middle, oin=OIN, not_before=start, not_after=end, dns_names=(HOST,))
    assert chain_problem([leaf.certificate, middle.certificate], [root.certificate], NOW) is None
    assert "does not chain" in (chain_problem([leaf.certificate], [root.certificate], NOW) or "")
    findings = check_certificate(
        "server",
        [leaf.certificate, middle.certificate],
        leaf.private_key,
        [root.certificate],
        oin=OIN,
        now=NOW,
        allow_test=True,
    )
    assert findings == []
    soon = check_certificate(
        "server",
        [leaf.certificate, middle.certificate],
        leaf.private_key,
        [root.certificate],
        oin=OIN,
        now=end - timedelta(days=10),
        allow_test=True,
    )
    assert [f.error for f in soon] == [False] and "expires on" in soon[0].text
    assert host_in_certificate(HOST.upper(), leaf.certificate)
    assert not host_in_certificate("other.testdorp.example", leaf.certificate)


def test_a_code_outside_the_cbs_list_is_a_test_code_only(pki: Path, tmp_path: Path) -> None:
    result = _init(*_args(pki, tmp_path, **{"--gemeentecodes": "0363,9999"}), "--no-input")
    assert result.exit_code == 1 and "9999 staan niet in de CBS-lijst" in result.output
    result = _init(*_args(pki, tmp_path, **{"--gemeentecodes": "0363,9999"}), "--no-input", "--test-setup")
    assert result.exit_code == 0, result.output
    settings = load(tmp_path / "ggk-ebms.toml")
    assert settings.served_gemeentecodes == ["0363", "9999"] and settings.test_gemeentecodes == ["9999"]
