"""What ``messages list`` and ``messages show`` print about a message's lifecycle, as plain dicts.

Both layers (ggk_ebms.lifecycle): the ebMS status and, for StUF-GGk traffic, the business status
with its StUF code and the message that decided it; and the history, one row per step. Plain
values only, so any output format (table, text, JSON) can be made from them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ggk_ebms.store.lifecycle import HistoryEntry
from ggk_ebms.store.messages import StoredMessage


def ebms_status(message: StoredMessage) -> str:
    return message.status + (f" ({message.error_code})" if message.error_code else "")


def business_status(message: StoredMessage) -> str:
    """'refused (IB014), message 12', 'answered, message 15', or '' without a StUF business layer."""
    if message.business_status is None:
        return ""
    text = message.business_status
    if message.business_code:
        text += f" ({message.business_code})"
    if message.business_ref_pk is not None:
        text += f", message {message.business_ref_pk}"
    return text


def lifecycle_fields(message: StoredMessage) -> dict[str, str]:
    """The lifecycle part of ``messages show``."""
    fields = {
        "status": message.status + (f" — {message.status_reason}" if message.status_reason else ""),
        "error code": message.error_code or "",
    }
    if message.business_status is not None:
        fields["business status"] = business_status(message) + (
            f" — {message.business_reason}" if message.business_reason else ""
        )
    return fields


def history_rows(entries: Sequence[HistoryEntry]) -> list[dict[str, str]]:
    """One dict per lifecycle step, oldest first."""
    return [
        {
            "at": entry.at.isoformat(),
            "layer": entry.layer,
            "event": entry.event,
            "from": entry.from_status or "(new)",
            "to": entry.to_status,
            "code": entry.code or "",
            "reason": entry.reason or "",
            "rule": entry.rule,
        }
        for entry in entries
    ]
