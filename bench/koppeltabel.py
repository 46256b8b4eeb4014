"""Koppeltabel cost: messages per second read into the koppeltabel and linked.

    .venv/bin/python -m bench.koppeltabel --toewijzingen 500 [--db sqlite|postgres] [--db-url URL]

Stores, per toewijzing, a JW301, its JW302 retour (Du01 crossRefnummer), a JW305 start and a
JW307 stop on its ToewijzingNummer, in a fresh database (a SQLite file, or a private PostgreSQL
schema dropped afterwards, like the other benches; ``--db-url``: that database as it is, whose
tables are left behind), then times one catch-up over all of them (the backlog after an
upgrade). Prints figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.databases import BACKENDS, private_database
from ggk_ebms.clock import FixedClock
from ggk_ebms.services.koppeltabel import catch_up
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import koppel_relation
from tests.ketendata_support import CLIENTS, jw301, jw305, jw307
from tests.koppeltabel_support import Traffic, retour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--toewijzingen", type=int, default=250)
    parser.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    parser.add_argument("--db-url", default=None, help="use this database as it is instead")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-koppeltabel-"))
    if args.db_url:
        run(Database(args.db_url), args.toewijzingen)
        return
    with private_database(args.db, folder, "koppeltabel") as url:
        run(Database(url), args.toewijzingen)


def run(database: Database, toewijzingen: int) -> None:
    """Store the traffic, time one catch-up over it, print the figures."""
    database.upgrade()
    clock = FixedClock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    traffic = Traffic(database, clock)
    started = time.perf_counter()
    for n in range(toewijzingen):
        client = CLIENTS[n % 2]
        nummer = f"{n:08d}"
        heen = traffic.di01(jw301(f"T-{n}", client, [nummer]), "JW301", "out")
        traffic.du01(retour("JW302", f"T-{n}"), "JW302", "in", answers=heen)
        traffic.di01(jw305(f"S-{n}", client, nummer), "JW305", "in")
        traffic.di01(jw307(f"E-{n}", client, nummer), "JW307", "in")
        clock.advance(timedelta(minutes=1))
    stored = time.perf_counter() - started
    started = time.perf_counter()
    read = catch_up(database, clock)
    elapsed = time.perf_counter() - started
    with database.session() as session:
        relations = session.execute(sa.select(sa.func.count()).select_from(koppel_relation)).scalar_one()
    print(f"database           {database.backend}")
    print(f"messages stored    {4 * toewijzingen} in {stored:.1f} s (set-up, not measured)")
    print(f"catch-up           {read} messages read, {relations} relations")
    print(f"catch-up time      {elapsed:.2f} s = {read / elapsed:.0f} messages/s")
    database.dispose()


if __name__ == "__main__":
    main()
