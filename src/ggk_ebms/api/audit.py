"""The audit trail of the management API: one call of ``record_audit`` per change.

Written to the ``ggk_ebms.api.audit`` log (one line per change, key=value). Who (the token's
name), what (an action name such as ``cpa.insert``) and on what (an identifier: CPAId, MessageId,
mapping source) — never a payload or a BSN (docs/security.md: no personal data in logs).
"""

from __future__ import annotations

import logging

log = logging.getLogger("ggk_ebms.api.audit")


def record_audit(actor: str, action: str, target: str, outcome: str = "ok", detail: str = "") -> None:
    """Record one change made through the API."""
    text = f"actor={actor!r} action={action} target={target!r} outcome={outcome}"
    if detail:
        text += f" detail={detail!r}"
    log.warning("%s", text)
