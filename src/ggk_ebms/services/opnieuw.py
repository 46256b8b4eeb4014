"""Re-trying a parked message (``messages retry``; the API and console call the same function).

What may be re-tried is ``delivery.retry``'s rule (docs/delivery.md "Re-trying"): a received
message that ended Failed, a sent one that ended DeliveryFailed or Expired. A message that was
refused (a Fo01, or a refusal our side recorded) is only re-tried with ``force`` and a reason,
because re-trying repeats what was refused; the reason goes into the message's attempts and the
audit trail with who asked (docs/operations.md "Audit trail").
"""

from __future__ import annotations

from dataclasses import dataclass

from ggk_ebms.delivery.retry import retry_message
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.messages import MessageStore, StoredMessage

__all__ = ["Retry", "RetryResult", "retry"]

MAX_REASON = 500  # an operator's sentence; the attempt's error column holds 2000 characters


@dataclass(frozen=True)
class Retry:
    """Which message (its number or its ebMS MessageId) and, for a refused one, force and why."""

    ident: str
    force: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class RetryResult:
    message_pk: int
    direction: str
    gedaan: str  # what was done (the job queued)
    forced: bool
    audit_pk: int


def _find(ctx: ServiceContext, ident: str) -> StoredMessage:
    store = MessageStore(ctx.database, ctx.clock)
    ident = ident.strip()
    found: StoredMessage | None
    if ident.isdigit():
        try:
            found = store.get(int(ident))
        except GgkEbmsError:
            found = None
    else:
        found = store.find("in", ident) or store.find("out", ident)
    if found is None:
        raise NotFoundError(f"geen bericht {ident}")
    return found


def retry(ctx: ServiceContext, request: Retry) -> RetryResult:
    """Queue the message again; ServiceError (Dutch, for the operator) when that is not allowed."""
    reason = (request.reason or "").strip()
    if request.force and not reason:
        raise ServiceError(
            "--force vraagt om --reason TEKST: waarom wordt een geweigerd bericht opnieuw verwerkt?"
        )
    if len(reason) > MAX_REASON:
        raise ServiceError(f"de reden is te lang ({len(reason)} tekens, maximaal {MAX_REASON})")
    message = _find(ctx, request.ident)
    try:
        done = retry_message(
            ctx.database, message.pk, now=ctx.clock.now(), force=request.force, reason=reason or None
        )
    except NotFoundError:
        raise
    except GgkEbmsError as exc:
        raise ServiceError(str(exc)) from None
    detail = f"forced: {reason}" if request.force else None
    audit_pk = audit.record(ctx, "message-retry", f"message {message.pk}", detail)
    return RetryResult(message.pk, message.direction, done, request.force, audit_pk)
