"""What every benchmark shares: project paths, the dev parties, the machine and commit, results.

A result is one JSON file under bench/results/ (git-ignored) named after the scenario and the
moment, holding the machine, the commit, the arguments and the figures, so a figure in
docs/performance.md can always be traced back to the run that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS_DIR: Final = PROJECT_ROOT / "bench" / "results"
DEV_CERTS: Final = PROJECT_ROOT / "certs" / "dev"
DEV_CPAS: Final = PROJECT_ROOT / "cpa"

GEMEENTE: Final = DEV_GEMEENTE_OIN
RINIS: Final = DEV_RINIS_OIN
SERVICE: Final = "ggk:berichtenverkeer:1.0"
# RINIS (role GGk) sends the gemeente a heenbericht; the gemeente sends RINIS one the same way.
ACTION_DI01: Final = "envelopHeenbericht-ggk_Di01"


def git_commit() -> str:
    """The commit the benchmark ran on, with '+dirty' when the working tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """Enough about the machine to tell two runs apart: CPUs, memory, kernel, Python."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(v, 2) for v in load],
    }


@dataclass
class Report:
    """One benchmark run: rows for the printed table plus everything for the JSON file."""

    scenario: str
    arguments: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def add(self, **row: Any) -> dict[str, Any]:
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "started": self.started,
            "commit": git_commit(),
            "machine": machine(),
            "arguments": self.arguments,
            "rows": self.rows,
            "notes": self.notes,
        }

    def write(self, results_dir: Path = RESULTS_DIR) -> Path:
        results_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        suffix = "-".join(str(v) for k, v in sorted(self.arguments.items()) if k in ("db", "ack", "mix"))
        name = f"{self.scenario}{'-' + suffix if suffix else ''}-{stamp}.json"
        path = results_dir / name
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")
        return path

    def table(self, columns: Sequence[str]) -> str:
        return format_table(self.rows, columns)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain text table of ``columns`` (missing values as '-'), right-aligned figures."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 or not _numeric(v) else v.rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    if text == "-":
        return True  # a missing figure sits where the figures are
    return text.replace(",", "").replace(".", "").replace("-", "").replace("x", "").isdigit()


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value`` as a fraction of the baseline's, or None when either is missing or zero."""
    if not value or not baseline:
        return None
    return round(value / baseline, 3)
