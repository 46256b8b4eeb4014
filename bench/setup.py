"""Set-up shared by the scenarios: CPAs on the run's ports, work folders, database counts."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import DEV_CERTS, DEV_CPAS, GEMEENTE, RINIS
from ggk_ebms.cpa.create import AgreementRequest, PartyRequest, create_agreement
from ggk_ebms.cpa.model import Agreement, Profile
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.store import tables

DEV_OSB_RM = "dev-osb-rm.xml"  # syncReplyMode none: Acknowledgments go back asynchronously


@contextmanager
def work_folder(keep: bool = False) -> Iterator[Path]:
    """A scratch folder for settings files, logs, CPA folders and SQLite files of one run."""
    path = Path(tempfile.mkdtemp(prefix="ggk-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _side(name: str, oin: str, role: str, port: int, party: str) -> PartyRequest:
    return PartyRequest(
        name=name,
        oin=oin,
        role=role,
        endpoint=f"https://localhost:{port}/ebms",
        server_cert_pem=(DEV_CERTS / party / "server.pem").read_bytes(),
        client_cert_pem=(DEV_CERTS / party / "client.pem").read_bytes(),
    )


def bench_cpa(
    gemeente_port: int,
    rinis_port: int,
    *,
    sync_reply: bool,
    profile: Profile = Profile.OSB_RM,
    retry_interval: timedelta = timedelta(minutes=5),
) -> bytes:
    """An osb-rm CPA between the dev gemeente and dev RINIS on this run's ports.

    ``sync_reply`` makes the MSH signal channel mshSignalsOnly, so Acknowledgments come back in the
    HTTP response; the long RetryInterval keeps the sender from retrying during a run.
    """
    return create_agreement(
        AgreementRequest(
            profile=profile,
            party=_side("Gemeente (bench)", GEMEENTE, "Gemeente", gemeente_port, "gemeente"),
            partner=_side("RINIS (bench)", RINIS, "GGk", rinis_port, "rinis"),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2035, 12, 1, tzinfo=UTC),
            retries=3,
            retry_interval=retry_interval,
            sync_reply=sync_reply,
            cpa_version=f"bench-{profile.value}-{'sync' if sync_reply else 'async'}",
        )
    )


def cpa_folder(work: Path, name: str, data: bytes) -> tuple[Path, Agreement]:
    folder = work / f"cpa-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.xml").write_bytes(data)
    return folder, parse_agreement(data)


def inbound_cpa(work: Path, *, sync: bool, port: int, signed: bool = False) -> tuple[Path, Agreement]:
    """The CPA of an inbound run: the dev osb-rm CPA (async acks), or one made for the run
    (sync acks, or signed: osb-rm-s)."""
    if signed:
        data = bench_cpa(port, port, sync_reply=sync, profile=Profile.OSB_RM_S)
        return cpa_folder(work, "bench-signed", data)
    if sync:
        return cpa_folder(work, "bench-sync", bench_cpa(port, port, sync_reply=True))
    return cpa_folder(work, "dev-osb-rm", (DEV_CPAS / DEV_OSB_RM).read_bytes())


def count_messages(url: str, *, direction: str, kind: str, status: str | None = None) -> int:
    """Rows in the message log, read straight from the database the server wrote."""
    engine = sa.create_engine(url)
    try:
        query = (
            sa.select(sa.func.count())
            .select_from(tables.message)
            .where(tables.message.c.direction == direction, tables.message.c.kind == kind)
        )
        if status is not None:
            query = query.where(tables.message.c.status == status)
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def status_counts(url: str, *, direction: str, kind: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        query = (
            sa.select(tables.message.c.status, sa.func.count())
            .where(tables.message.c.direction == direction, tables.message.c.kind == kind)
            .group_by(tables.message.c.status)
        )
        with engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}
    finally:
        engine.dispose()


def wait_for_statuses(
    url: str, *, direction: str, statuses: tuple[str, ...], count: int, timeout: float
) -> dict[str, int]:
    """Poll the business messages of ``direction`` until ``count`` of them have one of ``statuses``.

    Gives the status counts then, or when ``timeout`` seconds have passed (the bench reports
    what did not arrive rather than hanging).
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = status_counts(url, direction=direction, kind="business")
        if sum(counts.get(s, 0) for s in statuses) >= count or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def status_reasons(url: str, *, direction: str, kind: str, limit: int = 3) -> list[str]:
    """The commonest (status, reason) pairs, to say why messages did not get where expected."""
    engine = sa.create_engine(url)
    m = tables.message
    try:
        query = (
            sa.select(m.c.status, m.c.status_reason, sa.func.count().label("n"))
            .where(m.c.direction == direction, m.c.kind == kind)
            .group_by(m.c.status, m.c.status_reason)
            .order_by(sa.desc("n"))
            .limit(limit)
        )
        with engine.connect() as conn:
            return [f"{n} x {status}: {(reason or '')[:200]}" for status, reason, n in conn.execute(query)]
    finally:
        engine.dispose()
