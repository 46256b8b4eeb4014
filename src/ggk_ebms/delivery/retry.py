"""Re-try a parked message: ``ggk-ebms messages retry ID``.

A received business message that ended Failed (target down too long, no route, a refusal the
operator has since resolved) gets a fresh 'deliver' job: the whole inbound pipeline (docs/stuf-routing.md
inbound checks) runs again with
the routing table and settings in force now, and its tries count from one. A sent message that
ended DeliveryFailed or Expired is queued for sending again (``MessageStore.resend``). Nothing is
re-tried while it still has a job pending or running.
"""

from __future__ import annotations

from datetime import datetime

from ggk_ebms.delivery.outcome import refusal_outcome
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import RETRIABLE_INBOUND, RETRIABLE_OUTBOUND
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import UNFINISHED_JOB_STATUSES, MessageStore


def retry_message(
    database: Database, pk: int, *, now: datetime, force: bool = False, reason: str | None = None
) -> str:
    """Queue message ``pk`` again; returns what was done, or raises StoreError saying why not.

    ``force`` with a ``reason``: re-try even a message whose outcome is a refusal (recorded)."""
    store = MessageStore(database)
    stored = store.get(pk)
    if stored.kind != "business":
        raise StoreError(f"message {pk} is a {stored.kind} signal; only business messages are re-tried")
    jobs = JobQueue(database).jobs_for(pk)
    if any(j.status in UNFINISHED_JOB_STATUSES for j in jobs):
        raise StoreError(f"message {pk} is still queued (status {stored.status}); nothing to re-try")
    refused = refusal_outcome(database, pk)
    if refused is not None:
        if not force or not (reason or "").strip():
            raise StoreError(
                f"message {pk} was refused: {refused}; re-trying repeats what was refused. "
                "If that is what you want: --force --reason TEXT (the reason is recorded)"
            )
        JobQueue(database).record_attempt(
            pk,
            job_pk=None,
            started_at=now,
            finished_at=now,
            outcome="retry",
            error=f"re-try forced by an operator although {refused}: {(reason or '').strip()}"[:2000],
        )
    if stored.direction == "out":
        if stored.status not in RETRIABLE_OUTBOUND:
            allowed = ", ".join(sorted(RETRIABLE_OUTBOUND))
            raise StoreError(f"sent message {pk} is {stored.status}; only {allowed} are re-sent")
        send_job = store.resend(pk, due_at=now, reason="re-send asked by an operator")
        return f"message {pk} queued for sending again (job {send_job})"
    if stored.status not in RETRIABLE_INBOUND:
        raise StoreError(f"received message {pk} is {stored.status}; only Failed messages are re-tried")
    if not any(j.queue == "deliver" for j in jobs):
        # Refused at the ebMS layer (bad signature, expired, unknown action…): the sender got a
        # MessageError and may resend; delivering it now would deliver what we refused, maybe twice.
        raise StoreError(
            f"received message {pk} was refused with ebMS error {stored.error_code or 'unknown'} and "
            "never accepted for delivery; it cannot be re-tried"
        )
    job_pk = store.redeliver(pk, due_at=now)
    return f"message {pk} queued for delivery again (job {job_pk})"
