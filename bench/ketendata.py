"""Ketendata export cost: messages per second flattened, hashed and written as a file set.

    .venv/bin/python -m bench.ketendata --messages 5000 [--db-url URL]

Stores ``--messages`` iJw/iWmo messages (the test week's builders, spread over one week) in a
fresh SQLite file (or the given database) and times one weekly export. Prints figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from ggk_ebms.clock import FixedClock
from ggk_ebms.config import Settings
from ggk_ebms.services import ketendata as service
from ggk_ebms.store.db import Database
from tests.ketendata_support import CLIENTS, WEEK_START, Traffic, jw301, jw305, jw323, wmo315


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-ketendata-"))
    database = Database(args.db_url or f"sqlite:///{folder / 'bench.db'}")
    database.upgrade()
    clock = FixedClock(WEEK_START)
    traffic = Traffic(database, clock)
    step = timedelta(days=6) / max(args.messages, 1)
    started = time.perf_counter()
    for n in range(args.messages):
        client = CLIENTS[n % 2]
        kind = n % 4
        if kind == 0:
            traffic.sent("b", jw301(f"T-{n}", client, [f"{n:06d}", f"{n + 1:06d}"]), "JW301")
        elif kind == 1:
            traffic.received("b", jw305(f"S-{n}", client, f"{n:06d}"), "JW305")
        elif kind == 2:
            traffic.received("b", wmo315(f"V-{n}", client), "WMO315")
        else:
            traffic.received("b", jw323(f"D-{n}"), "JW323")
        clock.advance(step)
    stored = time.perf_counter() - started
    ctx = service.KetendataContext(
        Settings(data_dir=folder, ketendata_key_file=folder / "ketendata.key"),
        database,
        FixedClock(WEEK_START + timedelta(days=7)),
    )
    started = time.perf_counter()
    result = service.export(ctx, service.ExportRequest("weekly"))
    elapsed = time.perf_counter() - started
    rows = sum(r for _, r in result.files)
    size = sum(f.size for f in service.list_files(ctx))
    print(f"database           {database.backend}")
    print(f"messages stored    {args.messages} in {stored:.1f} s (set-up, not measured)")
    print(
        f"export             {result.messages} messages, {rows} rows, {len(result.files)} files, {size} bytes"
    )
    print(f"export time        {elapsed:.2f} s = {result.messages / elapsed:.0f} messages/s")
    database.dispose()


if __name__ == "__main__":
    main()
