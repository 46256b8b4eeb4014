"""One expiry setting: ``expiry_warning_days`` governs CPAs, the certificates in them and our own
certificate files; ``cpa_expiry_warn_days`` is its deprecated old name (config check warns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.cli.config_cmd import WARN, run_checks
from ggk_ebms.config import load
from ggk_ebms.errors import ConfigError
from ggk_ebms.store.cpa_expiry import stored_expiries
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from tests.ops_support import ops_context, ops_settings


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ggk-ebms.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_old_name_still_counts_and_config_check_warns(tmp_path: Path) -> None:
    settings = load(settings_file(tmp_path, "cpa_expiry_warn_days = 12\n"), environ={})
    assert settings.expiry_warning_days == 12
    findings = [f for f in run_checks(settings, datetime.now(UTC)) if f.subject == "cpa_expiry_warn_days"]
    assert [f.level for f in findings] == [WARN]
    assert "expiry_warning_days" in findings[0].text and "12" in findings[0].text
    from_env = load(settings_file(tmp_path, ""), environ={"GGK_EBMS_CPA_EXPIRY_WARN_DAYS": "9"})
    assert from_env.expiry_warning_days == 9


def test_the_new_name_alone_gives_no_warning(tmp_path: Path) -> None:
    settings = load(settings_file(tmp_path, "expiry_warning_days = 45\n"), environ={})
    assert settings.expiry_warning_days == 45 and settings.cpa_expiry_warn_days is None
    assert not [f for f in run_checks(settings, datetime.now(UTC)) if f.subject == "cpa_expiry_warn_days"]


def test_both_names_must_agree(tmp_path: Path) -> None:
    agreed = load(
        settings_file(tmp_path, "expiry_warning_days = 20\ncpa_expiry_warn_days = 20\n"), environ={}
    )
    assert agreed.expiry_warning_days == 20
    with pytest.raises(ConfigError, match="disagree"):
        load(settings_file(tmp_path, "expiry_warning_days = 20\ncpa_expiry_warn_days = 10\n"), environ={})
    with pytest.raises(ConfigError, match="above 0"):
        load(settings_file(tmp_path, "cpa_expiry_warn_days = 0\n"), environ={})


def test_expiry_warning_days_governs_the_stored_cpas(db: Database, db_url: str, tmp_path: Path) -> None:
    ops = ops_context(ops_settings(tmp_path, db_url), db, tmp_path)
    [stored] = CpaRepository(db).list()
    now = stored.end - timedelta(days=10)  # the CPA (and maybe its certificates) end in 10 days
    assert stored_expiries(ops.ctx.settings.replace(expiry_warning_days=5), db, now) == []
    found = stored_expiries(ops.ctx.settings.replace(expiry_warning_days=11), db, now)
    assert found and {e.cpa_id for e in found} == {stored.cpa_id}
