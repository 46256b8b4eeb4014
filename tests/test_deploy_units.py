"""deploy/*.service: the systemd units are valid (``systemd-analyze verify``), sandboxed as
docs/operations.md promises, and stop within the time shutdown_grace_seconds needs."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ggk_ebms.config import Settings
from tests.conftest import PROJECT_ROOT

UNITS = sorted((PROJECT_ROOT / "deploy").glob("*.service"))
INSTALLED = "/opt/ggk-ebms/venv/bin/ggk-ebms"


def _read(unit: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    return parser


def _local_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit with the installed path pointed at this checkout's ggk-ebms, so verify can check
    that the commands exist."""
    exe = Path(sys.executable).with_name("ggk-ebms")
    if not exe.exists():
        pytest.skip(f"{exe} not installed (pip install -e .)")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(exe)))
    return copy


def test_units_exist() -> None:
    assert [u.name for u in UNITS] == ["ggk-ebms-worker.service", "ggk-ebms.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_is_sandboxed_and_stops_in_time(unit: Path) -> None:
    service = dict(_read(unit)["Service"])
    assert service["User"] == "ggk-ebms" and service["Group"] == "ggk-ebms"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/ggk-ebms"  # the data folder only
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""  # no capabilities at all
    assert service["Restart"] == "on-failure"
    start_limit = dict(_read(unit)["Unit"])
    assert int(start_limit["StartLimitBurst"]) > 0 and int(start_limit["StartLimitIntervalSec"]) > 0
    assert service["KillSignal"] == "SIGTERM"
    # systemd must not SIGKILL before in-flight requests had their grace period.
    grace = Settings().shutdown_grace_seconds
    assert float(service["TimeoutStopSec"]) >= grace + 10
    assert service["ExecStart"].startswith(INSTALLED)


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed: the unit files cannot be verified here")
    copy = _local_copy(unit, tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # verify only warns (exit 0) about unknown keys and bad values: those must not be there either.
    problems = [line for line in result.stderr.splitlines() if copy.name in line or "Unknown" in line]
    assert problems == [], result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_security_exposure_is_low(unit: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    copy = _local_copy(unit, tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no offline security analysis (systemd < 252)")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    # systemd rates 0 (locked down) to 10 (unprotected); below 2.5 is its "OK" band.
    assert float(match.group(1)) < 2.5, result.stdout
