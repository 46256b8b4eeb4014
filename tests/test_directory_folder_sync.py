"""A directory target's folder fsyncs (delivery/forwarders/directory.py): every rename is durable
before its message counts as delivered, the metadata file's rename comes after a folder fsync that
covers the payload's, and with ``FolderSyncs`` the last folder fsync is left to the caller, once
per folder, with the folders that failed named. The delivery worker's use of it, once per batch,
is tested in tests/test_delivery_batch.py."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ggk_ebms.clock import UuidIdGenerator
from ggk_ebms.delivery.forwarders import directory
from ggk_ebms.delivery.forwarders.base import Delivery
from ggk_ebms.delivery.forwarders.directory import DirectoryForwarder, FolderSyncs
from ggk_ebms.routing.table import DirectoryTarget, Route
from ggk_ebms.stuf.envelope import build_di01, parse_envelope
from ggk_ebms.stuf.model import Systeem
from tests.endpoint import CPA_RM

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
