"""Background tasks in a spawned process of a multi-process ``serve`` that answers no requests.

The scheduled work (server/scheduled.py) and, with setting ``worker_processes``, the send and
delivery workers (server/queue_process.py) each run in such a process: the tasks, a heartbeat for
each of them (api/health.py ``heartbeat_task``, so /health/ready of any server process sees them)
and nothing else, until SIGTERM from the parent ``serve``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from ggk_ebms.api.health import heartbeat_task, worker_kind
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.runtime import Runtime
from ggk_ebms.server import allocator
from ggk_ebms.server import loop as event_loop
from ggk_ebms.server.run import prepare_child_process
from ggk_ebms.server.tasks import Task
from ggk_ebms.store.db import Database

log = logging.getLogger(__name__)


class TaskEnded(GgkEbmsError):
    """A background task of a task process ended while it should still run."""


async def run_tasks(settings: Settings, factories: Sequence[Task], *, what: str) -> None:
    """Run the tasks ``factories`` make and their heartbeats until SIGTERM or SIGINT.

    Each task runs until stopped. One that ends on its own (a bug let an exception out of its
    loop) raises ``TaskEnded`` here, after the others are stopped: the process then exits with
    an error status, and the parent ``serve`` stops the whole unit for its service manager to
    restart, instead of a process that runs on without its work. Its heartbeat alone would not
    tell: another process may beat under the same name (api/health.py ``heartbeat_task``).
    """
    database = Database.from_settings(settings)
    runtime = Runtime.build(settings, database)
    tasks = [asyncio.create_task(w(runtime), name=worker_kind(w)) for w in factories]
    beats = asyncio.create_task(heartbeat_task(settings, runtime.clock, lambda: tasks)(database))
    stop = event_loop.stop_event()
    log.info("%s: %s", what, ", ".join(task.get_name() for task in tasks))
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        ended = [task for task in tasks if task in done]
        if ended and not stop.is_set():  # at a shutdown a task may end before ``stopping`` wakes
            task = ended[0]
            cause = task.exception() if not task.cancelled() else None
            raise TaskEnded(f"{what}: task {task.get_name()} ended: {cause!r}")
    finally:
        stopping.cancel()
        for task in (*tasks, beats):
            task.cancel()
        await asyncio.gather(*tasks, beats, return_exceptions=True)
        database.dispose()


def run_task_process(
    settings: Settings,
    tasks: Callable[[Settings], Sequence[Task]],
    *,
    what: str,
    prepare: Callable[[Settings], object] | None = None,
) -> None:
    """Entry point of a spawned task process (the parent ``serve`` has migrated the database and
    imported the CPAs already): the child's logging, the arena cap before any worker thread
    starts (server/allocator.py), ``prepare``, then ``run_tasks``; a ``GgkEbmsError`` (a bad
    setting, a task that ended) is logged and ends the process with status 1."""
    prepare_child_process(settings)
    allocator.limit_arenas()
    try:
        if prepare is not None:
            prepare(settings)
        event_loop.run(run_tasks(settings, tasks(settings), what=what))
    except GgkEbmsError as exc:
        log.error("%s", exc)
        sys.exit(1)
