"""Parse once: the parsed CPA cached per process and dropped at once on import and delete; one
lxml parser per thread (a shared parser serialises the inbound threads)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from ggk_ebms import xml
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.pipeline.agreements import AgreementCache, process_cache
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import cpa
from tests.endpoint import PROJECT_ROOT


def test_the_cpa_is_parsed_once_and_dropped_on_delete_and_import(db: Database) -> None:
    raw = (PROJECT_ROOT / "cpa" / "dev-osb-rm.xml").read_bytes()
    agreement = parse_agreement(raw)
    repository = CpaRepository(db)
    repository.add_agreement(agreement)
    # A recheck interval that never passes: only the invalidation can make the cache look again.
    cache = AgreementCache(repository, recheck=1e9)
    first = cache.get(agreement.cpa_id)
    assert first is not None and cache.get(agreement.cpa_id) is first  # parsed once
    repository.delete(agreement.cpa_id)
    assert cache.get(agreement.cpa_id) is None
    repository.add_agreement(agreement)
    again = cache.get(agreement.cpa_id)
    assert again is not None and again is not first


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_refresh_confirms_unchanged_cpas_and_drops_changed_and_deleted_ones(db: Database) -> None:
    """The background refresh (server/run.py): one query for the hashes; an unchanged entry
    counts as checked from before that query, a changed or deleted one is loaded again by the
    next ``get``."""
    raw = (PROJECT_ROOT / "cpa" / "dev-osb-rm.xml").read_bytes()
    agreement = parse_agreement(raw)
    repository = CpaRepository(db)
    repository.add_agreement(agreement)
    finds: list[str] = []
    real_find = repository.find

    def counting_find(cpa_id: str):  # type: ignore[no-untyped-def]
        finds.append(cpa_id)
        return real_find(cpa_id)

    repository.find = counting_find  # type: ignore[method-assign]
    clock = _Clock()
    cache = AgreementCache(repository, recheck=2.0, monotonic=clock)
    cache.refresh()  # nothing cached: nothing asked
    first = cache.get(agreement.cpa_id)
    assert first is not None and finds == [agreement.cpa_id]
    stored = real_find(agreement.cpa_id)
    assert stored is not None
    assert repository.digests([agreement.cpa_id, "unknown"]) == {agreement.cpa_id: stored.sha256}
    # Without CPAIds: every stored CPA (the identity gate's fingerprint, server/gate.py).
    assert repository.digests() == {s.cpa_id: s.sha256 for s in repository.list()}

    clock.now += 1.5
    cache.refresh()
    clock.now += 1.5  # 3 s after the load, 1.5 s after the confirmation: still fresh
    assert cache.get(agreement.cpa_id) is first and len(finds) == 1

    # Another process changes the row (no invalidation reaches this one): the refresh drops the
    # entry and the next get loads it again.
    with db.session() as session:
        session.execute(sa.update(cpa).where(cpa.c.cpa_id == agreement.cpa_id).values(sha256="0" * 64))
    cache.refresh()
    again = cache.get(agreement.cpa_id)
    assert again is not None and again is not first and len(finds) == 2

    with db.session() as session:
        session.execute(sa.delete(cpa).where(cpa.c.cpa_id == agreement.cpa_id))
    cache.refresh()
    assert cache.get(agreement.cpa_id) is None and len(finds) == 3


def test_one_cache_per_process_and_database(db: Database) -> None:
    assert process_cache(db, max_cpa_bytes=1024) is process_cache(db, max_cpa_bytes=1024)


def test_one_parser_per_thread() -> None:
    seen: list[object] = []

    def parse_here() -> None:
        xml.parse(b"<a/>")
        seen.append(xml._parser())

    threads = [threading.Thread(target=parse_here) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parse_here()
    assert len({id(parser) for parser in seen}) == 4
    assert xml._parser() is xml._parser()
