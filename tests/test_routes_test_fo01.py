"""``routes test`` names the Fo01 code the delivery would send (the exchange rules' IB codes), not
the routing table's older StUF code: ``routing.fo01.expected_fo01`` is checked against the real
delivery decision (``delivery.unwrap``) case by case, and the command shows it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.delivery.unwrap import Verdict, unwrap
from ggk_ebms.exchanges.model import DEFAULT_EXCHANGES, with_changes
from ggk_ebms.exchanges.rules import Rules
from ggk_ebms.routing.fo01 import expected_fo01
from ggk_ebms.routing.load import parse_routes
from ggk_ebms.routing.table import RoutingTable
from tests.endpoint import RINIS
from tests.test_exchange_refusals import envelope

OTHER = "00000099000009990000"  # a sender the routes file does not know

ROUTES = f"""
[endpoint]
gemeentecodes = ["0363", "0014"]

[[sender]]
id = "{RINIS}"
gemeentecodes = ["0363"]

[[route]]
name = "amsterdam"
gemeentecode = "0363"
berichttype = "*"
target = {{ type = "mailbox" }}
"""


class NoHistory:
    def earlier_payload(self, zender: str, referentienummer: str) -> tuple[int, str | None] | None:
        return None

    def we_sent(self, referentienummer: str) -> bool:
        return False


def rules(changes: Mapping[str, Mapping[str, str | None]] | None = None) -> Rules:
    exchanges, problems = with_changes(DEFAULT_EXCHANGES, changes or {})
    assert problems == []
    return Rules.of(exchanges, ())


def delivered_code(rules: Rules, table: RoutingTable, gemeente: str, functie: str, sender: str) -> str | None:
    decision = unwrap(
        [envelope(gemeente, functie)], sender_ids=[sender], table=table, history=NoHistory(), rules=rules
    )
    if decision.verdict is Verdict.REFUSE:
        assert decision.fout is not None
        return decision.fout.code
    assert decision.verdict in (Verdict.DELIVER, Verdict.HOLD), decision.reason
    return None


_WMO305 = DEFAULT_EXCHANGES.for_berichttype("WMO305")
assert _WMO305 is not None
KEY = _WMO305.key


@pytest.mark.parametrize(
    ("gemeente", "functie", "sender", "changes", "code"),
    [
        ("0363", "WMO305", RINIS, None, None),
        ("0518", "WMO305", RINIS, None, "IB005"),  # a CBS code the routes file does not serve
        ("9998", "WMO305", RINIS, None, "IB005"),  # no CBS code
        ("0363", "WMO999", RINIS, None, "IB004"),  # a berichttype of no exchange
        ("0363", "WMO305", RINIS, {KEY: {"status": "inactief"}}, "IB023"),
        ("0363", "WMO305", RINIS, {KEY: {"gemeentecodes": "0014"}}, "IB005"),
        ("0014", "WMO305", RINIS, None, None),  # served, but no route: held, no Fo01
        ("0363", "WMO305", OTHER, None, "given by the table"),  # an unknown sender: step 7
    ],
)
def test_expected_fo01_is_what_the_delivery_sends(
    gemeente: str,
    functie: str,
    sender: str,
    changes: Mapping[str, Mapping[str, str | None]] | None,
    code: str | None,
) -> None:
    table = parse_routes(ROUTES)
    in_force = rules(changes)
    sent = delivered_code(in_force, table, gemeente, functie, sender)
    expected = expected_fo01(in_force, table, gemeente, functie, sender_ids=[sender])
    assert (expected.code if expected else None) == sent
    if code == "given by the table":
        assert expected is not None and expected.step == 7
    else:
        assert sent == code
    if expected is not None:
        assert not expected.code.startswith("StUF") or expected.step == 7


def test_routes_test_shows_the_fo01_code(tmp_path: Path) -> None:
    import json

    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES, encoding="utf-8")
    config = tmp_path / "ggk-ebms.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", str(config), *args], env={"COLUMNS": "250"})
        return result.exit_code, result.output

    assert run("routes", "import", str(routes))[0] == 0
    code, out = run("routes", "test", "--gemeentecode", "0518", "--berichttype", "WMO305")
    assert code == 1 and "Fo01 IB005" in out and "routing table: StUF010" in out
    code, out = run("routes", "test", "--gemeentecode", "0363", "--berichttype", "WMO305", "--json")
    assert code == 0 and json.loads(out)["fo01"] is None
    # A Portaal exchange holds what it receives in the mailbox, with or without a route.
    assert run("exchanges", "set", KEY, "--via", "portaal")[0] == 0
    code, out = run("routes", "test", "--gemeentecode", "0014", "--berichttype", "WMO305")
    assert code == 0 and "goes via Portaal" in out, out
    assert run("exchanges", "set", KEY, "--via", "digikoppeling", "--status", "inactief")[0] == 0
    code, out = run("routes", "test", "--gemeentecode", "0363", "--berichttype", "WMO305", "--json")
    document = json.loads(out)
    assert code == 1 and document["routed"] is True  # the table has a route; the exchange refuses
    assert document["fo01"]["code"] == "IB023" and document["fo01"]["step"] == 6
