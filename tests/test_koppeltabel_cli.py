"""``messages show/related/toewijzingen-zonder-start/declaraties-zonder-antwoord``: the koppeltabel
on the console, without identifier values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.clock import FixedClock
from ggk_ebms.store.db import Database
from tests.ketendata_support import CLIENTS, jw301, jw305, jw323
from tests.koppeltabel_support import Traffic, retour


def test_show_related_and_open_ends(db: Database, tmp_path: Path) -> None:
    # Traffic stored long ago: the open-ends commands use the real clock.
    clock = FixedClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    t = Traffic(db, clock)
    toewijzing = t.di01(jw301("T-1", CLIENTS[0], ["300200"]), "JW301", "out")
    retour_pk = t.du01(retour("JW302", "T-1"), "JW302", "in", answers=toewijzing)
    clock.advance(timedelta(hours=1))
    lonely = t.di01(jw301("T-2", CLIENTS[0], ["300300"]), "JW301", "out")
    start = t.di01(jw305("S-1", CLIENTS[0], "300200"), "JW305", "in")
    declaratie = t.di01(jw323("D-1"), "JW323", "in")
    env = {"GGK_EBMS_DATABASE_URL": db.url, "GGK_EBMS_DATA_DIR": str(tmp_path)}
    runner = CliRunner()

    shown = runner.invoke(cli, ["messages", "show", str(toewijzing)], env=env)
    assert shown.exit_code == 0, shown.output
    assert "koppeltabel" in shown.output
    assert f"{retour_pk}  in  JW302  retour on this message (via crossRefnummer)" in shown.output
    assert f"{start}  in  JW305  start zorg on this toewijzing (via ToewijzingNummer)" in shown.output
    assert "300200" not in shown.output  # the ToewijzingNummer itself is never shown

    as_json = runner.invoke(cli, ["messages", "show", t.message_ids[start], "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    koppel = json.loads(as_json.output)["koppeltabel"]
    assert [(k["id"], k["relation"], k["role"]) for k in koppel] == [(str(toewijzing), "start", "earlier")]

    related = runner.invoke(cli, ["messages", "related", str(declaratie), "--json"], env=env)
    assert related.exit_code == 0, related.output
    assert [r["id"] for r in json.loads(related.output)["related"]] == [str(toewijzing)]

    open_starts = runner.invoke(
        cli, ["messages", "toewijzingen-zonder-start", "--days", "10", "--json"], env=env
    )
    assert open_starts.exit_code == 0, open_starts.output
    assert [r["id"] for r in json.loads(open_starts.output)] == [str(lonely)]
    elsewhere = runner.invoke(
        cli, ["messages", "toewijzingen-zonder-start", "--gemeentecode", "0599", "--json"], env=env
    )
    assert json.loads(elsewhere.output) == []

    open_declaraties = runner.invoke(cli, ["messages", "declaraties-zonder-antwoord"], env=env)
    assert open_declaraties.exit_code == 0, open_declaraties.output
    lines = open_declaraties.output.splitlines()
    assert lines[0].startswith("id;MessageId;")
    assert [line.split(";")[0] for line in lines[1:]] == [str(declaratie)]
