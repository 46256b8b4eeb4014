"""A directory target's folder fsyncs (delivery/forwarders/directory.py): every rename is durable
before its message counts as delivered, the metadata file's rename comes after a folder fsync that
covers the payload's, and the delivery worker fsyncs each folder once per batch instead of once per
message. A folder whose fsync fails at the end of a batch fails that batch's forwards into it: they
are retried, not recorded as delivered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.forwarders import directory
from ggk_ebms.delivery.forwarders.base import Delivery
from ggk_ebms.delivery.forwarders.directory import DirectoryForwarder, FolderSyncs
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.errors import TransportError
from ggk_ebms.routing.table import DirectoryTarget, Route
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.stuf.envelope import build_di01, parse_envelope
from ggk_ebms.stuf.model import Systeem
from tests.endpoint import CPA_RM, RINIS, cpa_folder, party_settings
from tests.message_support import received_di01

AGB = "65656055"
_PAYLOAD = (
    '<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/3_2/wmo305/schema"><w:Header>'
    "<w:BerichtCode>418</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie>"
    "<w:BerichtSubversie>2</w:BerichtSubversie><w:Afzender>{agb}</w:Afzender>"
    "<w:Ontvanger>0363</w:Ontvanger><w:BerichtIdentificatie><w:Identificatie>{ident}</w:Identificatie>"
    "<w:Dagtekening>2026-01-05</w:Dagtekening></w:BerichtIdentificatie></w:Header></w:Bericht>"
)


def _di01(ident: str) -> bytes:
    return build_di01(
        zender=Systeem(AGB, "Zorgsysteem"),
        ontvanger=Systeem("0363", "GGk"),
        functie="WMO305",
        payload=_PAYLOAD.format(agb=AGB, ident=ident).encode(),
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    ).data


class Disk:
    """What reached the file system, in order: renames by file name, fsyncs of folders."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str]] = []
        self.failing: set[Path] = set()
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if path.is_dir():
                if path in self.failing:
                    raise OSError(5, "Input/output error")
                self.events.append(("folder", str(path)))
            real_fsync(fd)

        def replace(source: str | Path, target: str | Path) -> None:
            real_replace(source, target)
            self.events.append(("rename", Path(target).name))

        monkeypatch.setattr(directory.os, "fsync", fsync)
        monkeypatch.setattr(directory.os, "replace", replace)

    def folder_syncs(self) -> int:
        return sum(1 for kind, _ in self.events if kind == "folder")


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def _delivery(target: DirectoryTarget, ident: str = "B-1") -> Delivery:
    data = _di01(ident)
    stuf = parse_envelope(data)
    assert stuf.payload is not None
    return Delivery(
        message_pk=1,
        message_id=f"{uuid.uuid4()}@test",
        cpa_id=CPA_RM,
        route=Route(name="r", gemeentecode="0363", berichttype="WMO305", target=target),
        stuf=stuf,
        envelope=data,
        payload=stuf.payload.data,
    )


# (write_envelope, write_metadata) -> folder fsyncs per message on its own, and left for the batch
_SHAPES = [((False, False), 1, 0), ((False, True), 2, 1), ((True, False), 1, 0), ((True, True), 2, 1)]


@pytest.mark.parametrize(("shape", "alone", "in_batch"), _SHAPES)
def test_every_rename_is_durable_and_the_metadata_comes_after_a_folder_fsync(
    disk: Disk, tmp_path: Path, shape: tuple[bool, bool], alone: int, in_batch: int
) -> None:
    write_envelope, write_metadata = shape
    target = DirectoryTarget(tmp_path / "in", write_envelope=write_envelope, write_metadata=write_metadata)
    delivery = _delivery(target)
    DirectoryForwarder(target).forward(delivery)
    assert disk.folder_syncs() == alone
    assert disk.events[-1] == ("folder", str(target.path))  # nothing renamed after the last fsync
    if write_metadata:
        metadata = disk.events.index(("rename", f"{delivery.base_name}.json"))
        assert ("folder", str(target.path)) in disk.events[:metadata]
        assert all(kind == "folder" for kind, _ in disk.events[metadata - 1 : metadata])

    disk.events.clear()
    folders = FolderSyncs()
    DirectoryForwarder(target, folders).forward(delivery)
    assert disk.folder_syncs() == in_batch
    assert disk.events[-1][0] == "rename"  # the last rename waits for the batch's fsync
    assert folders.sync() == {}
    assert disk.events[-1] == ("folder", str(target.path))
    assert folders.sync() == {}  # synced folders are forgotten
    assert disk.folder_syncs() == in_batch + 1
    written = sorted(p.name for p in target.path.iterdir())
    assert len(written) == 1 + write_envelope + write_metadata  # no temporary file left


