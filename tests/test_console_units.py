"""Console accounts, sessions and throttling on SQLite and PostgreSQL; masking, rights and exports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.clock import FixedClock
from ggk_ebms.console.exports import log_csv
from ggk_ebms.console.masking import MASK, mask_personal
from ggk_ebms.console.rights import berichttypes_of, product_of, visible_berichttypes
from ggk_ebms.services import gebruikers
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.services.berichtenlog import LogRow
from ggk_ebms.services.context import ServiceContext, ServiceError
from ggk_ebms.store.db import Database
from tests.endpoint import party_settings

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "een lang genoeg wachtwoord"


@pytest.fixture
def ctx(db: Database, db_url: str, tmp_path: Path) -> ServiceContext:
    settings = party_settings("gemeente", tmp_path, db_url, tmp_path / "cpa")
    return ServiceContext(db, settings, "tester", FixedClock(START))


def _user(ctx: ServiceContext, name: str = "anna", products: tuple[str, ...] = ("iwmo",)) -> None:
    gebruikers.create_user(
        ctx, username=name, display_name="Anna", password=PASSWORD, role="medewerker", products=products
    )


def test_login_makes_a_session_that_ends_after_idle_time(ctx: ServiceContext) -> None:
    _user(ctx)
    result = gebruikers.login(ctx, "anna", PASSWORD)
    assert result.user.password_hash is not None and result.user.password_hash.startswith("$argon2id$")
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(minutes=29))
    assert gebruikers.current_session(ctx, result.session_id) is not None  # touched: idle restarts
    clock.advance(timedelta(minutes=29))
    assert gebruikers.current_session(ctx, result.session_id) is not None
    clock.advance(timedelta(minutes=31))
    stale = gebruikers.login(ctx, "anna", PASSWORD).session_id  # a login drops ended sessions
    assert gebruikers.current_session(ctx, result.session_id) is None
    assert gebruikers.current_session(ctx, stale) is not None
    assert gebruikers.current_session(ctx, "not-a-session") is None


def test_a_session_ends_after_twelve_hours_even_when_used(ctx: ServiceContext) -> None:
    _user(ctx)
    session_id = gebruikers.login(ctx, "anna", PASSWORD).session_id
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    for _ in range(28):  # 11 h 40 min, every 25 min
        clock.advance(timedelta(minutes=25))
        gebruikers.current_session(ctx, session_id)
    clock.advance(timedelta(minutes=25))
    assert gebruikers.current_session(ctx, session_id) is None


def test_throttling_locks_the_name_for_a_while_also_unknown_names(ctx: ServiceContext) -> None:
    _user(ctx)
    for name in ("anna", "bestaat-niet"):
        for _ in range(5):
            with pytest.raises(gebruikers.LoginRefused, match="onjuist wachtwoord"):
                gebruikers.login(ctx, name, "fout wachtwoord")
        with pytest.raises(gebruikers.LoginRefused, match="te veel mislukte pogingen"):
            gebruikers.login(ctx, name, PASSWORD)
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(minutes=16))
    assert gebruikers.login(ctx, "anna", PASSWORD).user.username == "anna"
    actions = [e.action for e in list_audit(ctx, AuditQuery(limit=50)).events]
    assert actions.count("console-login-refused") == 12 and "console-login" in actions


def test_a_disabled_account_cannot_log_in_and_loses_its_sessions(ctx: ServiceContext) -> None:
    _user(ctx)
    session_id = gebruikers.login(ctx, "anna", PASSWORD).session_id
    gebruikers.update_user(ctx, "anna", disabled=True)
    assert gebruikers.current_session(ctx, session_id) is None
    with pytest.raises(gebruikers.LoginRefused):
        gebruikers.login(ctx, "anna", PASSWORD)


def test_account_input_is_checked(ctx: ServiceContext) -> None:
    with pytest.raises(ServiceError, match="minstens 12"):
        gebruikers.create_user(
            ctx, username="b", display_name="", password="kort", role="medewerker", products=()
        )
    with pytest.raises(ServiceError, match="rol"):
        gebruikers.create_user(
            ctx, username="b", display_name="", password=PASSWORD, role="baas", products=()
        )
    with pytest.raises(ServiceError, match="onbekend product"):
        gebruikers.create_user(
            ctx, username="b", display_name="", password=PASSWORD, role="medewerker", products=("xyz",)
        )
    _user(ctx)
    with pytest.raises(Exception, match="al een account"):
        _user(ctx)


def test_user_create_command_makes_the_first_gebruikersbeheerder(tmp_path: Path) -> None:
    config = tmp_path / "ggk-ebms.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n')
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--config", str(config), "user", "create", "admin"], env={"GGK_EBMS_USER_PASSWORD": PASSWORD}
    )
    assert result.exit_code == 0, result.output
    assert "gebruikersbeheerder" in result.output
    listed = runner.invoke(cli, ["--config", str(config), "user", "list"])
    assert "admin\tgebruikersbeheerder\tieb,ijw,iwmo,pgb-jw,pgb-wmo\talle\tactief" in listed.output


def test_masking_hides_bsn_and_names_only() -> None:
    payload = (
        b'<m:Bericht xmlns:m="urn:x"><m:Bsn>999993653</m:Bsn><m:Geslachtsnaam><m:Achternaam>Jansen'
        b"</m:Achternaam></m:Geslachtsnaam><m:Voornamen>Jan</m:Voornamen><m:Product>02A01</m:Product></m:Bericht>"
    )
    text = mask_personal(payload)
    assert "999993653" not in text and "Jansen" not in text and "Jan<" not in text
    assert text.count(MASK) == 3 and "02A01" in text
    assert "niet getoond" in mask_personal(b"<kapot")


def test_products_and_berichttypes() -> None:
    assert "WMO301" in berichttypes_of("iwmo") and "JW301" in berichttypes_of("ijw")
    assert "WMO401" in berichttypes_of("ieb") and "WMO401" not in berichttypes_of("iwmo")
    assert product_of("JW315") == "ijw" and product_of("ONBEKEND") is None
    assert not set(visible_berichttypes(["iwmo"])) & set(berichttypes_of("ijw"))
    assert visible_berichttypes([]) == ()


def test_csv_export_neutralises_formulas() -> None:
    row = LogRow(
        tijdstip=START, message_pk=1, aanlever_file_pk=None, batch_pk=None, direction="in", kind="business",
        status="Processed", status_reason=None, error_code=None, cpa_id="c", message_id="m",
        berichttype="WMO301", gemeentecode="0363", referentienummer="=HYPERLINK(1)", zender=None,
        ontvanger=None, stuf_fout=None, gelezen=None, verwijderd=None,
    )  # fmt: skip
    text = log_csv([row]).decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in text and text.startswith("tijdstip;richting")


def test_an_upload_limited_to_berichttypes_refuses_other_products(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    from ggk_ebms.services import aanleveren
    from tests.ops_support import make_zip, ops_context, ops_settings, wmo301

    ops = ops_context(ops_settings(tmp_path, db_url), db, tmp_path)
    jw301 = wmo301(ident="J-1", code="436").replace(b"iwmo/3_2/wmo301", b"ijw/3_2/jw301")
    path = ops.file("mix.zip", make_zip([("wmo.xml", wmo301(ident="W-1")), ("jw.xml", jw301)]))
    only_wmo = frozenset(berichttypes_of("iwmo"))
    verslag = aanleveren.aanleveren(ops.ctx, aanleveren.Upload("mix.zip", path, berichttypes=only_wmo))
    by_name = {f.bestand: f for f in verslag.bestanden}
    assert by_name["wmo.xml"].uitkomst == "correct"
    refused = by_name["jw.xml"]
    assert refused.uitkomst == "incorrect" and refused.berichttype is None and refused.message_pk is None
    assert "JW301 hoort niet bij de producten" in (refused.fout_detail or "")
