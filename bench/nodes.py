"""Two nodes on one PostgreSQL: ``ggk-ebms serve`` in two network namespaces, one node vs two.

Each node is a namespace with an address of its own (bench/netns.py), as two machines behind a
load balancer would be; both use one PostgreSQL schema, reached through a relay in the root
namespace (PostgreSQL listens on 127.0.0.1 only). Each runs its delivery worker: received
Di01 heenberichten are unwrapped, routed and written to one shared directory target, the
deliver jobs claimed ``FOR UPDATE SKIP LOCKED`` by whichever node is free (store/jobs.py).

Phases, each ``seconds`` long, closed loop with ``concurrency`` messages in flight per node:

1. the no-op baseline (bench/baseline.py) on node 0 alone, then on both nodes;
2. the endpoint on node 0 alone, then on both nodes (half of the load to each).

The load generator runs in the root namespace. For each phase the CPU time of every part is
read from /proc (nodes, the relay, the PostgreSQL processes, the load generator itself) next to
the machine's busy share, so a ratio below the target shows what limits it. Afterwards every
message must be stored once and delivered once: one file per message, one deliver job per
message that ran once (attempts = 1) with one successful attempt, no MessageId stored twice.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa

from bench import loadgen, netns
from bench.common import DEV_CERTS, GEMEENTE, RINIS, Report, ratio
from bench.databases import DatabaseUnavailable, private_database
from bench.endtoend import routes_file
from bench.messages import Mix, build_mix
from bench.servers import ServerProcess, cpu_seconds, free_port, party_settings, write_settings
from bench.setup import cpa_folder, work_folder
from ggk_ebms.config import Settings
from ggk_ebms.cpa.create import AgreementRequest, PartyRequest, create_agreement
from ggk_ebms.cpa.model import Profile
from ggk_ebms.server.autoimport import import_cpa_dir, import_routes_file
from ggk_ebms.store import tables
from ggk_ebms.store.db import Database

COLUMNS: Final = (
    "target",
    "nodes",
    "msg_per_s",
    "two_vs_one",
    "errors",
    "cpu_nodes_s",
    "cpu_relay_s",
    "cpu_postgres_s",
    "cpu_loadgen_s",
    "cpu_other_s",
    "machine_busy",
)
_FINAL: Final = ("Forwarded", "Processed", "Failed")


# --- the cluster: CPA, settings, processes -----------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """What one run sets up once: the LAN, the shared database (direct and via the relay)."""

    lan: netns.Lan
    db_url: str  # from the root namespace
    node_db_url: str  # from inside a namespace, through the relay
    relay_pid: int
    port: int  # the same port on every node, each on its own address
    work: Path


def relayed_url(db_url: str, host: str, port: int) -> str:
    """``db_url`` pointing at the relay instead of the server (same database, user, schema)."""
    return sa.make_url(db_url).set(host=host, port=port).render_as_string(hide_password=False)


def node_cpa(lan: netns.Lan, port: int, partner_port: int, *, certs: Path, sync_reply: bool) -> bytes:
    """An osb-rm CPA: the gemeente reached at node 0's address (a load balancer's, in a real set-up;
    the nodes share one server certificate naming every node's address), RINIS at the root
    namespace's LAN address."""
    nodes = [node.address for node in lan.nodes]
    gemeente_cert, _ = netns.server_certificate(certs / "gemeente", oin=GEMEENTE, addresses=nodes)
    rinis_cert, _ = netns.server_certificate(certs / "rinis", oin=RINIS, addresses=[lan.host_address])

    def side(name: str, oin: str, role: str, url: str, server_cert: Path, party: str) -> PartyRequest:
        return PartyRequest(
            name=name,
            oin=oin,
            role=role,
            endpoint=url,
            server_cert_pem=server_cert.read_bytes(),
            client_cert_pem=(DEV_CERTS / party / "client.pem").read_bytes(),
        )

    return create_agreement(
        AgreementRequest(
            profile=Profile.OSB_RM,
            party=side(
                "Gemeente (nodes)", GEMEENTE, "Gemeente", f"https://{nodes[0]}:{port}/ebms",
                gemeente_cert, "gemeente",
            ),
            partner=side(
                "RINIS (nodes)", RINIS, "GGk", f"https://{lan.host_address}:{partner_port}/ebms",
                rinis_cert, "rinis",
            ),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2035, 12, 1, tzinfo=UTC),
            retries=3,
            retry_interval=timedelta(minutes=10),
            sync_reply=sync_reply,
            cpa_version=f"nodes-{'sync' if sync_reply else 'async'}",
        )
    )  # fmt: skip


