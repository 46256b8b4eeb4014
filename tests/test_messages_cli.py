"""``ggk-ebms messages list/show``: the productbeheerder's message log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from ggk_ebms.cli.main import cli
from ggk_ebms.lifecycle import Event
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart
from ggk_ebms.store.stuf import StufRecord

BSN = "999993653"


def _received(message_id: str, **changes: object) -> NewMessage:
    values: dict[str, object] = {
        "direction": "in",
        "message_id": message_id,
        "cpa_id": "cpa-1",
        "conversation_id": "conv-1",
        "from_party_id": "00000099000001000000",
        "from_party_type": "urn:osb:oin",
        "from_role": "GGk",
        "to_party_id": "00000099000003630000",
        "to_party_type": "urn:osb:oin",
        "to_role": "Gemeente",
        "service": "ggk:berichtenverkeer:1.0",
        "service_type": "urn:osb:services",
        "action": "envelopHeenbericht-ggk_Di01",
        "kind": "business",
        "timestamp": datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        "status": "Received",
        "content_digest": "d",
        "envelope": b"<env/>",
    }
    values.update(changes)
    return NewMessage(**values)  # type: ignore[arg-type]


@pytest.fixture
def env(db: Database, tmp_path: Path) -> dict[str, str]:
    store = MessageStore(db)
    store.receive(
        _received("m1@peer"),
        [NewPart("p1@peer", "application/xml", f"<Bsn>{BSN}</Bsn>".encode())],
        response=None,
        deliver=True,
        send_response_async=False,
    )
    store.receive(
        _received("m2@peer", status="Failed", status_reason="Value not found.", error_code="Inconsistent"),
        [],
        response=None,
        deliver=False,
        send_response_async=False,
    )
    return {"GGK_EBMS_DATABASE_URL": db.url, "GGK_EBMS_DATA_DIR": str(tmp_path)}


def test_list_shows_both_with_status(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["messages", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "m1@peer" in result.output
    assert "m2@peer" in result.output
    assert "Inconsistent" in result.output


def test_list_filters_by_status(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["messages", "list", "--status", "Failed"], env=env)
    assert result.exit_code == 0, result.output
    assert "m2@peer" in result.output
    assert "m1@peer" not in result.output


def test_show_by_message_id_lists_parts_without_payload(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["messages", "show", "m1@peer"], env=env)
    assert result.exit_code == 0, result.output
    assert "cid:p1@peer" in result.output
    assert "application/xml" in result.output
    assert BSN not in result.output  # payloads hold personal data: never printed


def test_show_writes_a_part_only_when_asked(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "part.xml"
    result = CliRunner().invoke(cli, ["messages", "show", "m1@peer", "--part", "1", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == f"<Bsn>{BSN}</Bsn>".encode()


def test_show_unknown_message_is_a_clear_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["messages", "show", "nope@peer"], env=env)
    assert result.exit_code == 1
    assert "no message nope@peer" in result.output


def test_a_di01_refused_by_a_fo01_shows_both_layers_and_its_history(
    db: Database, env: dict[str, str]
) -> None:
    store = MessageStore(db)
    now = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    ours = store.submit(
        _received("di01@gemeente", direction="out", status="Created", envelope=None),
        [],
        due_at=now,
        stuf=StufRecord(
            message_pk=0,
            direction="out",
            berichtcode="Di01",
            referentienummer="ref-1",
            zender="0363",
            ontvanger="12345678",
            berichttype="WMO301",
        ),
    )
    store.transition(ours, Event.ATTEMPT_STARTED, "attempt 1 started")
    store.transition(ours, Event.ACCEPTED, "Acknowledgment received")
    fo01 = store.receive(_received("fo01@peer"), [], response=None, deliver=False, send_response_async=False)
    store.business_transition(
        ours, Event.STUF_REFUSED, "Fo01 IB014: payload voldoet niet", "IB014", ref_pk=fo01.message_pk
    )

    listed = CliRunner().invoke(cli, ["messages", "list", "--status", "refused"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "di01@gemeente" in listed.output and "m1@peer" not in listed.output
    assert f"refused (IB014), message {fo01.message_pk}" in listed.output
    assert "Delivered" in listed.output  # the ebMS layer: the Acknowledgment came

    shown = CliRunner().invoke(cli, ["messages", "show", "di01@gemeente"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "business status" in shown.output and "refused (IB014)" in shown.output
    lines = shown.output.split("history:")[1].strip().splitlines()
    assert [line.split()[2:5] for line in lines] == [
        ["(new)", "->", "Created"],
        ["(new)", "->", "sent"],
        ["Created", "->", "Sending"],
        ["Sending", "->", "Delivered"],
        ["sent", "->", "refused"],
    ]
