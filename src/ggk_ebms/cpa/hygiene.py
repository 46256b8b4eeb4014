"""CPA hygiene: is a CPA about us at all, and when does it (or a certificate in it) expire. Pure.

A CPA in which none of the parties carries one of our OINs (setting ``party_ids``) cannot be used
by this endpoint and is refused at import. Expiry: Digikoppeling CPAs and the PKIoverheid
certificates in them have an end date; a renewal must be arranged in time, so we warn a
configurable number of days (setting ``expiry_warning_days``) before the CPA's ``end`` or any
certificate's notAfter, and report an error once it has passed (Digikoppeling Koppelvlakstandaard
ebMS2: an expired CPA may not be used; docs/cpa.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from ggk_ebms.cpa.model import Agreement
from ggk_ebms.errors import CpaError

WARNING = "warning"
ERROR = "error"


def require_our_party(agreement: Agreement, our_party_ids: Sequence[str]) -> None:
    """Raise CpaError when no party of ``agreement`` carries one of ``our_party_ids``."""
    ours = set(our_party_ids)
    if any(pid.value in ours for party in agreement.parties for pid in party.party_ids):
        return
    theirs = ", ".join(pid.value for party in agreement.parties for pid in party.party_ids) or "none"
    raise CpaError(
        f"CPA {agreement.cpa_id}: none of its parties ({theirs}) is one of ours "
        f"(setting party_ids: {', '.join(sorted(ours)) or 'none'}); this CPA is not for this endpoint"
    )


@dataclass(frozen=True)
class Expiry:
    level: str  # WARNING or ERROR
    cpa_id: str
    what: str  # "CPA" or "certificate <certId> of <party>"
    moment: datetime

    def describe(self, now: datetime) -> str:
        when = f"{self.moment:%Y-%m-%d %H:%M} UTC"
        if self.level == ERROR:
            return f"CPA {self.cpa_id}: {self.what} expired on {when}"
        days = max(0, (self.moment - now).days)
        return f"CPA {self.cpa_id}: {self.what} expires on {when} (in {days} days)"


def _not_after(der: bytes) -> datetime | None:
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        return None  # the CPA lint reports unreadable certificates


def expiries(agreement: Agreement, now: datetime, warn_days: int) -> list[Expiry]:
    """What expires within ``warn_days`` (WARNING) or has expired (ERROR): the CPA, its certificates."""
    horizon = now + timedelta(days=warn_days)
    moments: list[tuple[str, datetime]] = [("CPA", agreement.end)]
    for party in agreement.parties:
        for cert_id, certificate in sorted(party.certificates.items()):
            if certificate.der is None:
                continue
            end = _not_after(certificate.der)
            if end is not None:
                moments.append((f"certificate {cert_id} of {party.party_name}", end))
    found: list[Expiry] = []
    for what, moment in moments:
        if moment <= now:
            found.append(Expiry(ERROR, agreement.cpa_id, what, moment))
        elif moment <= horizon:
            found.append(Expiry(WARNING, agreement.cpa_id, what, moment))
    return found
