"""Builders for the portal-work tests: gemeente payloads, ZIPs and a service context."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ggk_ebms.clock import FixedClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.db import Database
from tests.cli_support import dev_cpa_folder
from tests.endpoint import party_settings

AGB = "42420001"
# A WMO301 (Toewijzing Wmo-ondersteuning, gemeente -> aanbieder), header only, written for these
# tests; BerichtCode 414 is the catalogue's code for WMO301.
WMO301 = """<?xml version="1.0" encoding="UTF-8"?>
<w:Bericht xmlns:w="http://www.istandaarden.nl/iwmo/3_2/wmo301/schema">
  <w:Header>
    <w:BerichtCode>{code}</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie><w:BerichtSubversie>2</w:BerichtSubversie>
    <w:Afzender>{gemeente}</w:Afzender><w:Ontvanger>{agb}</w:Ontvanger>
    <w:BerichtIdentificatie><w:Identificatie>{ident}</w:Identificatie><w:Dagtekening>2026-12-01</w:Dagtekening></w:BerichtIdentificatie>
  </w:Header>
</w:Bericht>
"""
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def wmo301(gemeente: str = "0363", ident: str = "T-1", code: str = "414") -> bytes:
    return WMO301.format(gemeente=gemeente, agb=AGB, ident=ident, code=code).encode()


def make_zip(entries: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


def ops_settings(tmp: Path, db_url: str, **changes: Any) -> Settings:
    """The dev gemeente with one CPA (dev-osb-rm), serving 0363 only."""
    folder = dev_cpa_folder(tmp / "cpa")
    values: dict[str, Any] = {"served_gemeentecodes": ["0363"], "outbox_dir": tmp / "outbox"}
    values.update(changes)
    return party_settings("gemeente", tmp, db_url, folder, **values)


@dataclass
class Ops:
    ctx: ServiceContext
    clock: FixedClock
    tmp: Path

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / "uploads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


def ops_context(settings: Settings, database: Database, tmp: Path, actor: str = "medewerker") -> Ops:
    for _ in import_cpa_dir(settings, database):
        pass
    clock = FixedClock(START)
    ctx = ServiceContext(
        database=database, settings=settings, actor=actor, clock=clock, ids=UuidIdGenerator("test")
    )
    return Ops(ctx, clock, tmp)
