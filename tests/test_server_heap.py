"""server/heap.py: the objects alive when the endpoint is up are frozen out of the collector's
scans, later garbage is still collected, and GGK_EBMS_GC_FREEZE=0 leaves the collector alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ggk_ebms.server import heap


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as the interpreter has it


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_freezes_what_is_alive() -> None:
    kept = _Node()
    frozen = heap.settle()
    assert frozen == gc.get_freeze_count() > 0
    # What was alive is in the permanent generation: a collection no longer looks at it.
    assert not any(obj is kept for obj in gc.get_objects())


def test_a_cycle_made_after_settle_is_still_collected() -> None:
    heap.settle()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize("value", ["0", "off", "no", "false", " OFF "])
def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(heap.ENV_FREEZE, value)
    assert not heap.freeze_enabled()
    assert heap.settle() == 0
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("value", ["", "1", "yes"])
def test_on_by_default(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(heap.ENV_FREEZE, value)
    assert heap.freeze_enabled()


def test_serve_settles_the_heap_once_the_endpoint_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve_forever`` (what ``ggk-ebms serve`` runs in each process) freezes after the
    endpoint has started and before it waits for requests; SIGTERM then stops it as usual."""
    import asyncio
    import os
    import signal
    from types import SimpleNamespace

    from ggk_ebms import logsafe
    from ggk_ebms.server import run

    steps: list[str] = []

    class _Endpoint:
        url = "https://127.0.0.1:0/ebms"
        api = None

        async def stop(self) -> None:
            steps.append("stopped")

    async def fake_start(settings: object, **_kwargs: object) -> _Endpoint:
        steps.append("started")
        return _Endpoint()

    def fake_settle() -> int:
        steps.append("settled")
        # Runs once serve_forever waits for its signal: the handlers are installed by then.
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        return 1

    monkeypatch.setattr(run, "start_endpoint", fake_start)
    monkeypatch.setattr(heap, "settle", fake_settle)
    monkeypatch.setattr(logsafe, "install_rate_limit", lambda: None)
    settings = SimpleNamespace(party_ids=("00000001234567890000",))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(asyncio.wait_for(run.serve_forever(settings), timeout=30))  # type: ignore[arg-type]
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert steps == ["started", "settled", "stopped"]
