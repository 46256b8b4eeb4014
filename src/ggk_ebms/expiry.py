"""What expires soon: our own certificates, partners' certificates in the CPAs, and the CPAs.

A PKIoverheid certificate or a CPA that runs out stops the traffic of a whole chain partner, so
it is announced ``expiry_warning_days`` ahead (docs/security.md, "Expiry"): by ``config check``,
in the log of ``serve`` at start and daily, and by whatever else wants the list (metrics).

``expiring`` is pure (certificates, agreements and a moment in, a list out); ``collect`` reads
the configured certificate files and the stored CPAs for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509

from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.errors import GgkEbmsError

log = logging.getLogger(__name__)

OWN_CERTIFICATE_SETTINGS = ("tls_server_cert", "tls_client_cert")


@dataclass(frozen=True)
class ExpiringItem:
    """One certificate or CPA that expires within the warning window (or has expired)."""

    kind: Literal["certificate", "cpa"]
    owner: Literal["ours", "partner", "agreement"]
    name: str  # a setting name, or "CPA <id>: <party> certificate <certId>", or "CPA <id>"
    not_after: datetime
    days_left: int  # whole days from now; negative once expired

    @property
    def expired(self) -> bool:
        return self.days_left < 0

    def describe(self) -> str:
        what = "expired" if self.expired else f"expires in {self.days_left} day(s)"
        return f"{self.name} {what} (on {self.not_after:%Y-%m-%d})"


def _days(not_after: datetime, now: datetime) -> int:
    return (not_after - now) // timedelta(days=1)


def expiring(
    own: Iterable[tuple[str, x509.Certificate]],
    agreements: Iterable[Agreement],
    our_party_ids: Sequence[str],
    *,
    now: datetime,
    within: timedelta,
) -> list[ExpiringItem]:
    """Every item that is not valid anymore at ``now + within``, soonest first."""
    limit = now + within
    items: list[ExpiringItem] = []
    for name, certificate in own:
        if certificate.not_valid_after_utc <= limit:
            end = certificate.not_valid_after_utc
            items.append(ExpiringItem("certificate", "ours", name, end, _days(end, now)))
    for agreement in agreements:
        if agreement.end <= limit:
            items.append(
                ExpiringItem(
                    "cpa", "agreement", f"CPA {agreement.cpa_id}", agreement.end, _days(agreement.end, now)
                )
            )
        try:
            ours = lookup.own_party(agreement, our_party_ids)
        except GgkEbmsError:
            ours = None
        for party in agreement.parties:
            for cert_id, cert in sorted(party.certificates.items()):
                if cert.der is None:
                    continue
                try:
                    certificate = x509.load_der_x509_certificate(cert.der)
                except ValueError:
                    continue
                end = certificate.not_valid_after_utc
                if end <= limit:
                    items.append(
                        ExpiringItem(
                            "certificate",
                            "ours" if party is ours else "partner",
                            f"CPA {agreement.cpa_id}: {party.party_name} certificate {cert_id}",
                            end,
                            _days(end, now),
                        )
                    )
    return sorted(items, key=lambda item: (item.not_after, item.name))


def own_certificates(settings: Settings) -> list[tuple[str, x509.Certificate]]:
    """The leaf of each of our certificate files that can be read (others are config check's job)."""
    found = []
    for name in OWN_CERTIFICATE_SETTINGS:
        try:
            found.append((name, x509.load_pem_x509_certificates(getattr(settings, name).read_bytes())[0]))
        except (OSError, ValueError, IndexError):
            continue
    return found


def collect(settings: Settings, agreements: Iterable[Agreement], now: datetime) -> list[ExpiringItem]:
    return expiring(
        own_certificates(settings),
        agreements,
        settings.party_ids,
        now=now,
        within=timedelta(days=settings.expiry_warning_days),
    )


def log_expiring(items: Iterable[ExpiringItem]) -> int:
    """One WARNING line per item; the number of lines."""
    count = 0
    for item in items:
        log.warning("%s %s", "expiry:", item.describe())
        count += 1
    return count
