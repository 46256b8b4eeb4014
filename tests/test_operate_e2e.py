"""A beheerder's path, as docs/operations.md describes it: a test PKI of one's own
(``dev-certs --oin --name``), ``init --test-setup`` for the gemeente and for a counterpart playing
RINIS, a CPA between them, both served as separate processes, and a Ping that gets its Pong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from tests.process import ServerProcess, free_port

OIN = "00000099001234560000"
RINIS_OIN = "00000099000001000000"


def _ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.output


def _init(tmp: Path, party: str, oin: str, name: str, port: int, db_url: str) -> Path:
    pki = tmp / "pki"
    config = tmp / f"{party}.toml"
    _ok(
        "init",
        "--no-input",
        "--test-setup",
        "--organisation", name,
        "--oin", oin,
        "--gemeentecodes", "0363",
        "--data-dir", str(tmp / party),
        "--database-url", db_url,
        "--server-cert", str(pki / party / "server.pem"),
        "--server-key", str(pki / party / "server-key.pem"),
        "--client-cert", str(pki / party / "client.pem"),
        "--client-key", str(pki / party / "client-key.pem"),
        "--trust-store", str(pki / "ca.pem"),
        "--endpoint-url", f"https://localhost:{port}/ebms",
        "--listen", f"127.0.0.1:{port}",
        "--out", str(config),
    )  # fmt: skip
    with config.open("a") as settings:
        settings.write("ketendata_schedule = false\n")  # not part of this path
    return config


def test_from_an_empty_folder_to_ping_pong(tmp_path: Path, db_url: str) -> None:
    _ok(
        "dev-certs",
        "--out",
        str(tmp_path / "pki"),
        "--oin",
        OIN,
        "--name",
        "Gemeente Testdorp",
        "--host",
        "localhost",
    )
    gemeente_port, rinis_port = free_port(), free_port()
    # One database each: the gemeente on the test's database, the counterpart on SQLite.
    gemeente = _init(tmp_path, "gemeente", OIN, "Gemeente Testdorp", gemeente_port, db_url)
    rinis = _init(tmp_path, "rinis", RINIS_OIN, "RINIS", rinis_port, f"sqlite:///{tmp_path / 'rinis.db'}")

    pki = tmp_path / "pki"
    cpa = tmp_path / "cpa.xml"
    _ok(
        "--config", str(gemeente),
        "cpa", "create",
        "--party-name", "Gemeente Testdorp",
        "--party-endpoint", f"https://localhost:{gemeente_port}/ebms",
        "--party-server-cert", str(pki / "gemeente" / "server.pem"),
        "--party-client-cert", str(pki / "gemeente" / "client.pem"),
        "--partner-name", "RINIS",
        "--partner-oin", RINIS_OIN,
        "--partner-endpoint", f"https://localhost:{rinis_port}/ebms",
        "--partner-server-cert", str(pki / "rinis" / "server.pem"),
        "--partner-client-cert", str(pki / "rinis" / "client.pem"),
        "-o", str(cpa),
    )  # fmt: skip
    _ok("--config", str(gemeente), "cpa", "import", str(cpa))
    _ok("--config", str(rinis), "cpa", "import", str(cpa))
    listing = _ok("--config", str(gemeente), "cpa", "list")
    cpa_id = next(word for line in listing.splitlines() for word in line.split() if word.startswith("ggk-"))

    servers = [
        ServerProcess(gemeente, gemeente_port, tmp_path / "gemeente.log"),
        ServerProcess(rinis, rinis_port, tmp_path / "rinis.log"),
    ]
    try:
        for server in servers:
            server.start()
        ping = subprocess.run(
            [sys.executable, "-m", "ggk_ebms", "--config", str(gemeente), "ping", "--cpa", cpa_id],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert "Pong" in ping.stdout
        back = subprocess.run(
            [sys.executable, "-m", "ggk_ebms", "--config", str(rinis), "ping", "--partner", OIN],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert back.returncode == 0, back.stdout + back.stderr
    finally:
        for server in servers:
            server.stop()
