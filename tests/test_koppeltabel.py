"""The koppeltabel: related messages linked by the iStandaarden rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.koppeltabel import Keys, Relation, Via, relate, relate_either
from ggk_ebms.koppeltabel_pace import CatchUpPace
from ggk_ebms.services import koppeltabel as service
from ggk_ebms.services.context import NotFoundError, ServiceContext
from ggk_ebms.store.db import Database
from ggk_ebms.store.koppeltabel import KoppelStore
from tests.ketendata_support import AGB_A, AGB_B, CLIENTS, GEMEENTECODE, jw301, jw305, jw307, jw323
from tests.koppeltabel_support import Traffic, jw315, jw325, retour
from tests.ops_support import ops_settings

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
OTHER_GEMEENTE = "0599"


@pytest.fixture
def ctx(db: Database, db_url: str, tmp_path: Path) -> ServiceContext:
    return ServiceContext(
        database=db, settings=ops_settings(tmp_path, db_url), actor="test", clock=FixedClock(START)
    )


def _links(db: Database, pk: int) -> set[tuple[int, str, str, str]]:
    return {(r.pk, r.relation.value, r.via.value, r.role) for r in KoppelStore(db).related(pk)}


def test_a_week_of_related_traffic_is_linked(db: Database, ctx: ServiceContext) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    t = Traffic(db, clock)
    c1 = CLIENTS[0]
    vot = t.di01(jw315("V-1", ["AB-300200"]), "JW315", "in")
    vot_retour = t.du01(retour("JW316", "V-1"), "JW316", "out", answers=vot)
    clock.advance(timedelta(hours=3))
    toewijzing = t.di01(jw301("T-1", c1, ["300200", "300201"]), "JW301", "out")
    toewijzing_retour = t.du01(retour("JW302", "T-1"), "JW302", "in", answers=toewijzing)
    clock.advance(timedelta(days=1))
    start = t.di01(jw305("S-1", c1, "300200"), "JW305", "in")
    stop = t.di01(jw307("S-2", c1, "300201"), "JW307", "in")
    fout = t.fo01("out", answers=stop)  # the gemeente refuses the 307
    declaratie = t.di01(jw323("D-1"), "JW323", "in")
    antwoord = t.du01(jw325("A-1", "D-1"), "JW325", "out", answers=declaratie)
    open_declaratie = t.di01(jw323("D-2"), "JW323", "in")
    lonely = t.di01(jw301("T-2", c1, ["300300"]), "JW301", "out")
    # Another gemeente of the installation with the same ToewijzingNummer: never linked to ours.
    other = t.di01(
        jw305("S-9", c1, "300200").replace(b">0363<", b">0599<"), "JW305", "in", gemeente=OTHER_GEMEENTE
    )

    assert service.catch_up(db, clock) == 12

    assert _links(db, toewijzing) == {
        (vot, "toewijzing", "ReferentieAanbieder", "earlier"),
        (toewijzing_retour, "retour", "crossRefnummer", "later"),
        (start, "start", "ToewijzingNummer", "later"),
        (stop, "stop", "ToewijzingNummer", "later"),
        (declaratie, "declaratie", "ToewijzingNummer", "later"),
        (open_declaratie, "declaratie", "ToewijzingNummer", "later"),
    }
    assert _links(db, vot) == {
        (vot_retour, "retour", "crossRefnummer", "later"),
        (toewijzing, "toewijzing", "ReferentieAanbieder", "later"),
    }
    assert (fout, "fout", "crossRefnummer", "later") in _links(db, stop)
    assert (antwoord, "antwoord", "crossRefnummer", "later") in _links(db, declaratie)
    assert _links(db, other) == set()
    assert _links(db, lonely) == set()

    # The open ends: a toewijzing without a start, a declaratie without an antwoord.
    clock.advance(timedelta(days=5))
    assert [m.pk for m in service.toewijzingen_zonder_start(ctx, 3)] == [lonely]
    assert service.toewijzingen_zonder_start(ctx, 30) == []
    assert [m.pk for m in service.declaraties_zonder_antwoord(ctx)] == [open_declaratie]
    assert service.declaraties_zonder_antwoord(ctx, gemeentecodes=frozenset({OTHER_GEMEENTE})) == []

    # By MessageId through the service; a second catch-up reads nothing and adds nothing.
    found = service.related(ctx, t.message_ids[start])
    assert [(r.pk, r.relation, r.role) for r in found.related] == [(toewijzing, Relation.START, "earlier")]
    with pytest.raises(NotFoundError):
        service.related(ctx, "unknown@koppeltabel.test")
    assert service.catch_up(db, clock) == 0


def test_order_of_arrival_does_not_matter(db: Database, ctx: ServiceContext) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    t = Traffic(db, clock)
    start = t.di01(jw305("S-1", CLIENTS[0], "500500"), "JW305", "in")
    assert service.catch_up(db, clock) == 1
    toewijzing = t.di01(jw301("T-5", CLIENTS[0], ["500500"]), "JW301", "out")
    assert service.catch_up(db, clock) == 1
    assert _links(db, start) == {(toewijzing, "start", "ToewijzingNummer", "earlier")}


def test_the_polled_catch_up_waits_for_a_quiet_moment(db: Database, ctx: ServiceContext) -> None:
    """``koppeltabel_task``'s poll: messages stored since the previous poll leave the catch-up for
    the next poll that finds none, or for ``max_defer`` seconds after the last one that ran."""
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    t = Traffic(db, clock)
    store = KoppelStore(db)
    pace = CatchUpPace(max_defer=60.0)
    first = t.di01(jw305("S-1", CLIENTS[0], "600600"), "JW305", "in")
    assert store.newest_message() == first
    assert service.catch_up_when_quiet(db, clock, pace, 0.0) == 1

    burst = t.di01(jw301("T-6", CLIENTS[0], ["600600"]), "JW301", "out")
    assert service.catch_up_when_quiet(db, clock, pace, 5.0) is None
    assert not store.is_indexed(burst)
    # A query does not wait for the poll: it catches up itself (an answer never misses a message).
    assert _links(db, first) == set()
    assert [r.pk for r in service.related_of(ctx, first)] == [burst]

    later = t.di01(jw305("S-2", CLIENTS[0], "600601"), "JW305", "in")
    assert service.catch_up_when_quiet(db, clock, pace, 10.0) is None
    assert service.catch_up_when_quiet(db, clock, pace, 15.0) == 1  # quiet: it runs
    assert store.is_indexed(later)

    # Traffic that never pauses: the poll a minute after the last run reads anyway.
    endless = t.di01(jw305("S-3", CLIENTS[0], "600602"), "JW305", "in")
    assert service.catch_up_when_quiet(db, clock, pace, 20.0) is None
    t.di01(jw305("S-4", CLIENTS[0], "600603"), "JW305", "in")
    assert service.catch_up_when_quiet(db, clock, pace, 74.0) is None
    t.di01(jw305("S-5", CLIENTS[0], "600604"), "JW305", "in")
    assert service.catch_up_when_quiet(db, clock, pace, 75.0) == 3
    assert store.is_indexed(endless)


def test_messages_without_stuf_are_taken_in_without_relations(db: Database, ctx: ServiceContext) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    t = Traffic(db, clock)
    pk = t._store(b"gemeentecode;aantal\n0363;4\n", "no-stuf", "in")
    assert service.catch_up(db, clock) == 1
    assert KoppelStore(db).is_indexed(pk)
    assert _links(db, pk) == set()


# --- the pure rules --------------------------------------------------------------------------------
def _keys(**values: object) -> Keys:
    base: dict[str, object] = {
        "berichtcode": "Di01",
        "referentienummer": "R1",
        "cross_refnummer": None,
        "zender": GEMEENTECODE,
        "ontvanger": AGB_A,
        "gemeentecode": GEMEENTECODE,
        "aanbieder": AGB_A,
    }
    base.update(values)
    return Keys(**base)  # type: ignore[arg-type]


def test_retour_by_bericht_identificatie_when_the_cross_ref_is_missing() -> None:
    heen = _keys(berichttype="JW301", afzender=GEMEENTECODE, identificatie="T-1")
    answer = _keys(
        berichtcode="Du01",
        referentienummer="R2",
        zender=AGB_A,
        ontvanger=GEMEENTECODE,
        berichttype="JW302",
        afzender=GEMEENTECODE,
        identificatie="T-1",
    )
    [link] = relate((1, heen), (2, answer))
    assert (link.relation, link.via, link.value) == (Relation.RETOUR, Via.BERICHT_IDENTIFICATIE, "T-1")
    # Another afzender's T-1 is another message.
    assert relate((1, heen), (2, _keys(**{**answer.__dict__, "afzender": "0599"}))) == []


def test_antwoord_by_declaratie_identificatie() -> None:
    declaratie = _keys(
        berichttype="JW323", zender=AGB_A, ontvanger=GEMEENTECODE, afzender=AGB_A, identificatie="D-1"
    )
    answer = _keys(
        berichtcode="Du01",
        referentienummer="R9",
        berichttype="JW325",
        afzender=GEMEENTECODE,
        identificatie="A-1",
        values=frozenset({("DeclaratieIdentificatie", "D-1")}),
    )
    [link] = relate_either((1, declaratie), (2, answer))
    assert (link.earlier, link.later, link.relation, link.via) == (
        1,
        2,
        Relation.ANTWOORD,
        Via.DECLARATIE_IDENTIFICATIE,
    )


def test_no_relation_across_aanbieders_gemeenten_or_standaarden() -> None:
    toewijzing = _keys(berichttype="JW301", values=frozenset({("ToewijzingNummer", "7")}))
    start = _keys(berichttype="JW305", zender=AGB_A, ontvanger=GEMEENTECODE, values=toewijzing.values)
    assert [link.relation for link in relate((1, toewijzing), (2, start))] == [Relation.START]
    assert relate((1, toewijzing), (2, _keys(**{**start.__dict__, "aanbieder": AGB_B}))) == []
    assert relate((1, toewijzing), (2, _keys(**{**start.__dict__, "gemeentecode": "0599"}))) == []
    assert relate((1, toewijzing), (2, _keys(**{**start.__dict__, "berichttype": "WMO305"}))) == []
    # A Fo01 answers only a message that went the other way.
    fo01 = _keys(
        berichtcode="Fo01", referentienummer="F1", cross_refnummer="R1", zender=AGB_A, ontvanger=GEMEENTECODE
    )
    assert [link.relation for link in relate((1, toewijzing), (2, fo01))] == [Relation.FOUT]
    same_way = _keys(**{**fo01.__dict__, "zender": GEMEENTECODE, "ontvanger": AGB_A})
    assert relate((1, toewijzing), (2, same_way)) == []
