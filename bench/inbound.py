"""Inbound receive: the counterpart (RINIS) sends osb-rm messages to the gemeente endpoint.

Per run, against the no-op baseline and the endpoint (``ggk-ebms serve`` processes):

1. maximum rate: closed loop, ``concurrency`` messages in flight, ``seconds`` long;
2. latency: open loop at half the endpoint's maximum rate, the same offered rate for both.

``ack="sync"`` uses a CPA with syncReplyMode mshSignalsOnly: every answer must be an
Acknowledgment of that message. ``ack="async"`` uses the dev osb-rm CPA (syncReplyMode none):
every answer must be 204, and afterwards the database must hold one queued Acknowledgment per
message accepted. ``profile="osb-rm-s"`` sends signed messages (signed ahead of the run, see
``messages.SignedPool``) under a signing CPA, so the endpoint verifies every signature. The
scaling scenario is this one with ``processes`` 1 and 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final

from bench import loadgen
from bench.common import Report, ratio
from bench.databases import private_database
from bench.messages import Mix, SignedPool, build_mix
from bench.servers import ServerProcess, baseline_process, endpoint_process, free_port, party_settings
from bench.setup import count_messages, inbound_cpa, work_folder

COLUMNS: Final = (
    "target",
    "phase",
    "processes",
    "msg_per_s",
    "mb_per_s",
    "vs_baseline",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "p99_warm_ms",
    "cpu_ms_per_msg",
    "errors",
)


@dataclass(frozen=True)
class InboundArgs:
    db: str = "sqlite"
    ack: str = "sync"
    seconds: float = 10.0
    concurrency: int = 16
    mix: str = "small"
    processes: int = 1
    profile: str = "osb-rm"
    pool: int = 3000
    latency: bool = True
    warmup_seconds: float = 1.0
    latency_rate: float | None = None  # the latency phase's offered rate; None: half the maximum


def _row(
    report: Report, target: str, phase: str, processes: int, result: loadgen.LoadResult, cpu_ms: float | None
) -> dict[str, Any]:
    return report.add(
        target=target, phase=phase, processes=processes, cpu_ms_per_msg=cpu_ms, **result.summary()
    )


@dataclass(frozen=True)
class Target:
    url: str
    server: ServerProcess


async def _phase(
    target: Target, coroutine: Coroutine[Any, Any, loadgen.LoadResult]
) -> tuple[loadgen.LoadResult, float | None]:
    """Run one load phase; also the server's CPU time per accepted message, in ms."""
    before = target.server.cpu_seconds()
    result = await coroutine
    used = target.server.cpu_seconds() - before
    return result, (round(used * 1000 / result.ok, 2) if result.ok else None)


async def _measure(
    base: Target, ours: Target, mixes: tuple[Mix, Mix, Mix], args: InboundArgs, report: Report
) -> tuple[int, int]:
    """The four load phases; returns (messages the endpoint accepted, of which warm-up).

    ``mixes``: the baseline's, the endpoint's for its maximum rate and for its latency phase
    (one mix for all three, or a signed pool split so that the latency phase keeps its share).
    """
    expect: loadgen.Expect = "ack" if args.ack == "sync" else "accepted"
    base_mix, mix, latency_mix = mixes
    await loadgen.warm_up(base.url, base_mix, expect="accepted", seconds=args.warmup_seconds)
    base_max, base_cpu = await _phase(
        base,
        loadgen.closed_loop(
            base.url, base_mix, expect="accepted", concurrency=args.concurrency, seconds=args.seconds
        ),
    )
    warm = await loadgen.warm_up(ours.url, mix, expect=expect, seconds=args.warmup_seconds)
    ours_max, ours_cpu = await _phase(
        ours,
        loadgen.closed_loop(ours.url, mix, expect=expect, concurrency=args.concurrency, seconds=args.seconds),
    )
    base_row = _row(report, "baseline", "max", args.processes, base_max, base_cpu)
    ours_row = _row(report, "endpoint", "max", args.processes, ours_max, ours_cpu)
    base_row["vs_baseline"] = 1.0
    ours_row["vs_baseline"] = ratio(ours_max.rate, base_max.rate)
    accepted = warm.ok + ours_max.ok
    if args.latency and ours_max.rate > 0:
        half = args.latency_rate or ours_max.rate / 2
        ours_lat, ours_cpu = await _phase(
            ours, loadgen.open_loop(ours.url, latency_mix, expect=expect, rate=half, seconds=args.seconds)
        )
        base_lat, base_cpu = await _phase(
            base, loadgen.open_loop(base.url, base_mix, expect="accepted", rate=half, seconds=args.seconds)
        )
        b = _row(report, "baseline", "latency@50%", args.processes, base_lat, base_cpu)
        o = _row(report, "endpoint", "latency@50%", args.processes, ours_lat, ours_cpu)
        b["vs_baseline"] = 1.0
        o["vs_baseline"] = ratio(ours_lat.percentile_ms(99), base_lat.percentile_ms(99))
        accepted += ours_lat.ok
    return accepted, warm.ok


def run_inbound(args: InboundArgs, *, name: str = "inbound") -> Report:
    report = Report(name, dict(vars(args)))
    report.note(
        "vs_baseline: msg/s as a fraction of the no-op server's for 'max' rows; p99 as a multiple "
        "of the no-op server's p99 at the same offered rate for 'latency@50%' rows"
    )
    with work_folder() as work, private_database(args.db, work, "gemeente") as db_url:
        port, base_port = free_port(), free_port()
        signed = args.profile == "osb-rm-s"
        cpa_dir, agreement = inbound_cpa(work, sync=args.ack == "sync", port=port, signed=signed)
        gemeente = party_settings(
            "gemeente", work, db_url, cpa_dir, port, processes=args.processes, log_level="INFO"
        )
        rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
        mixes: tuple[Mix, Mix, Mix]
        if signed:
            pool = SignedPool(agreement, rinis, args.pool)
            mixes = (pool.again(), *pool.split())
        else:
            mix = build_mix(agreement, rinis, mixed=args.mix == "mixed")
            mixes = (mix, mix, mix)
        baseline = baseline_process(gemeente.replace(port=base_port), work, processes=args.processes)
        server = endpoint_process(gemeente, work, "gemeente")
        with baseline, server:
            accepted, _ = asyncio.run(
                _measure(
                    Target(f"https://localhost:{base_port}/ebms", baseline),
                    Target(f"https://localhost:{port}/ebms", server),
                    mixes,
                    args,
                    report,
                )
            )
        stored = count_messages(db_url, direction="in", kind="business")
        report.add(target="check", phase=f"stored {stored} of {accepted} acknowledged")
        if stored != accepted:
            report.note(f"MISMATCH: {accepted} messages answered as accepted but {stored} stored")
        if args.ack == "async":
            queued = count_messages(db_url, direction="out", kind="Acknowledgment", status="Created")
            report.add(target="check", phase=f"{queued} async Acks queued")
            if queued != accepted:
                report.note(f"MISMATCH: {accepted} messages accepted but {queued} Acknowledgments queued")
    return report