def node_settings(cluster: Cluster, index: int, cpa_dir: Path, **changes: Any) -> Settings:
    """Settings of node ``index``: what must differ per node (bind address, MessageId host, data
    folder) and what all share (database, CPA, certificates, routing table); workers on.

    Migrations and the CPA and routes imports are done once from outside the nodes
    (``prepare_database``, docs/nodes.md), so the nodes neither migrate nor import.
    """
    node = cluster.lan.nodes[index]
    certs = cluster.work / "certs" / "gemeente"
    values: dict[str, Any] = {
        "host": node.address,
        "message_id_host": f"node{index}.gemeente.bench.test",
        "tls_server_cert": certs / "server.pem",
        "tls_server_key": certs / "server-key.pem",
        "worker_enabled": True,
        "worker_poll_seconds": 0.1,
        "auto_migrate": False,
        "cpa_autoimport": False,
        "routes_file": cluster.work / "routes.toml",
        "log_level": "WARNING",
        # The dev client/signing keys on a non-loopback address: a closed LAN inside this host.
        "allow_dev_certificates_public": True,
    }
    values.update(changes)
    folder = cluster.work / f"node{index}"
    return party_settings("gemeente", folder, cluster.node_db_url, cpa_dir, cluster.port, **values)


def prepare_database(db_url: str, settings: Settings) -> None:
    """Migrate and import the CPA and routing table once, as an operator does before starting
    the nodes: several processes doing it at once would race (docs/nodes.md)."""
    database = Database.from_settings(settings.replace(database_url=db_url))
    try:
        database.upgrade()
        for line in (*import_cpa_dir(settings, database), *import_routes_file(settings, database)):
            if "not imported" in line or "does not exist" in line:
                raise RuntimeError(line)
    finally:
        database.dispose()


def node_process(
    cluster: Cluster, index: int, settings: Settings, *, baseline: bool = False
) -> ServerProcess:
    """``ggk-ebms serve`` (or the no-op baseline) inside node ``index``'s namespace."""
    node = cluster.lan.nodes[index]
    name = f"{'baseline' if baseline else 'node'}{index}"
    config = write_settings(settings, cluster.work / f"{name}.toml")
    module = ["-m", "bench.baseline", "--config", str(config)]
    if not baseline:
        module = ["-m", "ggk_ebms", "--config", str(config), "serve"]
    argv = node.command([sys.executable, *module])
    return ServerProcess(argv, cluster.port, cluster.work / f"{name}.log", name=name, host=node.address)


@contextmanager
def cluster_of(nodes: int, work: Path, db_url: str) -> Iterator[Cluster]:
    """A LAN of ``nodes`` namespaces and the relay to the PostgreSQL database ``db_url``.

    Raises netns.NetnsUnavailable when namespaces cannot be made here (``netns.unavailable``).
    """
    reason = netns.unavailable()
    if reason is not None:
        raise netns.NetnsUnavailable(reason)
    url = sa.make_url(db_url)
    relay_log = work / "relay.log"
    with (
        netns.lan(nodes) as lan,
        netns.pg_relay(lan.host_address, url.host or "127.0.0.1", url.port or 5432, relay_log) as relay,
    ):
        node_url = relayed_url(db_url, lan.host_address, relay[0])
        yield Cluster(lan, db_url, node_url, relay[1], free_port(), work)


# --- CPU figures -------------------------------------------------------------------------------------


