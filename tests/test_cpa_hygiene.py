"""CPA hygiene: a CPA that is not about us is refused; expiry of a CPA or a certificate in it is
warned about ahead (with a fake clock) and an error after; during a renewal overlap the newest
valid CPA of the pair is chosen for sending and shown by `cpa list`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ggk_ebms.cli.main import cli
from ggk_ebms.config import Settings
from ggk_ebms.cpa.create import create_agreement
from ggk_ebms.cpa.hygiene import ERROR, WARNING, expiries, require_our_party
from ggk_ebms.cpa.overlap import Candidate, newest_for_pair
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import CpaError
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from tests.cpa_support import GEMEENTE_OIN, NOW, RINIS_OIN, make_cert, party, pem, request

OTHER_A = "00000099000007770000"
OTHER_B = "00000099000008880000"


def agreement_bytes(**changes: object) -> bytes:
    return create_agreement(request(**changes))


def test_a_cpa_without_our_party_is_refused() -> None:
    foreign = parse_agreement(
        agreement_bytes(
            party=party("Gemeente Elders", OTHER_A, "https://a.example/ebms", "Gemeente"),
            partner=party("Iemand Anders", OTHER_B, "https://b.example/ebms", "GGk"),
        )
    )
    with pytest.raises(CpaError, match=r"none of its parties .* is one of ours"):
        require_our_party(foreign, [GEMEENTE_OIN])
    require_our_party(parse_agreement(agreement_bytes()), [GEMEENTE_OIN])  # ours: no complaint


def test_cli_import_refuses_a_foreign_cpa(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.xml"
    foreign.write_bytes(
        agreement_bytes(
            party=party("Gemeente Elders", OTHER_A, "https://a.example/ebms", "Gemeente"),
            partner=party("Iemand Anders", OTHER_B, "https://b.example/ebms", "GGk"),
        )
    )
    env = {
        "GGK_EBMS_CONFIG": str(tmp_path / "none.toml"),
        "GGK_EBMS_DATA_DIR": str(tmp_path / "var"),
        "GGK_EBMS_PARTY_IDS": GEMEENTE_OIN,
    }
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    result = CliRunner(env=env).invoke(cli, ["cpa", "import", str(foreign)])
    assert result.exit_code == 1
    assert "none of its parties" in result.output and "not imported" in result.output
    listed = CliRunner(env=env).invoke(cli, ["cpa", "list"])
    assert "no CPAs stored" in listed.output


def test_expiry_warns_ahead_and_errors_after_with_a_fake_clock() -> None:
    agreement = parse_agreement(agreement_bytes(end=NOW + timedelta(days=20)))
    assert expiries(agreement, NOW - timedelta(days=30), 30) == []  # 50 days ahead: quiet
    [soon] = expiries(agreement, NOW, 30)
    assert (soon.level, soon.what) == (WARNING, "CPA")
    assert "expires on" in soon.describe(NOW) and "in 20 days" in soon.describe(NOW)
    assert expiries(agreement, NOW, 10) == []  # a shorter warning window
    [gone] = expiries(agreement, NOW + timedelta(days=21), 30)
    assert gone.level == ERROR and "expired on" in gone.describe(NOW + timedelta(days=21))


def test_a_certificate_in_the_cpa_expiring_is_warned_about() -> None:
    short, _ = make_cert("client kort", GEMEENTE_OIN, not_after=NOW + timedelta(days=5))
    ours = party("Gemeente Test", GEMEENTE_OIN, "https://gemeente.example/ebms", "Gemeente")
    agreement = parse_agreement(agreement_bytes(party=dataclasses.replace(ours, client_cert_pem=pem(short))))
    found = expiries(agreement, NOW, 30)
    assert [e.level for e in found] == [WARNING] * len(found) and found
    assert all(e.what.startswith("certificate ") and "Gemeente Test" in e.what for e in found)
    assert any(e.level == ERROR for e in expiries(agreement, NOW + timedelta(days=6), 30))


def test_newest_for_pair() -> None:
    pair = frozenset({GEMEENTE_OIN, RINIS_OIN})
    old = Candidate("cpa-1", pair, NOW - timedelta(days=300), NOW - timedelta(days=300))
    new = Candidate("cpa-2", pair, NOW - timedelta(days=2), NOW - timedelta(days=3))
    choice = newest_for_pair([old, new])
    assert choice is not None and choice.chosen is new and choice.overlapping == (old,)
    assert "overlaps cpa-1" in choice.describe()
    elsewhere = Candidate("cpa-3", frozenset({GEMEENTE_OIN, OTHER_A}), NOW, NOW)
    assert newest_for_pair([old, elsewhere]) is None  # two pairs: no renewal to resolve


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "settings.toml").write_text(
        'served_gemeentecodes = ["0363"]\ncpa_autoimport = false\n', encoding="utf-8"
    )
    return {
        "GGK_EBMS_CONFIG": str(tmp_path / "settings.toml"),
        "GGK_EBMS_DATA_DIR": str(tmp_path / "var"),
        "GGK_EBMS_PARTY_IDS": GEMEENTE_OIN,
    }


def _cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner(env=env).invoke(cli, list(args))


def test_renewal_overlap_sends_on_the_newest_and_cpa_list_shows_it(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = tmp_path / "old.xml"
    old.write_bytes(
        agreement_bytes(start=now - timedelta(days=300), end=now + timedelta(days=10), cpa_id="ggk-oud")
    )
    new = tmp_path / "new.xml"
    new.write_bytes(
        agreement_bytes(start=now - timedelta(days=1), end=now + timedelta(days=700), cpa_id="ggk-nieuw")
    )
    env = _env(tmp_path)
    assert _cli(env, "cpa", "import", str(old), str(new)).exit_code == 0
    listed = _cli(env, "cpa", "list")
    assert "CPA ggk-nieuw (newest valid CPA for this pair; overlaps ggk-oud)" in listed.output
    assert "warning: CPA ggk-oud: CPA expires on" in listed.output  # 10 days < 30
    payload = tmp_path / "wmo301.xml"
    payload.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/3_2/wmo301/schema"><w:Header>'
        "<w:BerichtCode>414</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie>"
        "<w:BerichtSubversie>2</w:BerichtSubversie><w:Afzender>0363</w:Afzender>"
        "<w:Ontvanger>65656055</w:Ontvanger><w:BerichtIdentificatie><w:Identificatie>R-1</w:Identificatie>"
        "<w:Dagtekening>2026-11-30</w:Dagtekening></w:BerichtIdentificatie></w:Header></w:Bericht>\n",
        encoding="utf-8",
    )
    sent = _cli(env, "submit", str(payload))
    assert sent.exit_code == 0, sent.output
    assert "on CPA ggk-nieuw" in sent.output and "overlaps ggk-oud" in sent.output


def test_config_check_warns_and_errors_on_expiry(tmp_path: Path, db_url: str) -> None:
    from ggk_ebms.cli.config_cmd import run_checks

    settings = Settings(data_dir=tmp_path / "var", database_url=db_url, party_ids=[GEMEENTE_OIN])
    database = Database(db_url)
    database.upgrade()
    repo = CpaRepository(database)
    repo.add_agreement(parse_agreement(agreement_bytes(end=NOW + timedelta(days=20), cpa_id="bijna")))
    repo.add_agreement(parse_agreement(agreement_bytes(end=NOW - timedelta(days=1), cpa_id="voorbij")))
    database.dispose()
    findings = {(f.level, f.subject): f.text for f in run_checks(settings, NOW)}
    assert "expires on" in findings[("WARN", "CPA bijna")]
    assert "expired on" in findings[("ERROR", "CPA voorbij")]


def test_config_check_reports_gemeentecodes_and_exchange_cpa(tmp_path: Path, db_url: str) -> None:
    from ggk_ebms.cli.config_cmd import run_checks
    from ggk_ebms.store.exchanges import ExchangeStore

    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=db_url,
        party_ids=[GEMEENTE_OIN],
        served_gemeentecodes=["0363", "9998", "9999"],
        test_gemeentecodes=["9999"],
    )
    database = Database(db_url)
    database.upgrade()
    ExchangeStore(database).set("WMO401", {"cpa_id": "bestaat-niet"})
    from ggk_ebms.store.routes import RouteStore

    RouteStore(database).replace(
        '[endpoint]\ngemeentecodes = ["0363"]\n[[route]]\nname = "oud"\ngemeentecode = "0363"\n'
        'berichttype = "WMO305"\nstuf_version = "2.0"\npayload_version = "2.3"\n'
        'target = { type = "mailbox" }\n',
        source="routes.toml",
        base_dir=None,
    )
    database.dispose()
    findings = [(f.level, f.subject, f.text) for f in run_checks(settings, NOW)]
    assert (
        "ERROR",
        "served_gemeentecodes",
        "9998 is not in the CBS list 2026 nor in test_gemeentecodes",
    ) in findings
    assert not any("9999 is not" in text for _, _, text in findings)
    assert ("ERROR", "exchange WMO401/WMO402", "CPA profile bestaat-niet is not stored") in findings
    [route] = [text for level, subject, text in findings if subject == "route oud"]
    assert "stuf_version 2.0 and payload_version 2.3 differ from exchange WMO305/WMO306" in route


def test_autoimport_skips_a_foreign_cpa_and_the_log_warns_of_expiry(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from ggk_ebms.server.autoimport import import_cpa_dir
    from ggk_ebms.store.cpa_expiry import log_expiries

    folder = tmp_path / "cpa"
    folder.mkdir()
    (folder / "vreemd.xml").write_bytes(
        agreement_bytes(
            party=party("Gemeente Elders", OTHER_A, "https://a.example/ebms", "Gemeente"),
            partner=party("Iemand Anders", OTHER_B, "https://b.example/ebms", "GGk"),
            cpa_id="vreemd",
        )
    )
    now = datetime.now(UTC)
    (folder / "eigen.xml").write_bytes(
        agreement_bytes(start=now - timedelta(days=1), end=now + timedelta(days=3), cpa_id="eigen")
    )
    settings = Settings(
        data_dir=tmp_path / "var", database_url=db_url, party_ids=[GEMEENTE_OIN], cpa_dir=folder
    )
    database = Database(db_url)
    database.upgrade()
    lines = list(import_cpa_dir(settings, database))
    assert any("vreemd.xml: not imported" in line and "none of its parties" in line for line in lines)
    assert [c.cpa_id for c in CpaRepository(database).list()] == ["eigen"]
    with caplog.at_level(logging.WARNING, logger="ggk_ebms"):
        log_expiries(settings, database, now)
        log_expiries(settings, database, now + timedelta(days=4))
    database.dispose()
    warned = [r for r in caplog.records if "CPA eigen: CPA expires on" in r.getMessage()]
    failed = [r for r in caplog.records if "CPA eigen: CPA expired on" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING
    assert failed and failed[0].levelno == logging.ERROR
