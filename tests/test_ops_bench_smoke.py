"""The berichtenlog benchmark runs on a small log, so it cannot rot (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from bench.berichtenlog import run_berichtenlog


def test_berichtenlog_bench_runs_every_query(tmp_path: Path) -> None:
    report = run_berichtenlog(db="sqlite", count=2000, repeat=1, work=tmp_path)
    rows = {r["query"]: r["rows"] for r in report.rows}
    assert len(rows) == 7
    assert rows["default (7 days back, page 1)"] == 50
    assert rows["referentienummer, 60 days"] == 1
    assert rows["berichttype + gemeentecode, 30 days"] > 0
    assert any("generated 2000 messages" in n for n in report.notes)
