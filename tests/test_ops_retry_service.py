"""``messages retry`` as one service (``services.opnieuw.retry``): found by number or MessageId,
the force/reason rule, an audit record with the actor; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ggk_ebms.lifecycle import Event
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.services.context import NotFoundError, ServiceError
from ggk_ebms.services.indienen import Indiening, indienen
from ggk_ebms.services.opnieuw import Retry, retry
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore
from tests.ops_support import Ops, ops_context, ops_settings, wmo301


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path, actor="beheerder")


def failed_send(ops: Ops, ident: str) -> int:
    """A message we submitted whose send job gave up: DeliveryFailed."""
    result = indienen(ops.ctx, Indiening(f"{ident}.xml", wmo301(ident=ident), manual=True))
    assert result.submitted is not None
    pk = result.submitted.message.pk
    queue = JobQueue(ops.ctx.database, ops.clock)
    claimed = queue.claim(
        "send", now=ops.clock.now() + timedelta(days=1), worker_id="w", lease=timedelta(minutes=5)
    )
    [job] = [j for j in claimed if j.message_pk == pk]
    queue.release("w", [j.pk for j in claimed if j.pk != job.pk])
    queue.fail(job.pk, "partner unreachable", event=Event.SEND_FAILED)
    assert MessageStore(ops.ctx.database).get(pk).status == "DeliveryFailed"
    return pk


def test_retry_by_number_and_message_id_is_audited(ops: Ops) -> None:
    pk = failed_send(ops, "R-1")
    done = retry(ops.ctx, Retry(str(pk)))
    assert done.message_pk == pk and done.direction == "out" and not done.forced
    assert "queued for sending again" in done.gedaan
    # Queued now: a second re-try is refused with the reason, as ServiceError.
    with pytest.raises(ServiceError, match="still queued"):
        retry(ops.ctx, Retry(str(pk)))
    other = failed_send(ops, "R-2")
    message_id = MessageStore(ops.ctx.database).get(other).message_id
    assert retry(ops.ctx, Retry(message_id)).message_pk == other
    events = list_audit(ops.ctx, AuditQuery(action="message-retry")).events
    assert {(e.actor, e.subject) for e in events} == {
        ("beheerder", f"message {pk}"),
        ("beheerder", f"message {other}"),
    }
    assert all(e.detail is None for e in events)


def test_force_needs_a_reason_and_records_it(ops: Ops) -> None:
    pk = failed_send(ops, "R-3")
    with pytest.raises(ServiceError, match="--reason"):
        retry(ops.ctx, Retry(str(pk), force=True))
    with pytest.raises(ServiceError, match="--reason"):
        retry(ops.ctx, Retry(str(pk), force=True, reason="   "))
    assert list_audit(ops.ctx, AuditQuery(action="message-retry")).events == ()
    done = retry(ops.ctx, Retry(str(pk), force=True, reason="partner heeft de fout hersteld"))
    assert done.forced
    [event] = list_audit(ops.ctx, AuditQuery(action="message-retry")).events
    assert event.detail == "forced: partner heeft de fout hersteld" and event.pk == done.audit_pk


def test_unknown_message_is_not_found(ops: Ops) -> None:
    with pytest.raises(NotFoundError):
        retry(ops.ctx, Retry("999999"))
    with pytest.raises(NotFoundError):
        retry(ops.ctx, Retry("nope@peer"))
