"""Smoke test of the benchmarks (docs/performance.md): each scenario runs for about a second so it cannot rot.

No timing is asserted (benchmarks are not tests); what is asserted is that each scenario ran
its phases, that every message it sent was answered as expected (no errors), and that what the
servers say they stored or delivered agrees with what the load generator counted.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from bench import __main__ as cli
from bench.common import format_table, ratio
from bench.inbound import InboundArgs, run_inbound
from bench.messages import LARGE, SMALL, MessageMix, Template, stuf_di01
from bench.profile import parse_frame, summarise

pytestmark = pytest.mark.slow


def _rows(report, target: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [r for r in report.rows if r.get("target") == target]


def _no_mismatch(report) -> None:  # type: ignore[no-untyped-def]
    assert not [n for n in report.notes if "MISMATCH" in n or "NOT " in n], report.notes


@pytest.mark.parametrize(
    ("db", "ack", "profile"),
    [
        ("sqlite", "sync", "osb-rm"),
        ("sqlite", "async", "osb-rm"),
        ("sqlite", "sync", "osb-rm-s"),
        pytest.param("postgres", "sync", "osb-rm", marks=pytest.mark.postgres),
    ],
)
def test_inbound_runs_every_phase(db: str, ack: str, profile: str) -> None:
    args = InboundArgs(
        db=db, ack=ack, seconds=1.0, concurrency=4, profile=profile, pool=300, warmup_seconds=0.3
    )
    report = _run_or_skip(lambda: run_inbound(args))
    phases = {(r["target"], r["phase"]) for r in report.rows}
    assert {
        ("baseline", "max"),
        ("endpoint", "max"),
        ("baseline", "latency@50%"),
        ("endpoint", "latency@50%"),
    } <= phases
    for row in _rows(report, "endpoint") + _rows(report, "baseline"):
        assert row["errors"] == 0, row
        assert row["ok"] > 0, row
    _no_mismatch(report)


def test_cli_mixed_payloads_and_two_processes(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(
        [
            "inbound",
            "--seconds",
            "1",
            "--concurrency",
            "4",
            "--mix",
            "mixed",
            "--processes",
            "2",
            "--no-latency",
            "--no-write",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "endpoint  max" in out and "stored" in out
    assert "MISMATCH" not in out


def test_outbound_delivers_everything() -> None:
    from bench.outbound import run_outbound

    report = run_outbound(db="sqlite", count=20, ack="sync", baseline_seconds=0.5)
    endpoint = next(r for r in report.rows if str(r["target"]).startswith("endpoint"))
    assert endpoint["delivered"] == 20 and endpoint["failed"] == 0
    # Both servers worked for it: the CPU columns are measured, not left empty.
    assert float(endpoint["sender_cpu_ms"]) > 0 and float(endpoint["partner_cpu_ms"]) > 0
    _no_mismatch(report)


def test_memory_reports_every_side() -> None:
    from bench.memory import run_memory

    report = run_memory(db="sqlite", size=2_000_000)
    sides = {r["side"] for r in report.rows}
    assert sides == {
        "baseline: no-op TLS server receiving",
        "gemeente receiving + delivering",
        "gemeente sending",
        "rinis receiving (stores only)",
    }
    assert all(
        r["message_bytes"] >= 1_900_000 and r["peak_rss_mb"] >= r["rss_before_mb"] for r in report.rows
    )
    _no_mismatch(report)


@pytest.mark.parametrize("worker_processes", [0, 1])
def test_endtoend_delivers_to_the_directory(worker_processes: int) -> None:
    from bench.endtoend import run_endtoend

    report = run_endtoend(db="sqlite", count=20, concurrency=4, worker_processes=worker_processes)
    endpoint = next(r for r in report.rows if str(r["target"]).startswith("endpoint"))
    assert endpoint["delivered"] == 20 and endpoint["files"] == 20
    _no_mismatch(report)


def test_delivery_worker_in_process_delivers_every_message() -> None:
    from bench.delivery import run_delivery

    report = run_delivery(db="sqlite", count=20)
    worker = next(r for r in report.rows if r["target"] == "delivery worker")
    assert worker["messages"] == 20 and worker["delivered"] == 20
    assert worker["cpu_ms_per_msg"] > 0
    _no_mismatch(report)


def test_each_message_gets_its_own_payload_identificatie() -> None:
    # The koppeltabel relates messages sharing a BerichtIdentificatie: a bench whose messages
    # all shared one measured that, not receiving and delivering.
    import base64
    import re

    template = Template("x", stuf_di01(SMALL, "WMO305"), SMALL)
    seen = set()
    for n in range(3):
        body = template.body_for(f"m{n}@bench.test")
        encoded = re.search(rb"Bestand[^>]*>([A-Za-z0-9+/=]{100,})<", body)
        assert encoded is not None
        payload = base64.b64decode(encoded.group(1), validate=True)
        found = re.search(rb"<iwmo:Identificatie>([A-Z0-9]{12})</iwmo:Identificatie>", payload)
        assert found is not None
        seen.add(found.group(1))
    assert len(seen) == 3


def test_cli_startup_scenario_times_every_command() -> None:
    from bench.cli import run_cli

    report = run_cli(runs=1)
    names = [r["command"] for r in report.rows]
    assert names[0] == "python -c pass"
    assert {"ggk-ebms --version", "ggk-ebms --help", "ggk-ebms messages list --json"} <= set(names)
    assert all(r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in report.rows)


@pytest.mark.parametrize("signals", [False, True])
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_groups_at_the_store(db: str, signals: bool) -> None:
    from bench.groups import run_groups

    report = _run_or_skip(lambda: run_groups(db=db, threads=3, count=5, signals=signals))
    states = [row["state"] for row in report.rows]
    assert states == ["one commit per message", "group commit"]
    for row in report.rows:
        assert row["messages"] == 15
        assert row["commits"] >= 1
    # One commit per message is exactly that: the baseline of the same run (with signals, the
    # lookup of each sent message is a read transaction of its own, ended by a COMMIT too).
    assert report.rows[0]["commits"] == (30 if signals else 15)
    _no_mismatch(report)


def test_pipeline_in_process() -> None:
    from bench.pipeline import run_pipeline

    report = run_pipeline(db="sqlite", count=20)
    assert report.rows[0]["messages"] == 20 and report.rows[0]["cpu_ms_per_msg"] > 0


def test_pipeline_in_process_signed() -> None:
    from bench.pipeline import run_pipeline

    report = run_pipeline(db="sqlite", count=5, security="osb-rm-s")
    row = report.rows[0]
    assert (row["profile"], row["messages"]) == ("osb-rm-s", 5) and row["cpu_ms_per_msg"] > 0


def test_sigcheck_times_both_paths() -> None:
    from bench.sigcheck import run_sigcheck

    report = run_sigcheck(count=3)
    assert [(r["operation"], r["path"]) for r in report.rows] == [
        ("verify message", "libxmlsec (baseline)"),
        ("verify message", "fast check"),
        ("sign Acknowledgment", "libxmlsec (baseline)"),
        ("sign Acknowledgment", "fast signer"),
    ]
    assert all(r["operations"] == 15 and r["cpu_ms_per_operation"] > 0 for r in report.rows)


@pytest.mark.skipif(
    shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists(),
    reason="py-spy not installed (pip install py-spy)",
)
def test_profile_names_the_stages() -> None:
    from bench.profile import run_profile

    report = _run_or_skip(lambda: run_profile(db="sqlite", seconds=2.0, concurrency=4))
    stages = {r["name"]: r["samples"] for r in report.rows if r["group"] == "stage"}
    assert stages["pipeline total (InboundPipeline.handle/handle_async + commit)"] > 0


# --- the pure helpers ----------------------------------------------------------------------------


def test_mix_is_85_15_and_ids_are_unique() -> None:
    small, large = Template("a", b"x", SMALL), Template("b", b"y", LARGE)
    mix = MessageMix(small, large)
    drawn = [mix.next() for _ in range(200)]
    assert sum(1 for _, t in drawn if t is large) == 30
    assert len({i for i, _ in drawn}) == 200


def test_stuf_envelope_sizes() -> None:
    assert 2_000 <= len(stuf_di01(SMALL)) <= 3_000
    assert abs(len(stuf_di01(LARGE)) - LARGE) < 2_000


def test_py_spy_frames_and_summary() -> None:
    frame = parse_frame("InboundPipeline.handle (ggk_ebms/pipeline/inbound.py:93)")
    assert (frame.function, frame.path) == ("InboundPipeline.handle", "ggk_ebms/pipeline/inbound.py")
    leaf = parse_frame("Cursor.execute (psycopg/cursor.py:113)")
    total, stages, libraries = summarise([([frame, leaf], 3), ([parse_frame("select (selectors.py:1)")], 1)])
    assert total == 4
    assert dict(stages)["pipeline total (InboundPipeline.handle/handle_async + commit)"] == 3
    assert dict(libraries)["psycopg"] == 3


def test_table_and_ratio() -> None:
    table = format_table([{"a": "x", "b": 1234.5}, {"a": "y"}], ["a", "b"])
    assert table.splitlines()[2].endswith("1,234") and table.splitlines()[3].endswith("-")
    assert ratio(50, 200) == 0.25 and ratio(None, 3) is None and ratio(1, 0) is None


@pytest.mark.postgres
def test_nodes_two_namespaces_deliver_each_message_once() -> None:
    """bench/nodes.py: both phases on both targets ran without errors and the stored-once,
    delivered-once check found nothing (skipped where network namespaces cannot be made)."""
    from bench.nodes import run_nodes

    report = _run_or_skip(lambda: run_nodes(db="postgres", seconds=0.5, concurrency=2, warmup=0.3))
    measured = {(r["target"], r["nodes"]) for r in report.rows if r["target"] != "check"}
    assert measured == {("baseline (no-op)", 1), ("baseline (no-op)", 2), ("endpoint", 1), ("endpoint", 2)}
    for row in report.rows:
        assert row["errors"] == 0, row
    _no_mismatch(report)


def _run_or_skip(run):  # type: ignore[no-untyped-def]
    from bench.databases import DatabaseUnavailable

    try:
        return run()
    except DatabaseUnavailable as exc:
        pytest.skip(str(exc))


def test_backup_bench_smoke() -> None:
    """bench/backup.py runs end to end on a small database; its figures are not judged here."""
    from bench.backup import run

    figures = run("sqlite", 50)
    assert figures["restored"] == 50


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sendsteps_bench_delivers_every_message(db: str) -> None:
    """bench/sendsteps.py runs the send worker's grouped steps end to end; figures not judged."""
    from bench.sendsteps import run_sendsteps

    report = _run_or_skip(lambda: run_sendsteps(db=db, group=4, rounds=2))
    assert [(row["messages"], row["delivered"]) for row in report.rows] == [(8, 8)]
