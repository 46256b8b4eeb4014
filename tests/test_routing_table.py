"""Routing: most specific active route wins, refusals carry StUF
codes, senders are authorised (GGk handleiding: routing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggk_ebms.errors import ConfigError
from ggk_ebms.routing.table import (
    DirectoryTarget,
    MailboxTarget,
    Route,
    RouteStatus,
    RoutingTable,
)

INBOX = DirectoryTarget(Path("in"))
RINIS = "00000004003214345001"
OTHER_CPA = "cpa-verband-noord"


def route(name: str, gemeentecode: str, berichttype: str, **changes: object) -> Route:
    return Route(name, gemeentecode, berichttype, changes.pop("target", INBOX), **changes)  # type: ignore[arg-type]


TABLE = RoutingTable(
    [
        route("exact", "0363", "WMO305"),
        route("gemeente", "0363", "*"),
        route("bericht", "*", "WMO305"),
        route("fallback", "*", "*", target=MailboxTarget()),
        route("stopped", "0384", "JW315", status=RouteStatus.INACTIEF),
        route("only-stopped", "0384", "JW317", status=RouteStatus.INACTIEF),
        route("restricted", "0384", "WMO402", allowed_senders=("cpa-cak",)),
    ],
    ["0363", "0384", "0014"],
    sender_scopes={RINIS: ["*"], OTHER_CPA: ["0014"]},
)

# gemeentecode, berichttype, winning route (None: refused), code
MATCHES = [
    ("0363", "WMO305", "exact", None),
    ("0363", "WMO307", "gemeente", None),
    ("0014", "WMO305", "bericht", None),
    ("0014", "JW301", "fallback", None),
    ("0384", "JW315", "fallback", None),  # inactive exact route passed over
    ("9999", "WMO305", None, "StUF010"),  # not served
    ("0363", "WMO399", None, "StUF037"),  # not a berichttype
]


@pytest.mark.parametrize(("gemeentecode", "berichttype", "winner", "code"), MATCHES)
def test_match(gemeentecode: str, berichttype: str, winner: str | None, code: str | None) -> None:
    match = TABLE.match(gemeentecode, berichttype)
    assert (match.route.name if match.route else None) == winner
    assert match.code == code
    assert match.ok is (winner is not None)


def test_explain_names_winner_and_losers() -> None:
    explained = TABLE.match("0363", "WMO305").explain()
    assert explained == (
        "route exact matched on gemeentecode 0363 + berichttype WMO305; "
        "route gemeente (0363/*) less specific; route bericht (*/WMO305) less specific; "
        "route fallback (*/*) less specific"
    )
    assert "route stopped (0384/JW315) inactive" in TABLE.match("0384", "JW315").explain()


def test_only_inactive_routes_is_stuf037_and_no_route_is_kept_for_an_operator() -> None:
    table = RoutingTable([route("stopped", "0384", "JW317", status=RouteStatus.INACTIEF)], ["0384"])
    inactive = table.match("0384", "JW317")
    assert (inactive.route, inactive.code, inactive.ggk_code) == (None, "StUF037", "IB023")
    none = table.match("0384", "JW301")
    assert (none.route, none.code, none.ggk_code) == (None, None, "IB102")


# sender, gemeentecode, route name, allowed, code, ggk code
AUTHORIZATIONS = [
    (RINIS, "0363", "exact", True, None, None),
    (OTHER_CPA, "0014", "fallback", True, None, None),
    (OTHER_CPA, "0363", "exact", False, "StUF052", "IB007"),  # scope does not cover 0363
    ("stranger", "0363", "exact", False, "StUF052", "IB002"),
    ("cpa-cak", "0384", "restricted", True, None, None),
    (RINIS, "0384", "restricted", False, "StUF052", "IB006"),  # not on the route's list
    (RINIS, "0384", "stopped", False, "StUF037", "IB023"),
    (RINIS, "9999", "exact", False, "StUF010", "IB005"),
]


@pytest.mark.parametrize(("sender", "gemeentecode", "name", "allowed", "code", "ggk_code"), AUTHORIZATIONS)
def test_authorize(
    sender: str, gemeentecode: str, name: str, allowed: bool, code: str | None, ggk_code: str | None
) -> None:
    chosen = next(r for r in TABLE.routes if r.name == name)
    result = TABLE.authorize(sender, gemeentecode, chosen)
    assert (result.allowed, result.code, result.ggk_code) == (allowed, code, ggk_code)
    assert result.reason


def test_two_active_routes_for_one_key_are_refused() -> None:
    with pytest.raises(ConfigError, match="both active for 0363/WMO305"):
        RoutingTable([route("a", "0363", "WMO305"), route("b", "0363", "WMO305")], ["0363"])


def test_an_inactive_twin_is_allowed() -> None:
    table = RoutingTable(
        [route("new", "0363", "WMO305"), route("old", "0363", "WMO305", status=RouteStatus.INACTIEF)],
        ["0363"],
    )
    assert table.match("0363", "WMO305").route == table.routes[0]


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="used twice"):
        RoutingTable([route("a", "0363", "WMO305"), route("a", "0363", "*")], ["0363"])
