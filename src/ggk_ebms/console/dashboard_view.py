"""The dashboard's figures and its chart (inline SVG, so no script and no chart library)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509

from ggk_ebms.console.rights import visible_berichttypes
from ggk_ebms.services import cpa_beheer
from ggk_ebms.services.berichtenlog import LogFilter, berichtenlog
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.dashboard import open_jobs, per_day

DAYS: Final = 14
EXPIRY_WARNING: Final = timedelta(days=60)  # the GGk asks for a new CPA well before the old one ends
NEEDS_ACTION: Final = ("Failed", "DeliveryFailed", "Expired", "Geweigerd")


@dataclass(frozen=True)
class Bar:
    day: date
    incoming: int
    outgoing: int


@dataclass(frozen=True)
class Expiring:
    cpa_id: str
    end: date
    days_left: int


@dataclass(frozen=True)
class Certificate:
    setting: str  # tls_server_cert | tls_client_cert
    not_after: date
    days_left: int


def own_certificates(ctx: ServiceContext) -> tuple[Certificate, ...]:
    """Our own TLS certificates (they are also in every CPA: a renewal needs new CPAs)."""
    now = ctx.clock.now()
    found = []
    for name in ("tls_server_cert", "tls_client_cert"):
        try:
            cert = x509.load_pem_x509_certificate(Path(getattr(ctx.settings, name)).read_bytes())
        except (OSError, ValueError):
            continue
        end = cert.not_valid_after_utc
        found.append(Certificate(name, end.date(), (end - now).days))
    return tuple(found)


@dataclass(frozen=True)
class DashboardView:
    bars: tuple[Bar, ...]
    chart_svg: str
    queues: dict[str, int]
    needs_action: dict[str, int]
    expiring: tuple[Expiring, ...]
    certificates: tuple[Certificate, ...]
    warn_days: int
    # False for an account limited to some gemeenten: queues, CPAs and certificates not shown.
    whole_installation: bool = True


def chart(bars: tuple[Bar, ...], width: int = 700, height: int = 180) -> str:
    """Grouped bars in/out per day; every value is also in the table next to it (accessibility)."""
    top = max([1, *(max(b.incoming, b.outgoing) for b in bars)])
    slot = width / max(1, len(bars))
    bar = max(2.0, slot / 2 - 3)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20}" role="img" '
        f'aria-labelledby="chart-title" class="chart"><title id="chart-title">Berichten per dag, '
        f"in (blauw) en uit (oranje)</title>"
    ]
    for i, b in enumerate(bars):
        x = i * slot + 2
        for j, (value, cls) in enumerate(((b.incoming, "in"), (b.outgoing, "uit"))):
            h = round(height * value / top, 1)
            parts.append(
                f'<rect class="bar-{cls}" x="{x + j * (bar + 1):.1f}" y="{height - h:.1f}" '
                f'width="{bar:.1f}" height="{h}"><title>{b.day:%d-%m} {cls}: {value}</title></rect>'
            )
        parts.append(f'<text x="{x:.1f}" y="{height + 14}" font-size="10">{b.day:%d-%m}</text>')
    parts.append("</svg>")
    return "".join(parts)


def build(ctx: ServiceContext, products: Iterable[str]) -> DashboardView:
    visible = visible_berichttypes(products)
    now = ctx.clock.now()
    first = (now - timedelta(days=DAYS - 1)).date()
    counts = per_day(ctx.database, now - timedelta(days=DAYS), visible, ctx.gemeentecodes) if visible else {}
    bars = tuple(
        Bar(day, counts.get((day, "in"), 0), counts.get((day, "out"), 0))
        for day in (first + timedelta(days=i) for i in range(DAYS))
    )
    needs: dict[str, int] = {}
    if visible:
        for status in NEEDS_ACTION:
            page = berichtenlog(ctx, LogFilter(status=status, berichttypes=visible, limit=1000))
            needs[status] = len(page.rows)
    if ctx.gemeentecodes is not None:
        # Queues, CPAs and our certificates are of the whole installation, as are the pages that
        # manage them: an account for some gemeenten sees only its own message figures
        # (docs/console.md "Rechten per gemeentecode").
        return DashboardView(
            bars, chart(bars), {}, needs, (), (), EXPIRY_WARNING.days, whole_installation=False
        )
    expiring = tuple(
        Expiring(c.cpa_id, c.end.date(), (c.end - now).days)
        for c in cpa_beheer.list_cpas(ctx)
        if c.end - now < EXPIRY_WARNING
    )
    return DashboardView(
        bars,
        chart(bars),
        open_jobs(ctx.database),
        needs,
        expiring,
        own_certificates(ctx),
        EXPIRY_WARNING.days,
    )
