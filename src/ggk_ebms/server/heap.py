"""Keep the cyclic garbage collector away from what the server holds for its whole life.

CPython's collector scans every container object of a generation when that generation is
collected. A started endpoint holds some 140,000 such objects that live as long as the process
(modules, the XSD schemas, SQLAlchemy's metadata and compiled statements, the CPAs), and every
collection of the oldest generation walked them all again: measured with ``gc.callbacks`` in a
``serve`` process under the inbound benchmark, 14 to 90 ms of CPU per full collection, on the
event loop's thread, so every request in flight waited that long (docs/performance.md, "The
collector and the tail").

``settle`` runs once, when the endpoint is up and before it answers anything: one full
collection, then ``gc.freeze()`` moves every survivor into the permanent generation, which the
collector never scans (Python documentation, ``gc.freeze``). Objects made later (requests, CPAs
loaded later, cache entries) are collected as before, so a reference cycle still gets freed. The
collector's thresholds stay the interpreter's defaults.

``GGK_EBMS_GC_FREEZE=0`` leaves the collector as it is (for comparison and diagnosis).
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Final

log = logging.getLogger(__name__)

ENV_FREEZE: Final = "GGK_EBMS_GC_FREEZE"


def freeze_enabled() -> bool:
    """Whether ``settle`` freezes: on unless the environment says 0, no, off or false."""
    return os.environ.get(ENV_FREEZE, "").strip().lower() not in {"0", "no", "off", "false"}


def settle() -> int:
    """Collect once and freeze the survivors; returns how many objects are frozen now (0 when
    switched off)."""
    if not freeze_enabled():
        return 0
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("garbage collector: %d long-lived objects frozen", frozen)
    return frozen
