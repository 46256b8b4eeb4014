"""Expiry warnings (ggk_ebms/expiry.py, `config check`) and the dev-material guard of `serve`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.config import DEV_GEMEENTE_OIN, Settings
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import ConfigError
from ggk_ebms.expiry import collect, expiring
from ggk_ebms.security.devguard import is_loopback, refuse_public_dev_material
from ggk_ebms.testing.pki import create_ca
from tests.endpoint import PROJECT_ROOT, sync_cpa


def dev_agreement():  # type: ignore[no-untyped-def]
    return parse_agreement(sync_cpa(), max_bytes=1 << 22)


def test_nothing_expires_far_from_the_ends() -> None:
    agreement = dev_agreement()
    start = agreement.start + timedelta(days=1)
    assert expiring([], [agreement], [DEV_GEMEENTE_OIN], now=start, within=timedelta(days=1)) == []


def test_cpa_and_certificates_are_listed_ahead_of_their_end() -> None:
    agreement = dev_agreement()
    now = agreement.end - timedelta(days=10)
    items = expiring([], [agreement], [DEV_GEMEENTE_OIN], now=now, within=timedelta(days=30))
    cpa_items = [i for i in items if i.kind == "cpa"]
    assert [i.days_left for i in cpa_items] == [10]
    assert cpa_items[0].describe().startswith(f"CPA {agreement.cpa_id} expires in 10 day(s)")
    owners = {i.owner for i in items if i.kind == "certificate"}
    # The dev certificates outlive... or not: whichever are listed, they are sorted soonest first.
    assert owners <= {"ours", "partner"}
    assert [i.not_after for i in items] == sorted(i.not_after for i in items)


def test_own_certificate_files_are_listed(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca = create_ca("short TEST CA", not_before=now - timedelta(days=1), not_after=now + timedelta(days=5))
    cert = tmp_path / "server.pem"
    cert.write_bytes(ca.certificate_pem())
    settings = Settings(tls_server_cert=cert, expiry_warning_days=7, party_ids=[DEV_GEMEENTE_OIN])
    items = collect(settings, [], now)
    assert [(i.name, i.owner, i.days_left) for i in items if i.name == "tls_server_cert"] == [
        ("tls_server_cert", "ours", 4)
    ]
    assert [
        i for i in collect(settings.replace(expiry_warning_days=3), [], now) if i.name == "tls_server_cert"
    ] == []


def test_expired_items_have_negative_days() -> None:
    agreement = dev_agreement()
    items = expiring([], [agreement], [], now=agreement.end + timedelta(days=2), within=timedelta(days=0))
    assert any(i.kind == "cpa" and i.expired and i.days_left == -2 for i in items)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("192.0.2.1", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_dev_certificates_on_a_public_address_are_refused() -> None:
    dev = Settings(host="0.0.0.0")
    with pytest.raises(ConfigError, match="allow_dev_certificates_public"):
        refuse_public_dev_material(dev)
    refuse_public_dev_material(dev.replace(allow_dev_certificates_public=True))
    refuse_public_dev_material(dev.replace(host="127.0.0.1"))


def test_own_certificates_on_a_public_address_are_fine(tmp_path: Path) -> None:
    own = {
        name: tmp_path / f"{name}.pem"
        for name in (
            "tls_server_cert",
            "tls_server_key",
            "tls_client_cert",
            "tls_client_key",
            "tls_trust_store",
            "signing_key",
            "encryption_key",
        )
    }
    refuse_public_dev_material(Settings(host="0.0.0.0", **own))  # type: ignore[arg-type]


def test_serve_refuses_dev_material_on_a_public_address(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {
        "GGK_EBMS_DATA_DIR": str(tmp_path),
        "GGK_EBMS_HOST": "0.0.0.0",
        "GGK_EBMS_PORT": "0",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "ggk_ebms", "serve"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "allow_dev_certificates_public" in result.stderr


def test_config_check_warns_about_our_certificate_within_the_window(tmp_path: Path) -> None:
    from ggk_ebms.cli.config_cmd import WARN, run_checks

    now = datetime.now(UTC)
    ca = create_ca("short TEST CA", not_before=now - timedelta(days=1), not_after=now + timedelta(days=5))
    cert = tmp_path / "server.pem"
    cert.write_bytes(ca.certificate_pem())
    settings = Settings(data_dir=tmp_path, tls_server_cert=cert, routes_file=None, cpa_autoimport=False)
    warned = [
        f for f in run_checks(settings.replace(expiry_warning_days=7), now) if f.subject == "tls_server_cert"
    ]
    assert warned and warned[0].level == WARN and "expires on" in warned[0].text
    quiet = [
        f for f in run_checks(settings.replace(expiry_warning_days=3), now) if f.subject == "tls_server_cert"
    ]
    assert quiet and quiet[0].level != WARN
