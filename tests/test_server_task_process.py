"""The task processes of a multi-process ``serve`` (server/task_process.py, queue_process.py,
scheduled.py): their tasks run until SIGTERM; a task that ends on its own ends the process with
an error, so the parent stops the unit; and their log lines are escaped as a server's are."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from ggk_ebms.config import Settings
from ggk_ebms.runtime import Runtime
from ggk_ebms.server import loop as event_loop
from ggk_ebms.server.task_process import TaskEnded, run_tasks
from ggk_ebms.server.tasks import Task
from ggk_ebms.store.db import Database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    database = Database(url)
    database.upgrade()
    database.dispose()
    return Settings(data_dir=tmp_path, database_url=url)


@pytest.fixture
def stop(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The event SIGTERM would set, in the test's hands."""
    event = asyncio.Event()
    monkeypatch.setattr(event_loop, "stop_event", lambda: event)
    return event


def steady_task(cancelled: list[str], running: asyncio.Event | None = None) -> Task:
    """A task that runs until cancelled (named "steady", as ``worker_kind`` names a factory)."""

    async def run(_runtime: Runtime) -> None:
        if running is not None:
            running.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append("steady")

    return run


def broken_task() -> Task:
    async def run(_runtime: Runtime) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("a bug in the loop")

    return run


def polite_task(stop: asyncio.Event) -> Task:
    async def run(_runtime: Runtime) -> None:
        await stop.wait()  # a task that returns at the shutdown is no failure

    return run


async def test_a_task_that_ends_on_its_own_ends_the_process_with_an_error(
    settings: Settings, stop: asyncio.Event
) -> None:
    cancelled: list[str] = []
    with pytest.raises(TaskEnded, match=r"workers: task broken ended: RuntimeError\('a bug in the loop'\)"):
        await run_tasks(settings, [steady_task(cancelled), broken_task()], what="workers")
    assert cancelled == ["steady"]  # the others were stopped first


async def test_sigterm_stops_every_task_without_an_error(settings: Settings, stop: asyncio.Event) -> None:
    running = asyncio.Event()
    cancelled: list[str] = []

    async def terminate() -> None:
        await running.wait()
        stop.set()

    tasks = [steady_task(cancelled, running), polite_task(stop)]
    await asyncio.gather(run_tasks(settings, tasks, what="workers"), terminate())
    assert cancelled == ["steady"]


def test_a_task_process_escapes_its_log_lines(tmp_path: Path) -> None:
    # In a process of its own: the escaping is installed for the whole process.
    code = (
        "import logging; from pathlib import Path; from ggk_ebms.config import Settings; "
        "from ggk_ebms.server.run import prepare_child_process; "
        f"prepare_child_process(Settings(data_dir=Path({str(tmp_path)!r}))); "
        "logging.getLogger('ggk_ebms.delivery').warning('Fo01: %s', 'ok\\nFAKE forged line')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in out.stderr.splitlines() if "Fo01" in line or "FAKE" in line]
    assert len(lines) == 1, out.stderr
    assert lines[0].endswith("Fo01: ok\\x0aFAKE forged line")  # the line break shown, not made
