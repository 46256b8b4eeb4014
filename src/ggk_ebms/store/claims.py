"""Keeping a worker's job claims alive while it works: the heartbeat of the lease.

A thread of its own renews the claims (``JobQueue.heartbeat``) every third of the lease, so a
request that takes longer than the lease does not lose its job to another worker, while a worker
killed with -9 stops renewing and its jobs are claimable again one lease later (docs/rules.md
"Recovery"). A failed renewal is logged; the claim then lapses, which is the safe outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import timedelta
from types import TracebackType

from ggk_ebms.clock import Clock
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.jobs import JobQueue

log = logging.getLogger(__name__)


class ClaimKeeper:
    """``with ClaimKeeper(jobs, worker_id, lease, clock) as keeper: keeper.hold(pks) ...``"""

    def __init__(self, jobs: JobQueue, worker_id: str, lease: timedelta, clock: Clock) -> None:
        self._jobs = jobs
        self._worker_id = worker_id
        self._every = max(lease.total_seconds() / 3, 0.05)
        self._clock = clock
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, job_pks: Iterable[int]) -> None:
        with self._lock:
            self._held.update(job_pks)

    def drop(self, job_pk: int) -> None:
        with self._lock:
            self._held.discard(job_pk)

    def renew(self) -> None:
        with self._lock:
            held = sorted(self._held)
        if not held:
            return
        try:
            self._jobs.heartbeat(self._worker_id, held, now=self._clock.now())
        except GgkEbmsError as exc:
            log.warning("worker %s could not renew its job claims: %s", self._worker_id, exc)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.renew()

    def __enter__(self) -> ClaimKeeper:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"claims-{self._worker_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
