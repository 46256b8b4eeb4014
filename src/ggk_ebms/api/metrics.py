"""Prometheus metrics of the endpoint (docs/api.md, "Metrics").

Request latency is measured in the API process. Everything about messages, queues, failures and
expiry is read from the database at scrape time by one collector (a handful of GROUP BY
queries), so every process and worker that shares the database is counted and nothing has to
be kept in memory between scrapes. Label values are CPAIds, actions and our state names: a
bounded set, never a MessageId or payload content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography import x509
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ggk_ebms.config import Settings
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import (
    UtcDateTime,
    aanlever_batch,
    attempt,
    cpa,
    job,
    message,
    worker_heartbeat,
)

log = logging.getLogger(__name__)

_DAY = 86400.0


def _days(until: datetime, now: datetime) -> float:
    return (until - now).total_seconds() / _DAY


def _failure_reason(outcome: str, http_status: int | None) -> str:
    # A bounded label: the HTTP status when there was an answer, else the transport layer.
    return f"http_{http_status}" if http_status is not None else f"transport_{outcome}"


class StoreCollector(Collector):
    def __init__(self, settings: Settings, database: Database, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.database = database
        self.now = now
        # CPA sha256 -> (certificate label, notAfter) of each certificate in it.
        self._certificates: dict[str, list[tuple[str, datetime]]] = {}

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception as exc:  # a scrape must answer even when the database is away
            log.warning("metrics: database not readable: %s", type(exc).__name__)
            up = GaugeMetricFamily("ggk_ebms_database_up", "1 when the last scrape could read the database")
            up.add_metric([], 0.0)
            yield up

    def _collect(self) -> Iterator[Metric]:
        now = self.now()
        messages = GaugeMetricFamily(
            "ggk_ebms_messages",
            "Stored business messages by direction (in: received, out: sent), CPA, action and state",
            labels=["direction", "cpa_id", "action", "status"],
        )
        signals = GaugeMetricFamily(
            "ggk_ebms_signals",
            "Stored ebMS signals by direction, kind and state",
            labels=["direction", "kind", "status"],
        )
        depth = GaugeMetricFamily(
            "ggk_ebms_queue_depth", "Unfinished jobs per queue and state", labels=["queue", "status"]
        )
        oldest = GaugeMetricFamily(
            "ggk_ebms_queue_oldest_job_age_seconds",
            "Age of the oldest unfinished job per queue",
            labels=["queue"],
        )
        failures = GaugeMetricFamily(
            "ggk_ebms_delivery_failures",
            "Failed sending attempts kept in the attempt log, by reason (HTTP status or transport)",
            labels=["reason"],
        )
        cpa_days = GaugeMetricFamily(
            "ggk_ebms_cpa_expiry_days", "Days until each stored CPA ends (negative: ended)", labels=["cpa_id"]
        )
        cert_days = GaugeMetricFamily(
            "ggk_ebms_certificate_expiry_days",
            "Days until a certificate expires: our own from the settings, and each one in a stored CPA",
            labels=["source", "name"],
        )
        beats = GaugeMetricFamily(
            "ggk_ebms_worker_heartbeat_age_seconds",
            "Seconds since each worker last said it is alive",
            labels=["worker"],
        )
        business = GaugeMetricFamily(
            "ggk_ebms_messages_business",
            "Stored business messages by direction and lifecycle business status (the StUF layer: "
            "none until a Fo01, retour or ketendata outcome sets it)",
            labels=["direction", "business_status"],
        )
        batches = GaugeMetricFamily(
            "ggk_ebms_aanlever_batches",
            "Aanleveringen by the portal's status (Ontvangen, Bezig, Afgeleverd, Afgekeurd)",
            labels=["status"],
        )
        with self.database.session() as session:
            for direction, business_status, count in session.execute(
                sa.select(message.c.direction, message.c.business_status, sa.func.count())
                .where(message.c.kind == "business")
                .group_by(message.c.direction, message.c.business_status)
            ).all():
                business.add_metric([direction, business_status or "none"], float(count))
            for status, count in session.execute(
                sa.select(aanlever_batch.c.status, sa.func.count()).group_by(aanlever_batch.c.status)
            ).all():
                batches.add_metric([status], float(count))
            rows = session.execute(
                sa.select(
                    message.c.direction,
                    message.c.cpa_id,
                    message.c.action,
                    message.c.kind,
                    message.c.status,
                    sa.func.count(),
                ).group_by(
                    message.c.direction, message.c.cpa_id, message.c.action, message.c.kind, message.c.status
                )
            ).all()
            for direction, cpa_id, action, kind, status, count in rows:
                if kind == "business":
                    messages.add_metric([direction, cpa_id, action, status], float(count))
                else:
                    signals.add_metric([direction, kind, status], float(count))
            jobs = session.execute(
                sa.select(
                    job.c.queue,
                    job.c.status,
                    sa.func.count(),
                    sa.func.min(job.c.created_at, type_=UtcDateTime),
                )
                .where(job.c.status.in_(("pending", "running")))
                .group_by(job.c.queue, job.c.status)
            ).all()
            first: dict[str, datetime] = {}
            for queue, status, count, created in jobs:
                depth.add_metric([queue, status], float(count))
                created_at: datetime | None = created
                if created_at is not None and (queue not in first or created_at < first[queue]):
                    first[queue] = created_at
            for queue, created_at in first.items():
                oldest.add_metric([queue], max(0.0, (now - created_at).total_seconds()))
            failed = session.execute(
                sa.select(attempt.c.outcome, attempt.c.http_status, sa.func.count())
                .where(attempt.c.outcome != "ok")
                .group_by(attempt.c.outcome, attempt.c.http_status)
            ).all()
            totals: dict[str, float] = {}
            for outcome, http_status, count in failed:
                reason = _failure_reason(outcome, http_status)
                totals[reason] = totals.get(reason, 0.0) + float(count)
            for reason, count in sorted(totals.items()):
                failures.add_metric([reason], count)
            stored = session.execute(sa.select(cpa.c.cpa_id, cpa.c.end_at, cpa.c.sha256)).all()
            # Parsing every CPA per scrape cost ~8 ms each: certificates are kept per CPA digest.
            missing = [digest for _, _, digest in stored if digest not in self._certificates]
            if missing:
                for digest, raw in session.execute(
                    sa.select(cpa.c.sha256, cpa.c.raw).where(cpa.c.sha256.in_(missing))
                ).all():
                    self._certificates[digest] = [
                        (label, _not_after(der))
                        for label, der in _cpa_certificates(bytes(raw), self.settings.max_cpa_bytes)
                    ]
            self._certificates = {d: self._certificates[d] for _, _, d in stored if d in self._certificates}
            for name, kind, beat_at in session.execute(
                sa.select(worker_heartbeat.c.name, worker_heartbeat.c.kind, worker_heartbeat.c.beat_at)
            ).all():
                beats.add_metric([f"{kind}:{name}"], max(0.0, (now - beat_at).total_seconds()))
        for cpa_id, end_at, digest in stored:
            cpa_days.add_metric([cpa_id], _days(end_at, now))
            for label, not_after in self._certificates.get(digest, []):
                cert_days.add_metric([f"cpa:{cpa_id}", label], _days(not_after, now))
        for setting_name in ("tls_server_cert", "tls_client_cert"):
            path: Path = getattr(self.settings, setting_name)
            try:
                certificate = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError):
                continue
            cert_days.add_metric(["settings", setting_name], _days(certificate.not_valid_after_utc, now))
        up = GaugeMetricFamily("ggk_ebms_database_up", "1 when the last scrape could read the database")
        up.add_metric([], 1.0)
        yield from (
            messages,
            business,
            batches,
            signals,
            depth,
            oldest,
            failures,
            cpa_days,
            cert_days,
            beats,
            up,
        )


def _not_after(der: bytes) -> datetime:
    return x509.load_der_x509_certificate(der).not_valid_after_utc


def _cpa_certificates(raw: bytes, max_bytes: int) -> list[tuple[str, bytes]]:
    try:
        agreement = parse_agreement(raw, max_bytes=max(max_bytes, len(raw)))
    except Exception:  # a stored CPA that no longer parses has no certificates to report
        return []
    found: list[tuple[str, bytes]] = []
    for party in agreement.parties:
        for cert_id, certificate in sorted(party.certificates.items()):
            if certificate.der is None:
                continue
            try:
                _not_after(certificate.der)
            except ValueError:
                continue
            found.append((f"{party.party_name}/{cert_id}", certificate.der))
    return found


class ApiMetrics:
    """The registry /metrics serves: request latency plus the store collector."""

    def __init__(self, settings: Settings, database: Database, now: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "ggk_ebms_api_request_seconds",
            "Management API request latency by route and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(StoreCollector(settings, database, now))

    def render(self) -> bytes:
        return generate_latest(self.registry)
