"""Pure parts and stores of the management API: rate limiter, state mapping, tokens, mappings,
the api-token command, the OpenAPI document."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ggk_ebms.api.ratelimit import RateLimiter
from ggk_ebms.api.server import route_table
from ggk_ebms.api.states import EbmsCoreStatus, EventType, ebms_core_status, event_type
from ggk_ebms.cli.main import cli
from ggk_ebms.errors import StoreError
from ggk_ebms.store.api_tokens import TokenStore
from ggk_ebms.store.db import Database
from ggk_ebms.store.mappings import MappingStore
from ggk_ebms.store.tables import RECEIVE_STATUSES, SEND_STATUSES, api_token


def test_rate_limiter_refills_and_reports_the_wait() -> None:
    limiter = RateLimiter(rate_per_second=2.0, burst=2)
    assert limiter.allow("a", 0.0) == 0.0
    assert limiter.allow("a", 0.0) == 0.0
    assert limiter.allow("a", 0.0) == pytest.approx(0.5)
    assert limiter.allow("a", 0.5) == 0.0  # one token back after half a second


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1, max_keys=100)
    for n in range(10_000):
        limiter.allow(f"token-{n}", 0.0)
    assert len(limiter) == 100
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate_per_second=0, burst=1)


def test_every_state_maps_to_ebms_core() -> None:
    assert {ebms_core_status("in", s) for s in RECEIVE_STATUSES} == {
        EbmsCoreStatus.RECEIVED,
        EbmsCoreStatus.FORWARDED,
        EbmsCoreStatus.FAILED,
    }
    assert [ebms_core_status("out", s) for s in SEND_STATUSES] == [
        EbmsCoreStatus.CREATED,
        EbmsCoreStatus.CREATED,
        EbmsCoreStatus.DELIVERED,
        EbmsCoreStatus.DELIVERY_FAILED,
        EbmsCoreStatus.EXPIRED,
    ]
    assert ebms_core_status("in", "Received", processed_mark=True) is EbmsCoreStatus.PROCESSED
    assert ebms_core_status("in", "Failed", processed_mark=True) is EbmsCoreStatus.FAILED
    assert ebms_core_status("out", "SomethingNew") is EbmsCoreStatus.CREATED
    assert event_type("in", "Received") is EventType.RECEIVED
    assert event_type("out", "DeliveryFailed") is EventType.FAILED
    assert event_type("out", "Sending") is None


def test_tokens_are_stored_hashed_and_revocable(db: Database) -> None:
    store = TokenStore(db)
    _, secret = store.create("portal", ["read", "send"])
    assert secret.startswith("ggk_") and len(secret) > 40
    with db.session() as session:
        stored = session.execute(sa.select(api_token.c.token_hash, api_token.c.prefix)).one()
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored.token_hash and stored.prefix == secret[:12]
    found = store.authenticate(secret)
    assert found is not None and found.scopes == {"read", "send"} and found.usable(found.created_at)
    assert store.authenticate(secret + "x") is None
    with pytest.raises(StoreError, match="exists"):
        store.create("portal", ["read"])
    with pytest.raises(ValueError, match="scopes"):
        store.create("other", ["root"])
    revoked = store.revoke("portal")
    assert revoked.revoked_at is not None and not revoked.usable(revoked.revoked_at)
    with pytest.raises(StoreError, match="already"):
        store.revoke("portal")


def test_mappings_store_and_map(db: Database) -> None:
    store = MappingStore(db)
    store.put_url("https://a.example/ebms", "https://b.example/ebms")
    store.put_url("https://a.example/ebms", "https://c.example/ebms")
    assert store.map_url("https://a.example/ebms") == "https://c.example/ebms"
    assert store.map_url("https://other.example/ebms") == "https://other.example/ebms"
    with pytest.raises(ValueError, match="URL"):
        store.put_url("ftp://x", "https://b.example")
    store.put_certificate(b"src", b"everywhere")
    store.put_certificate(b"src", b"for-cpa", "cpa-1")
    assert store.map_certificate(b"src", "cpa-1") == b"for-cpa"
    assert store.map_certificate(b"src", "cpa-2") == b"everywhere"
    assert store.map_certificate(b"unmapped", "cpa-1") == b"unmapped"
    assert store.delete_certificate(b"src", "cpa-1") and not store.delete_certificate(b"src", "cpa-1")
    assert store.delete_url("https://a.example/ebms") and store.urls() == []


def test_api_token_command(tmp_path: Path) -> None:
    config = tmp_path / "ggk-ebms.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["--config", str(config), "api-token", "create", "monitor", "--scope", "read"]
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert secret.startswith("ggk_")
    listed = runner.invoke(cli, ["--config", str(config), "api-token", "list"])
    assert "monitor" in listed.output and "actief" in listed.output and secret not in listed.output
    revoked = runner.invoke(cli, ["--config", str(config), "api-token", "revoke", "monitor"])
    assert revoked.exit_code == 0 and "ingetrokken" in revoked.output
    again = runner.invoke(cli, ["--config", str(config), "api-token", "revoke", "monitor"])
    assert again.exit_code == 1


def test_openapi_document_covers_every_v1_route() -> None:
    from ggk_ebms.api import v1
    from ggk_ebms.api.openapi import openapi_document

    document = openapi_document(v1.OPERATIONS)
    assert document["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert documented == {(op.method, op.openapi_path) for op in v1.OPERATIONS}
    for ops in document["paths"].values():
        for operation in ops.values():
            assert {"401", "403", "429"} <= set(operation["responses"])
    assert len({op.operation_id for op in route_table().operations}) == len(route_table().operations)


def test_marks_are_set_once(db: Database) -> None:
    from datetime import UTC, datetime

    from ggk_ebms.store.api_marks import MarkStore
    from ggk_ebms.store.messages import MessageStore, NewMessage

    now = datetime(2026, 12, 5, tzinfo=UTC)
    pk = MessageStore(db).submit(
        NewMessage(
            direction="out",
            message_id="m-1@test",
            cpa_id="cpa",
            conversation_id="c",
            from_party_id="a",
            to_party_id="b",
            service="s",
            action="a",
            kind="business",
            timestamp=now,
            status="Created",
        ),
        [],
        due_at=now,
    )
    marks = MarkStore(db)
    assert marks.mark(pk, "event") and not marks.mark(pk, "event")
    assert marks.is_marked(pk, "event") and not marks.is_marked(pk, "message")


def test_metrics_render_from_the_store(db: Database) -> None:
    from datetime import UTC, datetime, timedelta

    from prometheus_client.parser import text_string_to_metric_families

    from ggk_ebms.api.metrics import ApiMetrics
    from ggk_ebms.config import Settings
    from ggk_ebms.store.messages import MessageStore, NewMessage
    from tests.endpoint import DEV

    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    MessageStore(db).submit(
        NewMessage(
            direction="out",
            message_id="m-1@test",
            cpa_id="cpa-1",
            conversation_id="c",
            from_party_id="a",
            to_party_id="b",
            service="s",
            action="Di01",
            kind="business",
            timestamp=now,
            status="Created",
        ),
        [],
        due_at=now,
    )
    settings = Settings(
        tls_server_cert=DEV / "gemeente" / "server.pem", tls_client_cert=DEV / "gemeente" / "client.pem"
    )
    metrics = ApiMetrics(settings, db, lambda: now + timedelta(seconds=90))
    metrics.latency.labels("GET", "/api/v1/cpas", "200").observe(0.01)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    [stored] = families["ggk_ebms_messages"].samples
    assert stored.labels == {"direction": "out", "cpa_id": "cpa-1", "action": "Di01", "status": "Created"}
    assert stored.value == 1.0
    [depth] = families["ggk_ebms_queue_depth"].samples
    assert depth.labels == {"queue": "send", "status": "pending"} and depth.value == 1.0
    [age] = families["ggk_ebms_queue_oldest_job_age_seconds"].samples
    assert age.value >= 0.0
    days = {s.labels["name"]: s.value for s in families["ggk_ebms_certificate_expiry_days"].samples}
    assert set(days) == {"tls_server_cert", "tls_client_cert"} and all(d > 0 for d in days.values())
    assert families["ggk_ebms_database_up"].samples[0].value == 1.0
    assert any(
        s.name == "ggk_ebms_api_request_seconds_count"
        for s in families["ggk_ebms_api_request_seconds"].samples
    )


def test_api_listener_uses_tls_off_loopback() -> None:
    from ggk_ebms.api.server import api_ssl_context
    from ggk_ebms.config import Settings
    from tests.endpoint import DEV

    certs = {
        "tls_server_cert": DEV / "gemeente" / "server.pem",
        "tls_server_key": DEV / "gemeente" / "server-key.pem",
    }
    assert api_ssl_context(Settings(api_host="127.0.0.1", **certs)) is None
    assert api_ssl_context(Settings(api_host="::1", **certs)) is None
    assert api_ssl_context(Settings(api_host="0.0.0.0", **certs)) is not None
    assert api_ssl_context(Settings(api_host="127.0.0.1", api_tls="always", **certs)) is not None


async def test_api_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from ggk_ebms.errors import ConfigError
    from tests.endpoint import cpa_folder, party_settings, running

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        settings = party_settings(
            "gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa_folder(tmp_path), api_port=taken
        )
        with pytest.raises(ConfigError, match=f"management API cannot listen on 127.0.0.1:{taken}"):
            async with running(settings):
                pass