def test_a_failed_folder_fsync_names_its_folder_and_the_others_are_still_synced(
    disk: Disk, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    folders = FolderSyncs()
    for path in (good, bad, good):
        target = DirectoryTarget(path, write_metadata=False)
        DirectoryForwarder(target, folders).forward(_delivery(target))
    assert disk.folder_syncs() == 0
    disk.failing.add(bad)
    failed = folders.sync()
    assert list(failed) == [bad]
    assert failed[bad].retryable
    assert f"cannot write to folder {bad}: Input/output error" in str(failed[bad])
    assert disk.events.count(("folder", str(good))) == 1


# --- the delivery worker -------------------------------------------------------------------------

ROUTES = """
[endpoint]
gemeentecodes = ["0363"]

[[sender]]
id = "{rinis}"
gemeentecodes = ["0363"]

[[route]]
name = "exact"
gemeentecode = "0363"
berichttype = "WMO305"
target = {{ type = "directory", path = "{base}/exact", write_metadata = false }}
"""


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        delivery_retry_seconds=0.0,
        delivery_retry_max_seconds=0.0,
        delivery_max_attempts=3,
        delivery_batch=50,
    )


@pytest.fixture
def db(settings: Settings, tmp_path: Path) -> Iterator[Database]:
    database = Database(settings.database_url)
    database.upgrade()
    for line in import_cpa_dir(settings, database):
        assert "not imported" not in line or "sync" in line, line
    RouteStore(database).replace(
        ROUTES.format(rinis=RINIS, base=tmp_path), source="routes.toml", base_dir=tmp_path
    )
    try:
        yield database
    finally:
        database.dispose()


def _receive(db: Database, count: int) -> list[int]:
    pks = []
    for n in range(count):
        message = received_di01(datetime.now(UTC), sender=RINIS, cpa_id=CPA_RM)
        part = NewPart(f"{uuid.uuid4()}@peer.test", "application/xml", _di01(f"B-{n}"))
        receipt = MessageStore(db).receive(
            message, [part], response=None, deliver=True, send_response_async=False
        )
        pks.append(receipt.message_pk)
    return pks


def _run(settings: Settings, db: Database) -> int:
    return DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()


def test_the_worker_fsyncs_the_folder_once_per_batch_before_recording(
    disk: Disk, settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pks = _receive(db, 6)
    folder = tmp_path / "exact"
    forwarded_before_sync: list[int] = []
    real_sync = FolderSyncs.sync

    def sync(self: FolderSyncs) -> dict[Path, TransportError]:
        # Nothing of the batch is recorded as delivered before its folders are synced.
        forwarded_before_sync.extend(pk for pk in pks if MessageStore(db).get(pk).status == "Forwarded")
        return real_sync(self)

    monkeypatch.setattr(FolderSyncs, "sync", sync)
    assert _run(settings, db) == 6
    assert forwarded_before_sync == []
    assert [MessageStore(db).get(pk).status for pk in pks] == ["Forwarded"] * 6
    assert disk.events.count(("folder", str(folder))) == 1  # one for the batch, not one per message
    assert disk.events[-1] == ("folder", str(folder))
    assert len(list(folder.glob("0363_WMO305_*.xml"))) == 6


def test_a_batch_whose_folder_fsync_fails_is_retried_not_delivered(
    disk: Disk, settings: Settings, db: Database, tmp_path: Path
) -> None:
    pks = _receive(db, 3)
    folder = tmp_path / "exact"
    folder.mkdir()
    disk.failing.add(folder)
    _run(settings, db)  # every fsync of the folder fails: the forwards fail before recording
    for pk in pks:
        message = MessageStore(db).get(pk)
        assert message.status != "Forwarded"
        assert [a.outcome for a in JobQueue(db).attempts(pk)] == ["retry"]
    disk.failing.clear()  # the disk recovers
    _run(settings, db)
    assert [MessageStore(db).get(pk).status for pk in pks] == ["Forwarded"] * 3
    assert [[a.outcome for a in JobQueue(db).attempts(pk)] for pk in pks] == [["retry", "ok"]] * 3