def _postgres_pids() -> list[int]:
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _postgres_cpu() -> float:
    """CPU seconds of all PostgreSQL server processes (the backends come and go; the sum over the
    live ones at both ends of a phase is close enough once the pools are warm)."""
    total = 0.0
    for pid in _postgres_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuWindow:
    """CPU seconds spent by each part between ``start`` and ``stop``."""

    servers: Sequence[ServerProcess]
    relay_pid: int

    def start(self) -> None:
        self._servers = sum(s.cpu_seconds() for s in self.servers)
        self._relay = cpu_seconds(self.relay_pid)
        self._pg = _postgres_cpu()
        self._own = _own_cpu()
        self._jiffies = _machine_jiffies()

    def stop(self) -> dict[str, Any]:
        busy, total = _machine_jiffies()
        parts = {
            "cpu_nodes_s": sum(s.cpu_seconds() for s in self.servers) - self._servers,
            "cpu_relay_s": cpu_seconds(self.relay_pid) - self._relay,
            "cpu_postgres_s": _postgres_cpu() - self._pg,
            "cpu_loadgen_s": _own_cpu() - self._own,
        }
        busy_seconds = (busy - self._jiffies[0]) / os.sysconf("SC_CLK_TCK")
        # Whatever else kept the CPUs busy: the kernel's share of networking, other processes.
        parts["cpu_other_s"] = max(0.0, busy_seconds - sum(parts.values()))
        row: dict[str, Any] = {k: round(v, 2) for k, v in parts.items()}
        row["machine_busy"] = round((busy - self._jiffies[0]) / max(1, total - self._jiffies[1]), 2)
        return row


# --- load --------------------------------------------------------------------------------------------


async def spread_load(
    urls: Sequence[str], mix: Mix, *, expect: loadgen.Expect, concurrency: int, seconds: float
) -> loadgen.LoadResult:
    """One closed loop per node at once (the load balancer's job: an equal share to each)."""
    parts = await asyncio.gather(
        *(loadgen.closed_loop(u, mix, expect=expect, concurrency=concurrency, seconds=seconds) for u in urls)
    )
    total = loadgen.LoadResult()
    for part in parts:
        total.sent += part.sent
        total.ok += part.ok
        total.bytes_sent += part.bytes_sent
        total.errors.update(part.errors)
        total.latencies += part.latencies
        total.dues += part.dues  # the loops started together: one clock is close enough
        total.elapsed = max(total.elapsed, part.elapsed)
    return total


def _measure(
    report: Report,
    target: str,
    servers: Sequence[ServerProcess],
    urls: Sequence[str],
    mix: Mix,
    *,
    expect: loadgen.Expect,
    concurrency: int,
    seconds: float,
    relay_pid: int,
    warmup: float,
) -> tuple[dict[str, Any], int]:
    """Warm up, then one measured phase; the row and the messages answered as expected."""
    warm = asyncio.run(spread_load(urls, mix, expect=expect, concurrency=4, seconds=warmup))
    window = CpuWindow(servers, relay_pid)
    window.start()
    result = asyncio.run(spread_load(urls, mix, expect=expect, concurrency=concurrency, seconds=seconds))
    row = report.add(
        target=target,
        nodes=len(urls),
        msg_per_s=round(result.rate, 1),
        errors=sum(result.errors.values()) + sum(warm.errors.values()),
        error_reasons=dict((result.errors + warm.errors).most_common(3)),
        p50_ms=result.percentile_ms(50),
        p99_ms=result.percentile_ms(99),
        **window.stop(),
    )
    return row, warm.ok + result.ok


