"""Parse once: the parsed CPA cached per process and dropped at once on import and delete; one
lxml parser per thread (a shared parser serialises the inbound threads)."""

from __future__ import annotations

import threading

from ggk_ebms import xml
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.pipeline.agreements import AgreementCache, process_cache
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
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
