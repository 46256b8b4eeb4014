"""The audit trail of the management API: one call of ``record_audit`` per change.

Written to the audit trail every operator action goes to (``audit_event``, docs/operations.md
"Audit trail"; ``ggk-ebms audit list`` shows it) with the token's name as the actor, prefixed
``api:``. What (an action name such as ``cpa.insert``) and on what (an identifier: CPAId,
MessageId, mapping source) — never a payload or a BSN (docs/security.md: no personal data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ggk_ebms.store.audit import AuditLog
from ggk_ebms.store.tables import NAME_MAX

if TYPE_CHECKING:
    from ggk_ebms.api.operations import Call


def record_audit(call: Call, action: str, target: str, outcome: str = "ok", detail: str = "") -> None:
    """Record one change made through the API by ``call``'s token."""
    text = f"outcome={outcome}" + (f" {detail}" if detail else "")
    AuditLog(call.ctx.database).record(
        at=call.ctx.clock.now(),
        actor=f"api:{call.actor}"[:NAME_MAX],
        action=action,
        subject=target[:NAME_MAX],
        detail=text,
    )
