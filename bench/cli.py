"""``bench cli``: how long the ``ggk-ebms`` command takes to start and finish, as a user waits.

Each command runs as a whole new process (the installed ``ggk-ebms`` script of this venv), several
times, and the wall-clock time from spawn to exit is taken; min, median and max per command are
reported beside ``python -c pass`` from the same run, the floor any Python command pays. The
commands that read a database use a fresh SQLite file with the dev CPAs imported, so the figure
includes opening and checking the database as an operator's call does.

What each command imports is listed with ``python -X importtime`` (see docs/performance.md,
"CLI start-up"); here only the elapsed time is measured.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bench.common import DEV_CPAS, PROJECT_ROOT, Report

COLUMNS: Final = ("command", "runs", "min_ms", "median_ms", "max_ms", "vs_python_ms")

SCRIPT: Final = Path(sys.executable).parent / "ggk-ebms"


def _commands(config: Path) -> list[tuple[str, list[str]]]:
    ggk = [str(SCRIPT)]
    with_config = [*ggk, "--config", str(config)]
    return [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("ggk-ebms --version", [*ggk, "--version"]),
        ("ggk-ebms --help", [*ggk, "--help"]),
        ("ggk-ebms config show --json", [*with_config, "config", "show", "--json"]),
        ("ggk-ebms cpa validate", [*with_config, "cpa", "validate", str(DEV_CPAS / "dev-osb-rm.xml")]),
        ("ggk-ebms cpa list --json", [*with_config, "cpa", "list", "--json"]),
        ("ggk-ebms messages list --json", [*with_config, "messages", "list", "--json"]),
        ("ggk-ebms routes list --json", [*with_config, "routes", "list", "--json"]),
    ]


def _time_once(argv: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)  # fmt: skip
    return (time.perf_counter() - started) * 1000


def run_cli(runs: int = 11) -> Report:
    report = Report("cli", {"runs": runs})
    work = Path(tempfile.mkdtemp(prefix="ggk-ebms-bench-cli-"))
    try:
        config = work / "ggk-ebms.toml"
        cpa_dir = work / "cpa"
        cpa_dir.mkdir()
        shutil.copy(DEV_CPAS / "dev-osb-rm.xml", cpa_dir / "dev-osb-rm.xml")
        config.write_text(f'data_dir = "{work / "var"}"\ncpa_dir = "{cpa_dir}"\n', encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GGK_EBMS_")}
        setup = [str(SCRIPT), "--config", str(config)]
        subprocess.run([*setup, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)
        subprocess.run([*setup, "cpa", "import", str(cpa_dir / "dev-osb-rm.xml")], env=env, cwd=PROJECT_ROOT,
                       check=True, capture_output=True)  # fmt: skip
        baseline: float | None = None
        for name, argv in _commands(config):
            _time_once(argv, env)  # warm the page cache; not counted
            times = sorted(_time_once(argv, env) for _ in range(runs))
            median = statistics.median(times)
            if baseline is None:
                baseline = median
            report.add(
                command=name,
                runs=runs,
                min_ms=round(times[0], 1),
                median_ms=round(median, 1),
                max_ms=round(times[-1], 1),
                vs_python_ms=round(median - baseline, 1),
            )
        report.note("whole-process wall time, spawn to exit; vs_python_ms = median minus python -c pass")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report
