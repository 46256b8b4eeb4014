"""ZIPs in the outbox folder go through Aanleveren: a batch with a verslag, as from the CLI.

A domain application that drops ``*.zip`` in ``outbox_dir`` gets what the portal gives: the ZIP
moves to ``done/`` when the batch is Afgeleverd, to ``failed/`` when it is Afgekeurd or refused
as a whole, with the verslag beside it as ``<name>.verslag.json`` (or the refusal in
``<name>.reason.txt``). The actor in the audit trail is ``outbox``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.services.aanleveren import Upload, UploadRefused, aanleveren
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.services.jsonable import plain
from ggk_ebms.store.db import Database

log = logging.getLogger(__name__)

ACTOR = "outbox"


def deliver_zips(
    settings: Settings,
    database: Database,
    *,
    ids: IdGenerator,
    clock: Clock,
    move: Callable[[Path, Path], Path],
) -> int:
    """Run every ``*.zip`` (any case) of outbox_dir through Aanleveren; returns how many."""
    folder = settings.outbox_dir
    zips = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".zip" and not p.name.startswith(".")
    )
    ctx = ServiceContext(database=database, settings=settings, actor=ACTOR, clock=clock, ids=ids)
    for path in zips:
        try:
            verslag = aanleveren(ctx, Upload(path.name, path))
        except UploadRefused as exc:
            moved = move(path, folder / "failed")
            moved.with_name(moved.name + ".reason.txt").write_text(f"{exc}\n", encoding="utf-8")
            log.warning("outbox ZIP %s refused: %s", path.name, exc)
            continue
        moved = move(path, folder / ("done" if verslag.status == "Afgeleverd" else "failed"))
        moved.with_name(moved.name + ".verslag.json").write_text(
            json.dumps(plain(verslag), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        log.info("outbox ZIP %s: aanlevering %d %s", path.name, verslag.batch, verslag.status)
    return len(zips)
