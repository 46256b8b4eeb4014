"""Berichtenlog filters and Ophalen (download, unmark, delete, retention with a moved clock), on
SQLite and PostgreSQL, through the services."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.services import aanleveren, ophalen
from ggk_ebms.services.aanleveren import Upload
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.services.berichtenlog import REFUSED, LogFilter, berichtenlog
from ggk_ebms.services.context import ServiceError
from ggk_ebms.store.db import Database
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.stuf import StufRecord, StufStore
from tests.message_support import received_di01
from tests.ops_support import START, Ops, make_zip, ops_context, ops_settings, wmo301


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path)


def received(
    db: Database, at: datetime, *, berichttype: str, gemeentecode: str, ref: str, mailbox: bool = False
) -> int:
    """A received WMO message stored at ``at`` with its stuurgegevens (and a mailbox item)."""
    clock = FixedClock(at)
    message = received_di01(at, status="Processed")
    pk = (
        MessageStore(db, clock)
        .receive(
            message,
            [NewPart("p@peer.test", "application/xml", b"<x/>")],
            response=None,
            deliver=False,
            send_response_async=False,
        )
        .message_pk
    )
    StufStore(db, clock).record(
        StufRecord(
            message_pk=pk,
            direction="in",
            berichtcode="Di01",
            referentienummer=ref,
            zender="42420001",
            ontvanger=gemeentecode,
            gemeentecode=gemeentecode,
            berichttype=berichttype,
        )
    )
    if mailbox:
        Mailbox(db, clock).put(
            message_pk=pk,
            route_name="mb",
            gemeentecode=gemeentecode,
            berichttype=berichttype,
            referentienummer=ref,
            zender="42420001",
            filename=f"{ref}.xml",
            payload=f"<payload ref='{ref}'/>".encode(),
            envelope=None,
        )
    return pk


def test_berichtenlog_filters(ops: Ops) -> None:
    db = ops.ctx.database
    old = received(db, START - timedelta(days=10), berichttype="WMO305", gemeentecode="0363", ref="r-old")
    a = received(db, START - timedelta(days=2), berichttype="WMO305", gemeentecode="0363", ref="r-a")
    b = received(db, START - timedelta(days=1), berichttype="WMO307", gemeentecode="0014", ref="r-b")
    data = make_zip([("goed.xml", wmo301(ident="L-1")), ("fout.xml", wmo301(gemeente="0014", ident="L-2"))])
    path = ops.file("mix.zip", data)
    verslag = aanleveren.aanleveren(ops.ctx, Upload("mix.zip", path))
    [sent] = [f.message_pk for f in verslag.bestanden if f.uitkomst == "correct"]

    def pks(**filters: object) -> list[object]:
        page = berichtenlog(ops.ctx, LogFilter(**filters))  # type: ignore[arg-type]
        return [r.message_pk if r.message_pk is not None else f"refused:{r.status_reason}" for r in page.rows]

    # Default: one week back from now, newest first; the refused file is in it.
    assert pks() == [sent, "refused:Organisatie is niet geautoriseerd", b, a]
    assert pks(since=START - timedelta(days=30))[-1] == old
    assert pks(berichttype="WMO305", since=START - timedelta(days=30)) == [a, old]
    assert pks(gemeentecode="0014") == ["refused:Organisatie is niet geautoriseerd", b]
    assert pks(direction="in") == [b, a]
    assert pks(direction="out") == [sent, "refused:Organisatie is niet geautoriseerd"]
    assert pks(status=REFUSED) == ["refused:Organisatie is niet geautoriseerd"]
    assert pks(status="Processed") == [b, a]
    assert pks(referentienummer="r-b") == [b]
    assert pks(batch=verslag.batch) == [sent, "refused:Organisatie is niet geautoriseerd"]
    assert pks(until=START - timedelta(days=1, hours=12)) == [a]
    # Paging: two pages of two.
    first = berichtenlog(ops.ctx, LogFilter(limit=2))
    second = berichtenlog(ops.ctx, LogFilter(limit=2, offset=2))
    assert first.more and not second.more
    assert [r.message_pk for r in second.rows] == [b, a]
    row = next(r for r in first.rows if r.message_pk == sent)
    assert row.berichttype == "WMO301" and row.gemeentecode == "0363" and row.batch_pk == verslag.batch
    with pytest.raises(ServiceError):
        berichtenlog(ops.ctx, LogFilter(since=START, until=START - timedelta(days=1)))


def test_ophalen_download_unmark_delete(ops: Ops) -> None:
    db = ops.ctx.database
    one = received(db, START, berichttype="WMO305", gemeentecode="0363", ref="m-1", mailbox=True)
    received(db, START, berichttype="WMO307", gemeentecode="0363", ref="m-2", mailbox=True)
    items = ophalen.list_items(ops.ctx, ophalen.OphaalQuery())
    assert [i.titel for i in items] == ["20261201_090000_0363_WMO307", "20261201_090000_0363_WMO305"]
    assert all(i.gedownload is None for i in items)
    download = ophalen.download(ops.ctx, [i.id for i in items])
    with zipfile.ZipFile(io.BytesIO(download.data)) as archive:
        names = archive.namelist()
        assert sorted(archive.read(n) for n in names) == [b"<payload ref='m-1'/>", b"<payload ref='m-2'/>"]
    assert all(i.gedownload == START for i in download.items)
    assert MessageStore(db).get(one).status == "Forwarded"  # collected: delivered
    assert ophalen.list_items(ops.ctx, ophalen.OphaalQuery(unread_only=True)) == ()
    first = items[1].id
    assert ophalen.unmark(ops.ctx, [first]) == (first,)
    assert [i.id for i in ophalen.list_items(ops.ctx, ophalen.OphaalQuery(unread_only=True))] == [first]
    assert ophalen.delete(ops.ctx, [items[0].id]) == (items[0].id,)
    assert [i.id for i in ophalen.list_items(ops.ctx, ophalen.OphaalQuery())] == [first]
    # Removed from Ophalen, still findable in the berichtenlog, marked as removed.
    [row] = berichtenlog(ops.ctx, LogFilter(referentienummer="m-2")).rows
    assert row.verwijderd == START
    actions = [e.action for e in list_audit(ops.ctx, AuditQuery()).events]
    assert actions[:3] == ["mailbox-delete", "mailbox-unmark", "mailbox-download"]


def test_ophalen_retention_with_a_moved_clock(ops: Ops) -> None:
    db = ops.ctx.database
    read = received(db, START, berichttype="WMO305", gemeentecode="0363", ref="k-read", mailbox=True)
    kept = received(db, START, berichttype="WMO305", gemeentecode="0363", ref="k-unmarked", mailbox=True)
    unread = received(db, START, berichttype="WMO305", gemeentecode="0363", ref="k-unread", mailbox=True)
    by_message = {i.message_pk: i.id for i in ophalen.list_items(ops.ctx, ophalen.OphaalQuery())}
    ophalen.download(ops.ctx, [by_message[read], by_message[kept]])
    ophalen.unmark(ops.ctx, [by_message[kept]])

    def live() -> set[int]:
        return {i.message_pk for i in ophalen.list_items(ops.ctx, ophalen.OphaalQuery())}

    ops.clock.advance(timedelta(hours=167))
    assert ophalen.purge(ops.ctx).removed_gelezen == 0
    assert live() == {read, kept, unread}
    ops.clock.advance(timedelta(hours=2))  # 169 h after the download
    result = ophalen.purge(ops.ctx)
    assert (result.removed_gelezen, result.removed_old, result.forgotten) == (1, 0, 0)
    assert live() == {kept, unread}
    # Removed, yet findable in the berichtenlog, for 60 days after the removal.
    wide = LogFilter(since=START - timedelta(days=1), until=START + timedelta(days=400))
    [row] = [r for r in berichtenlog(ops.ctx, wide).rows if r.message_pk == read]
    assert row.verwijderd == START + timedelta(hours=169)
    removed_at = ops.clock.now()
    ops.clock.at = removed_at + timedelta(days=60) - timedelta(minutes=1)
    assert ophalen.purge(ops.ctx).forgotten == 0
    ops.clock.at = removed_at + timedelta(days=60, minutes=1)
    assert ophalen.purge(ops.ctx).forgotten == 1
    assert {r.message_pk for r in berichtenlog(ops.ctx, wide).rows} == {kept, unread}
    # Everything leaves Ophalen after 90 days, read or not; the log keeps them 60 days more.
    ops.clock.at = START + timedelta(days=90, minutes=1)
    assert ophalen.purge(ops.ctx).removed_old == 2
    assert live() == set()
    assert {r.message_pk for r in berichtenlog(ops.ctx, wide).rows} == {kept, unread}
    ops.clock.at = START + timedelta(days=150, minutes=2)
    assert ophalen.purge(ops.ctx).forgotten == 2
    assert berichtenlog(ops.ctx, wide).rows == ()


def test_message_retention_leaves_mailbox_messages_to_ophalen(ops: Ops) -> None:
    db = ops.ctx.database
    boxed = received(db, START, berichttype="WMO305", gemeentecode="0363", ref="p-1", mailbox=True)
    plain = received(db, START, berichttype="WMO305", gemeentecode="0363", ref="p-2")
    assert MessageStore(db).purge(START + timedelta(days=61)) == 1
    assert MessageStore(db).get(boxed).pk == boxed
    with pytest.raises(Exception, match="no message"):
        MessageStore(db).get(plain)
