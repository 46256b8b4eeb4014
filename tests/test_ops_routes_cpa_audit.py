"""Routeren (one route at a time), CPA beheer (portal fields, activation by Ping Pong) and the
audit trail, through the services on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ggk_ebms.errors import ConfigError
from ggk_ebms.routing.table import MailboxTarget, RouteStatus
from ggk_ebms.services import cpa_beheer, routeren
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.services.context import NotFoundError, ServiceError
from ggk_ebms.services.cpa_beheer import PortalFields
from ggk_ebms.services.routeren import RouteChange, TargetSpec
from ggk_ebms.store.db import Database
from ggk_ebms.store.routes import RouteStore
from tests.endpoint import CPA_RM, DEV
from tests.ops_support import START, Ops, ops_context, ops_settings

ROUTES = """# the dev table
[endpoint]
gemeentecodes = ["0363", "0014"]
test_gemeentecodes = []

[[sender]]
id = "00000099000001000000"
gemeentecodes = ["*"]

[[route]]
name = "amsterdam"
gemeentecode = "0363"
berichttype = "*"
target = { type = "directory", path = "in/0363" }
"""


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path, actor="productbeheerder")


def _table(ops: Ops) -> tuple[int, object]:
    stored = RouteStore(ops.ctx.database).current()
    assert stored is not None
    return stored.pk, stored.table()


def test_set_disable_enable_one_route(ops: Ops, tmp_path: Path) -> None:
    RouteStore(ops.ctx.database).replace(ROUTES, source="routes.toml", base_dir=tmp_path)
    added = routeren.set_route(
        ops.ctx,
        RouteChange(
            name="groningen-wmo305",
            gemeentecode="0014",
            berichttype="WMO305",
            target=TargetSpec("mailbox"),
            payload_version="3.2",
        ),
    )
    assert added.created and added.before is None
    pk, table = _table(ops)
    assert pk == added.route_set
    match = table.match("0014", "WMO305")  # type: ignore[attr-defined]
    assert match.route.name == "groningen-wmo305" and isinstance(match.route.target, MailboxTarget)
    # The other routes, the senders and relative paths survive the rewrite.
    amsterdam = table.match("0363", "WMO305").route  # type: ignore[attr-defined]
    assert amsterdam.target.path == tmp_path.resolve() / "in" / "0363"
    assert table.sender_scopes == {"00000099000001000000": frozenset({"*"})}  # type: ignore[attr-defined]

    disabled = routeren.disable_route(ops.ctx, "groningen-wmo305")
    _, table = _table(ops)
    assert [r.status for r in table.routes if r.name == "groningen-wmo305"] == [RouteStatus.INACTIEF]  # type: ignore[attr-defined]
    assert 'status = "actief"' not in disabled.after and 'status = "inactief"' in disabled.after
    routeren.enable_route(ops.ctx, "groningen-wmo305")
    _, table = _table(ops)
    assert table.match("0014", "WMO305").route is not None  # type: ignore[attr-defined]
    events = list_audit(ops.ctx, AuditQuery()).events
    assert [e.action for e in events] == ["route-enable", "route-disable", "route-set"]
    assert all(e.actor == "productbeheerder" and e.subject == "route groningen-wmo305" for e in events)
    assert "inactief" in (events[1].detail or "")


def test_a_bad_route_change_is_refused_and_the_table_stays(ops: Ops, tmp_path: Path) -> None:
    RouteStore(ops.ctx.database).replace(ROUTES, source="routes.toml", base_dir=tmp_path)
    before, _ = _table(ops)
    with pytest.raises(ConfigError, match="WMO399"):
        routeren.set_route(ops.ctx, RouteChange(name="amsterdam", berichttype="WMO399"))
    with pytest.raises(NotFoundError):
        routeren.disable_route(ops.ctx, "bestaat-niet")
    with pytest.raises(ServiceError, match="nieuwe route"):
        routeren.set_route(ops.ctx, RouteChange(name="nieuw", gemeentecode="0363"))
    assert _table(ops)[0] == before
    assert list_audit(ops.ctx, AuditQuery()).events == ()


def test_cpa_portal_fields_and_activation(ops: Ops) -> None:
    [overview] = cpa_beheer.list_cpas(ops.ctx)
    assert overview.cpa_id == CPA_RM and not overview.actief and overview.aanvraag == PortalFields()
    server_pem = (DEV / "gemeente" / "server.pem").read_text()
    client_pem = (DEV / "gemeente" / "client.pem").read_text()
    fields = PortalFields(
        profielnaam="Gemeente Amsterdam Wmo",
        oin_of_hrn="00000099000003630000",
        ingangsdatum=START,
        einddatum=START + timedelta(days=365),
        connectietype="Diginetwerk",
        endpoint="https://ebms.amsterdam.example/ebms",
        server_certificaat=server_pem,
        client_certificaat=client_pem,
    )
    saved = cpa_beheer.save_request(ops.ctx, CPA_RM, fields)
    assert saved.aanvraag == fields and not saved.actief
    ops.clock.advance(timedelta(minutes=5))
    active = cpa_beheer.register_pong(ops.ctx, CPA_RM)
    assert active.actief and active.geactiveerd_op == START + timedelta(minutes=5)
    ops.clock.advance(timedelta(days=1))
    assert cpa_beheer.register_pong(ops.ctx, CPA_RM).geactiveerd_op == START + timedelta(minutes=5)
    actions = [e.action for e in list_audit(ops.ctx, AuditQuery()).events]
    assert actions == ["cpa-activate", "cpa-portal"]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (PortalFields(connectietype="Modem"), "connectietype"),
        (PortalFields(oin_of_hrn="123"), "OIN is 20 cijfers"),
        (PortalFields(endpoint="http://plain.example"), "https"),
        (
            PortalFields(server_certificaat="-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"),
            "leesbaar",
        ),
    ],
)
def test_cpa_portal_fields_are_checked(ops: Ops, fields: PortalFields, text: str) -> None:
    with pytest.raises(ServiceError, match=text):
        cpa_beheer.save_request(ops.ctx, CPA_RM, fields)


def test_unknown_cpa(ops: Ops) -> None:
    with pytest.raises(NotFoundError):
        cpa_beheer.save_request(ops.ctx, "nope", PortalFields(profielnaam="x"))
    with pytest.raises(NotFoundError):
        cpa_beheer.register_pong(ops.ctx, "nope")


def test_audit_list_filters_and_pages(ops: Ops) -> None:
    from ggk_ebms.services.audit import record

    for n in range(5):
        ops.clock.advance(timedelta(minutes=1))
        record(ops.ctx, "message-retry" if n % 2 else "cpa-import", f"subject {n}")
    page = list_audit(ops.ctx, AuditQuery(limit=2))
    assert [e.subject for e in page.events] == ["subject 4", "subject 3"] and page.more
    retries = list_audit(ops.ctx, AuditQuery(action="message-retry"))
    assert [e.subject for e in retries.events] == ["subject 3", "subject 1"] and not retries.more
    since = list_audit(ops.ctx, AuditQuery(since=START + timedelta(minutes=4)))
    assert [e.subject for e in since.events] == ["subject 4", "subject 3"]
    assert list_audit(ops.ctx, AuditQuery(actor="iemand-anders")).events == ()
