"""A real endpoint with its management listener (and so the console) in a thread of its own, and a
Playwright browser (Debian's chromium) to drive it from synchronous tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ggk_ebms.clock import SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.server.run import Endpoint
from ggk_ebms.services import gebruikers
from ggk_ebms.services.context import ServiceContext
from tests.endpoint import running

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct-horse-battery"  # a test account's password
T = TypeVar("T")


def require_browser() -> None:
    """Skip (visibly) without chromium or Playwright; fail instead under GGK_EBMS_REQUIRE_BROWSER=1."""
    reason = None
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        reason = "no chromium (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "Playwright for Python is not installed"
    if reason is not None:
        if os.environ.get("GGK_EBMS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required: {reason}")
        pytest.skip(reason)


class Background:
    """An event loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


class RunningEndpoint:
    """``tests.endpoint.running`` kept open in a background loop."""

    def __init__(self, background: Background, settings: Settings) -> None:
        self.background = background
        self._cm = running(settings)
        self.endpoint: Endpoint = background.run(self._cm.__aenter__())

    @property
    def console(self) -> str:
        assert self.endpoint.api is not None
        return self.endpoint.api.url.replace("127.0.0.1", "localhost") + "/console"

    def stop(self) -> None:
        self.background.run(self._cm.__aexit__(None, None, None))


@contextmanager
def endpoints(*settings: Settings) -> Iterator[list[RunningEndpoint]]:
    background = Background()
    started: list[RunningEndpoint] = []
    try:
        for s in settings:
            started.append(RunningEndpoint(background, s))
        yield started
    finally:
        for e in reversed(started):
            e.stop()
        background.close()


def make_user(
    endpoint: Endpoint, username: str, role: str, products: tuple[str, ...], personal_data: bool = False
) -> None:
    ctx = ServiceContext(endpoint.database, endpoint.settings, "test", SystemClock())
    gebruikers.create_user(
        ctx,
        username=username,
        display_name=username.capitalize(),
        password=PASSWORD,
        role=role,
        products=products,
        personal_data=personal_data,
    )


def screenshots_dir(tmp: Path) -> Path:
    """GGK_EBMS_SCREENSHOTS (to refresh docs/console/) or a tmp folder of the test."""
    folder = Path(os.environ.get("GGK_EBMS_SCREENSHOTS") or tmp / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(page: Any, site: RunningEndpoint, username: str, password: str = PASSWORD) -> None:
    """Sign in on the console's login form as a browser user would (docs/console.md)."""
    page.goto(site.console + "/login")
    page.get_by_label("Gebruikersnaam").fill(username)
    page.get_by_label("Wachtwoord").fill(password)
    page.get_by_role("button", name="Inloggen").click()
