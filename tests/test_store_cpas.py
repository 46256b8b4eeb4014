"""CpaRepository on both databases: add, get, find, list, overwrite rules, delete."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import CpaExistsError, CpaNotFoundError, StoreError
from ggk_ebms.store.cpas import CpaRepository, StoredCpa
from ggk_ebms.store.db import Database

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
OINS = ["00000099000003630000", "00000099000001000000"]


def _add(repo: CpaRepository, cpa_id: str, raw: bytes = b"<CPA/>", **kw: object) -> None:
    repo.add(
        cpa_id,
        raw,
        status=str(kw.get("status", "active")),
        start=T0,
        end=T0 + timedelta(days=365),
        party_ids=list(OINS),
        profiles=["osb-rm", "osb-rm-s"],
        overwrite=bool(kw.get("overwrite", False)),
    )


def test_round_trip(db: Database) -> None:
    clock = FixedClock(T0)
    repo = CpaRepository(db, clock)
    raw = b"<cpa:CollaborationProtocolAgreement>\xe2\x82\xac</cpa:CollaborationProtocolAgreement>"
    _add(repo, "cpa-gemeente-rinis", raw)
    assert repo.get("cpa-gemeente-rinis") == StoredCpa(
        cpa_id="cpa-gemeente-rinis",
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        status="active",
        start=T0,
        end=T0 + timedelta(days=365),
        party_ids=OINS,
        profiles=["osb-rm", "osb-rm-s"],
        imported_at=T0,
        updated_at=T0,
    )


def test_find_and_get_unknown(db: Database) -> None:
    repo = CpaRepository(db)
    assert repo.find("nope") is None
    with pytest.raises(CpaNotFoundError, match="nope"):
        repo.get("nope")


def test_list_is_ordered_by_cpa_id(db: Database) -> None:
    repo = CpaRepository(db)
    for cpa_id in ("b", "c", "a"):
        _add(repo, cpa_id)
    assert [c.cpa_id for c in repo.list()] == ["a", "b", "c"]


def test_overwrite_refused_then_allowed(db: Database) -> None:
    clock = FixedClock(T0)
    repo = CpaRepository(db, clock)
    _add(repo, "x", b"first")
    clock.advance(timedelta(hours=1))
    with pytest.raises(CpaExistsError, match="'x'"):
        _add(repo, "x", b"second")
    assert repo.get("x").raw == b"first"
    _add(repo, "x", b"second", overwrite=True, status="expired")
    stored = repo.get("x")
    assert (stored.raw, stored.status) == (b"second", "expired")
    assert stored.imported_at == T0
    assert stored.updated_at == T0 + timedelta(hours=1)
    assert len(repo.list()) == 1


def test_overwrite_of_a_new_cpa_just_adds_it(db: Database) -> None:
    repo = CpaRepository(db)
    _add(repo, "fresh", overwrite=True)
    assert repo.get("fresh").cpa_id == "fresh"


def test_delete(db: Database) -> None:
    repo = CpaRepository(db)
    _add(repo, "gone")
    _add(repo, "kept")
    repo.delete("gone")
    assert repo.find("gone") is None
    assert [c.cpa_id for c in repo.list()] == ["kept"]
    with pytest.raises(CpaNotFoundError):
        repo.delete("gone")


@pytest.mark.parametrize("cpa_id", ["", "x" * 256])
def test_cpa_id_length_is_checked(db: Database, cpa_id: str) -> None:
    with pytest.raises(StoreError, match="CPAId"):
        _add(CpaRepository(db), cpa_id)