# --- checks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryCheck:
    """What the shared database and the shared inbox say about every received message."""

    stored: int
    distinct_ids: int
    final: dict[str, int]
    deliver_jobs: int
    jobs_run_more_than_once: int
    messages_with_other_than_one_job: int
    ok_attempts: int
    claimed_by: dict[str, int]
    files: int

    def problems(self, expected: int) -> list[str]:
        found = []
        if self.stored != expected:
            found.append(f"{expected} messages acknowledged but {self.stored} stored")
        if self.distinct_ids != self.stored:
            found.append(f"{self.stored - self.distinct_ids} MessageIds stored more than once")
        delivered = self.final.get("Forwarded", 0)
        if delivered != self.stored:
            found.append(f"{delivered} of {self.stored} delivered; statuses {self.final}")
        if self.deliver_jobs != self.stored or self.messages_with_other_than_one_job:
            found.append(f"{self.deliver_jobs} deliver jobs for {self.stored} messages")
        if self.jobs_run_more_than_once:
            found.append(f"{self.jobs_run_more_than_once} deliver jobs ran more than once")
        if self.ok_attempts != self.stored:
            found.append(f"{self.ok_attempts} successful delivery attempts for {self.stored} messages")
        if self.files != self.stored:
            found.append(f"{self.files} files in the inbox for {self.stored} messages")
        return found


def check_deliveries(db_url: str, inbox: Path) -> DeliveryCheck:
    m, j, a = tables.message, tables.job, tables.attempt
    business_in = sa.and_(m.c.direction == "in", m.c.kind == "business")
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored, distinct_ids = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(m.c.message_id))).where(business_in)
            ).one()
            final = {
                str(s): int(n)
                for s, n in conn.execute(
                    sa.select(m.c.status, sa.func.count()).where(business_in).group_by(m.c.status)
                )
            }
            deliver = sa.select(j).where(j.c.queue == "deliver").subquery()
            jobs = conn.execute(sa.select(sa.func.count()).select_from(deliver)).scalar_one()
            twice = conn.execute(
                sa.select(sa.func.count()).select_from(deliver).where(deliver.c.attempts != 1)
            ).scalar_one()
            per_message = (
                sa.select(deliver.c.message_pk).group_by(deliver.c.message_pk).having(sa.func.count() != 1)
            ).subquery()
            odd = conn.execute(sa.select(sa.func.count()).select_from(per_message)).scalar_one()
            ok_attempts = conn.execute(
                sa.select(sa.func.count())
                .select_from(a.join(deliver, a.c.job_pk == deliver.c.pk))
                .where(a.c.outcome == "ok")
            ).scalar_one()
            claimed = {
                str(w): int(n)
                for w, n in conn.execute(
                    sa.select(deliver.c.claimed_by, sa.func.count()).group_by(deliver.c.claimed_by)
                )
            }
    finally:
        engine.dispose()
    files = sum(1 for p in inbox.rglob("*") if p.is_file())
    return DeliveryCheck(
        int(stored),
        int(distinct_ids),
        final,
        int(jobs),
        int(twice),
        int(odd),
        int(ok_attempts),
        claimed,
        files,
    )


