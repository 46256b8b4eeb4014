"""The inbound request on the event loop's thread (pipeline/inbound.py ``handle_async``,
ggk_ebms/inline.py): a small message is decided on the loop and committed by the store's writer
thread; whatever would block the loop (the database, a CRL download) sends the whole request to
a worker thread instead, before anything was done. On SQLite and PostgreSQL, in this process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.cpa.model import Profile
from ggk_ebms.inline import NeedsThread, blocking_io, forbid_blocking
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.inbound import InboundPipeline
from ggk_ebms.pipeline.reply import InboundRequest, Reply
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.security.revocation import RevocationChecker
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from tests.endpoint import DEV
from tests.inbound_requests import sealed_request
from tests.outbound_support import make_cpa, side_settings


class _Clock:
    """A monotonic clock the test moves by hand (the CPA cache's recheck interval)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Offload:
    """The server's ``offload``: runs the work in a worker thread and records that it did."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.calls = 0
        self._executor = executor

    def __call__(self, work: Callable[[], Reply]) -> asyncio.Future[Reply]:
        self.calls += 1
        return asyncio.get_running_loop().run_in_executor(self._executor, work)


class _Side:
    def __init__(self, tmp_path: Path, db_url: str, profile: Profile) -> None:
        _, self.cpa = make_cpa(1, 2, profile=profile, sync_reply=True, version=f"loop-{profile.value}")
        self.gemeente = side_settings("gemeente", tmp_path, db_url, self.cpa, 1)
        self.rinis = side_settings("rinis", tmp_path, "sqlite://", self.cpa, 2)
        self.database = Database(db_url)
        self.database.upgrade()
        assert not [line for line in import_cpa_dir(self.gemeente, self.database) if "not imported" in line]
        self.monotonic = _Clock()
        self.store = MessageStore(self.database)
        self.agreements = AgreementCache(CpaRepository(self.database), recheck=2.0, monotonic=self.monotonic)
        self.pipeline = InboundPipeline(
            self.gemeente,
            self.store,
            self.agreements,
            clock=SystemClock(),
            ids=UuidIdGenerator("gemeente.test"),
        )
        self.client = PeerIdentity.from_pem((DEV / "rinis" / "client.pem").read_bytes())
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-offload")
        self.offload = _Offload(self.executor)

    def request(self, message_id: str | None = None) -> InboundRequest:
        _, _, content_type, body = sealed_request(self.rinis, self.cpa, message_id=message_id)
        return InboundRequest(content_type, '"ebXML"', body, self.client, "test")

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.database.dispose()


@pytest.fixture(params=[Profile.OSB_RM, Profile.OSB_RM_S], ids=["osb-rm", "osb-rm-s"])
def side(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Iterator[_Side]:
    made = _Side(tmp_path, db_url, request.param)
    try:
        yield made
    finally:
        made.close()


def _writer_threads(database: Database) -> list[str]:
    """Wrap the database's statement entry point: the names of the threads that wrote."""
    names: list[str] = []
    real_run_statement, real_run = database.run_statement, database.run

    def run_statement(work: Any, **options: Any) -> Any:
        names.append(threading.current_thread().name)
        return real_run_statement(work, **options)

    def run(work: Any) -> Any:
        names.append(threading.current_thread().name)
        return real_run(work)

    database.run_statement = run_statement  # type: ignore[method-assign]
    database.run = run  # type: ignore[method-assign]
    return names


def test_a_cold_cpa_cache_sends_the_request_to_a_thread_then_the_loop_decides(side: _Side) -> None:
    writers = _writer_threads(side.database)

    async def two_messages() -> tuple[Reply, Reply]:
        first = await side.pipeline.handle_async(side.request(), side.offload)
        assert side.offload.calls == 1  # the CPA had to be read from the database
        second = await side.pipeline.handle_async(side.request(), side.offload)
        return first, second

    first, second = asyncio.run(two_messages())
    assert side.offload.calls == 1  # the second was decided on the loop
    for reply in (first, second):
        assert reply.status == 200 and b"Acknowledgment" in reply.body
    assert len(writers) == 2
    assert writers[0].startswith("test-offload")  # ``handle`` in the worker thread
    assert writers[1].startswith("ebms-commit")  # the loop's commit, by the store's writer thread
    assert side.store.receives_waiting == 0


def test_a_stale_cpa_cache_goes_to_a_thread_again(side: _Side) -> None:
    async def run() -> list[Reply]:
        replies = [await side.pipeline.handle_async(side.request(), side.offload) for _ in range(2)]
        side.monotonic.now += 5.0  # past the recheck interval: the stored CPA must be compared
        replies.append(await side.pipeline.handle_async(side.request(), side.offload))
        return replies

    replies = asyncio.run(run())
    assert side.offload.calls == 2  # the cold and the stale one
    assert all(reply.status == 200 for reply in replies)


def test_a_cache_refreshed_in_the_background_keeps_the_request_on_the_loop(side: _Side) -> None:
    """``AgreementCache.refresh`` (the server's background task) confirms the entry before it
    turns stale, so the request after the recheck interval is still decided on the loop."""

    async def run() -> list[Reply]:
        replies = [await side.pipeline.handle_async(side.request(), side.offload)]  # cold: a thread
        side.monotonic.now += 1.0
        await asyncio.to_thread(side.agreements.refresh)
        side.monotonic.now += 1.5  # 2.5 s after the load, 1.5 s after the confirmation
        replies.append(await side.pipeline.handle_async(side.request(), side.offload))
        return replies

    replies = asyncio.run(run())
    assert side.offload.calls == 1  # only the cold one
    assert all(reply.status == 200 for reply in replies)


def test_a_duplicate_found_by_the_store_is_answered_from_a_thread(side: _Side) -> None:
    message_id = UuidIdGenerator("rinis.test").message_id()

    async def run() -> tuple[Reply, Reply]:
        await side.pipeline.handle_async(side.request(), side.offload)  # warms the CPA cache
        calls = side.offload.calls
        first = await side.pipeline.handle_async(side.request(message_id), side.offload)
        assert side.offload.calls == calls  # decided and committed from the loop
        again = await side.pipeline.handle_async(side.request(message_id), side.offload)
        assert side.offload.calls == calls + 1  # the stored Acknowledgment is looked up in a thread
        return first, again

    first, again = asyncio.run(run())
    assert first.status == 200 and b"Acknowledgment" in first.body
    assert (again.status, again.body) == (first.status, first.body)  # ebMS 2.0 §6.5.3: replayed
    stored = side.store.find("in", message_id)
    assert stored is not None and stored.status == "Received"


def test_the_loop_and_the_thread_give_the_same_answer_to_a_refusal(side: _Side) -> None:
    _, _, content_type, body = sealed_request(side.rinis, side.cpa, action="unknownAction")
    refused = InboundRequest(content_type, '"ebXML"', body, side.client, "test")

    async def run() -> Reply:
        await side.pipeline.handle_async(side.request(), side.offload)  # warms the CPA cache
        return await side.pipeline.handle_async(refused, side.offload)

    on_loop = asyncio.run(run())
    assert side.offload.calls == 1
    assert on_loop.status == 200 and b"MessageError" in on_loop.body and b"ValueNotRecognized" in on_loop.body


def test_the_database_is_refused_inside_forbid_blocking(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with forbid_blocking():
            for enter in (
                lambda: database.session().__enter__(),
                lambda: database.run(lambda session: None),
                lambda: database.run_statement(lambda conn: None),
                lambda: database.connection().__enter__(),
            ):
                with pytest.raises(NeedsThread):
                    enter()
        database.run(lambda session: None)  # outside the block: allowed again
    finally:
        database.dispose()


def test_forbid_blocking_is_per_thread_and_nests() -> None:
    seen: list[bool] = []

    def other_thread() -> None:
        try:
            blocking_io("elsewhere")
            seen.append(True)
        except NeedsThread:
            seen.append(False)

    with forbid_blocking():
        with forbid_blocking():
            pass
        with pytest.raises(NeedsThread) as raised:
            blocking_io("a thing")  # still forbidden after the inner block ended
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert raised.value.what == "a thing"
    assert seen == [True]
    blocking_io("after")  # no error outside


def test_a_crl_download_is_never_made_on_the_loop_nor_taken_for_unknown() -> None:
    """The revocation checker turns download failures into "status unknown"; ``NeedsThread`` must
    pass through it (a BaseException) before the download is even tried."""
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate((DEV / "rinis" / "client.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((DEV / "ca.pem").read_bytes())
    fetched: list[str] = []

    def fetch(url: str, body: bytes | None, timeout: float) -> bytes:
        fetched.append(url)
        raise OSError("no network in this test")

    checker = RevocationChecker([ca], mode="fail-closed", fetch=fetch)
    with forbid_blocking(), pytest.raises(NeedsThread):
        checker._crl("http://crl.invalid/ca.crl", ca)
    assert fetched == []
    verdict = checker.check(certificate, what="client certificate")  # outside: as before
    assert verdict.status in ("unchecked", "unknown", "good")
