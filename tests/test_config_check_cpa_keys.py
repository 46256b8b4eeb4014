"""`config check` proves each configured key matches our certificate in the stored CPAs (docs/signing.md)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from tests.endpoint import DEV, PROJECT_ROOT


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "GGK_EBMS_DATA_DIR": str(tmp_path / "var"),
        "GGK_EBMS_CPA_DIR": str(PROJECT_ROOT / "cpa"),
        "GGK_EBMS_ROUTES_FILE": "",
    }
    for name in ("tls_server_cert", "tls_client_cert"):
        env[f"GGK_EBMS_{name.upper()}"] = str(DEV / "gemeente" / f"{name.split('_')[1]}.pem")
    for name, file in (
        ("tls_server_key", "server-key.pem"),
        ("tls_client_key", "client-key.pem"),
        ("signing_key", "client-key.pem"),
        ("encryption_key", "client-key.pem"),
    ):
        env[f"GGK_EBMS_{name.upper()}"] = str(DEV / "gemeente" / file)
    env["GGK_EBMS_TLS_TRUST_STORE"] = str(DEV / "ca.pem")
    env.update(extra)
    return env


def _import(env: dict[str, str]) -> None:
    files = [str(p) for p in sorted((PROJECT_ROOT / "cpa").glob("dev-osb-*.xml"))]
    result = CliRunner().invoke(cli, ["cpa", "import", *files], env=env)
    assert result.exit_code == 0, result.output


def test_matching_keys_pass(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _import(env)
    result = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("our keys and certificates match the CPA") == 6


def test_a_signing_key_of_another_party_is_an_error_naming_the_cpa(tmp_path: Path) -> None:
    env = _env(tmp_path, GGK_EBMS_SIGNING_KEY=str(DEV / "rinis" / "client-key.pem"))
    _import(env)
    result = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("ERROR")]
    assert any("osb-rm-s-1" in line and "signing_key does not match" in line for line in errors)
    assert not any("_osb-rm-1:" in line for line in errors)  # unsigned CPAs do not use the key