def wait_final(db_url: str, count: int, timeout: float) -> None:
    """Poll until ``count`` received business messages are final (or ``timeout``: the check says)."""
    engine = sa.create_engine(db_url)
    m = tables.message
    query = sa.select(sa.func.count()).where(
        m.c.direction == "in", m.c.kind == "business", m.c.status.in_(_FINAL)
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(query).scalar_one() >= count:
                    return
            time.sleep(0.2)
    finally:
        engine.dispose()


# --- the scenario ------------------------------------------------------------------------------------


def _urls(cluster: Cluster, count: int) -> list[str]:
    return [f"https://{node.address}:{cluster.port}/ebms" for node in cluster.lan.nodes[:count]]


def _two_vs_one(report: Report, target: str) -> float | None:
    rates = {r["nodes"]: r["msg_per_s"] for r in report.rows if r.get("target") == target}
    two_vs_one = ratio(rates.get(2), rates.get(1))
    for row in report.rows:
        if row.get("target") == target and row.get("nodes") == 2:
            row["two_vs_one"] = two_vs_one
    return two_vs_one


@contextmanager
def _two_nodes(work: Path, db_url: str) -> Iterator[Cluster]:
    try:
        with cluster_of(2, work, db_url) as cluster:
            yield cluster
    except netns.NetnsUnavailable as exc:
        raise DatabaseUnavailable(f"two nodes need network namespaces: {exc}") from None


def run_nodes(
    *, db: str, seconds: float, concurrency: int, warmup: float = 1.0, drain_timeout: float = 600
) -> Report:
    report = Report("nodes", {"db": db, "seconds": seconds, "concurrency": concurrency})
    if db != "postgres":
        raise DatabaseUnavailable("nodes share one PostgreSQL database; SQLite is one machine's file")
    with (
        work_folder() as work,
        private_database("postgres", work, "nodes") as db_url,
        _two_nodes(work, db_url) as cluster,
    ):
        sync_cpa = node_cpa(cluster.lan, cluster.port, 1, certs=work / "certs", sync_reply=True)
        cpa_dir, agreement = cpa_folder(work, "nodes", sync_cpa)
        inbox = work / "inbox"
        inbox.mkdir()
        routes_file(work, inbox)
        settings = [node_settings(cluster, n, cpa_dir) for n in range(2)]
        prepare_database(cluster.db_url, settings[0])
        rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
        # WMO305: what a gemeente receives and delivers (bench/endtoend.py).
        mix = build_mix(agreement, rinis, mixed=False, berichttype="WMO305")
        for n in (1, 2):
            with ExitStack() as stack:
                servers = [
                    stack.enter_context(node_process(cluster, i, settings[i], baseline=True))
                    for i in range(n)
                ]
                _measure(
                    report, "baseline (no-op)", servers, _urls(cluster, n), mix, expect="accepted",
                    concurrency=concurrency, seconds=seconds, relay_pid=cluster.relay_pid, warmup=warmup,
                )  # fmt: skip
        acknowledged = 0
        drained: dict[int, float] = {}
        for n in (1, 2):
            with ExitStack() as stack:
                # One after the other, as an operator starts nodes: each is up before the next.
                servers = [stack.enter_context(node_process(cluster, i, settings[i])) for i in range(n)]
                started = time.perf_counter()
                _, ok = _measure(
                    report, "endpoint", servers, _urls(cluster, n), mix, expect="ack",
                    concurrency=concurrency, seconds=seconds, relay_pid=cluster.relay_pid, warmup=warmup,
                )  # fmt: skip
                acknowledged += ok
                wait_final(cluster.db_url, acknowledged, drain_timeout)
                drained[n] = time.perf_counter() - started
        _two_vs_one(report, "baseline (no-op)")
        two_vs_one = _two_vs_one(report, "endpoint")
        check = check_deliveries(cluster.db_url, inbox)
    report.add(target="check", nodes=2, errors=len(check.problems(acknowledged)))
    report.note(
        f"check: {check.stored} stored of {acknowledged} acknowledged, "
        f"{check.final.get('Forwarded', 0)} delivered, {check.files} files, "
        f"{check.deliver_jobs} deliver jobs, {check.jobs_run_more_than_once} ran more than once"
    )
    report.note("load average at the end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    report.note(f"deliver jobs per worker (host-pid): {check.claimed_by}")
    report.note(
        "seconds until every received message was delivered, from the start of the warm-up: "
        + ", ".join(f"{n} node(s) {s:.1f} s" for n, s in drained.items())
    )
    report.note(
        "cpu_*_s: CPU seconds in the measured phase (nodes = the serve processes, relay = the "
        "PostgreSQL relay, postgres = all its server processes, also other users' backends, "
        "loadgen = this process, other = the rest of the machine's busy time: kernel work not "
        "charged to a process, other users); machine_busy: share of all CPUs busy"
    )
    if two_vs_one is not None and two_vs_one < 1.8:
        report.note(
            f"two nodes give {two_vs_one:.2f}x one node (target 1.8x): on {os.cpu_count()} CPUs shared "
            "by both nodes, PostgreSQL, the relay and the load generator, see machine_busy"
        )
    for problem in check.problems(acknowledged):
        report.note(f"MISMATCH: {problem}")
    return report
