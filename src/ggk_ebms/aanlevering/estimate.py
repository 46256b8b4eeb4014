"""The expected end of a batch in status Bezig, from the measured throughput of earlier batches.

The GGk portal shows an expected end estimated "from past files of similar size/count"
(Aanleveren manual, IB handleiding GGk). We take the finished batches whose file count is within a factor
of four of this one (all finished batches when none is), and their seconds per file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

# Before any batch was measured: a conservative guess (detect, validate, wrap, queue per file).
DEFAULT_SECONDS_PER_FILE: Final = 0.2
SIMILAR_FACTOR: Final = 4


def expected_end(start: datetime, files: int, history: Sequence[tuple[int, float]]) -> datetime:
    """``history``: (file count, seconds taken) of finished batches, newest first."""
    similar = [(n, s) for n, s in history if n > 0 and files / SIMILAR_FACTOR <= n <= files * SIMILAR_FACTOR]
    chosen = similar or [(n, s) for n, s in history if n > 0]
    per_file = sum(s for _, s in chosen) / sum(n for n, _ in chosen) if chosen else DEFAULT_SECONDS_PER_FILE
    return start + timedelta(seconds=max(files, 1) * per_file)


def duration_text(seconds: float) -> str:
    """The verslag's *Verwerkingsduur* as hh:mm:ss."""
    whole = max(0, round(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
