"""``ggk-ebms routes``, ``mailbox``, ``submit``, ``messages retry`` and the outbox, through CliRunner."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.delivery.submit import scan_outbox
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.stuf.envelope import parse_envelope
from tests.cli_support import invoke, settings_file
from tests.conftest import require_shared
from tests.test_delivery_worker import envelope, payload, receive

ROUTES = """[endpoint]
gemeentecodes = ["0363", "0384"]

[[sender]]
id = "00000099000001000000"
gemeentecodes = ["*"]

[[route]]
name = "amsterdam-wmo"
gemeentecode = "0363"
berichttype = "WMO305"
target = { type = "mailbox" }

[[route]]
name = "rest"
gemeentecode = "*"
berichttype = "*"
target = { type = "directory", path = "in" }
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return settings_file(
        tmp_path,
        f'outbox_dir = "{tmp_path / "outbox"}"\n'
        f'stuf_applicatie = "Wmo Zaaksysteem"\nserved_gemeentecodes = ["0363", "0384"]\n',
    )


def run(config: Path, *args: str) -> Result:
    return invoke(config, *args)


def database(config: Path) -> Database:
    db = Database(f"sqlite:///{config.parent / 'var' / 'ggk-ebms.db'}")
    db.upgrade()
    return db


def test_routes_import_list_test(config: Path, tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES, encoding="utf-8")
    result = run(config, "routes", "import", str(routes))
    assert result.exit_code == 0, result.output
    assert "2 route(s)" in result.output
    listing = run(config, "routes", "list")
    assert "amsterdam-wmo" in listing.output and "mailbox" in listing.output
    tested = run(config, "routes", "test", "--gemeentecode", "0363", "--berichttype", "WMO305")
    assert tested.exit_code == 0
    assert (
        "route amsterdam-wmo matched" in tested.output and "route rest (*/*) less specific" in tested.output
    )
    refused = run(config, "routes", "test", "--gemeentecode", "0599", "--berichttype", "WMO305")
    assert refused.exit_code == 1 and "StUF010" in refused.output
    sender = run(
        config, "routes", "test", "--gemeentecode", "0384", "--berichttype", "JW301", "--sender", "x"
    )
    assert sender.exit_code == 1 and "StUF052" in sender.output


def test_routes_import_refuses_a_bad_file_and_keeps_the_old_table(config: Path, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(ROUTES, encoding="utf-8")
    bad.write_text(ROUTES.replace('berichttype = "WMO305"', 'berichttype = "WMO399"'), encoding="utf-8")
    assert run(config, "routes", "import", str(good)).exit_code == 0
    result = run(config, "routes", "import", str(bad))
    assert result.exit_code == 1
    assert "bad.toml line 11" in result.output and "WMO399" in result.output
    assert "from good.toml" in run(config, "routes", "list").output


def test_mailbox_list_and_fetch(config: Path, tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES, encoding="utf-8")
    run(config, "routes", "import", str(routes))
    run(config, "db", "upgrade")
    db = database(config)
    from ggk_ebms.config import load

    settings = load(config)
    pk = receive(
        db,
        envelope("0363"),
        cpa_id="ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_osb-rm-1",
        deliver=True,
    )
    DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator()).run_once()
    db.dispose()
    listing = run(config, "mailbox", "list", "--gemeentecode", "0363")
    assert "WMO305" in listing.output and "no" in listing.output
    out = tmp_path / "fetched.xml"
    fetched = run(config, "mailbox", "fetch", "1", "-o", str(out))
    assert fetched.exit_code == 0, fetched.output
    assert out.read_bytes() == payload("0363")
    assert "mailbox is empty" in run(config, "mailbox", "list", "--unread").output
    db = database(config)
    assert MessageStore(db).get(pk).status == "Forwarded"
    db.dispose()


def test_submit_wraps_a_heen_payload_and_retry_refuses_a_queued_message(config: Path) -> None:
    example = require_shared("spec", "istandaarden", "iwmo_3_2", "berichten", "WMO301.xml")
    run(config, "cpa", "import", str(config.parent / "cpa" / "dev-osb-rm.xml"))
    result = run(config, "submit", str(example))
    assert result.exit_code == 0, result.output
    assert "queued Di01 WMO301" in result.output and "from 0384 to 42420001" in result.output
    db = database(config)
    [sent] = MessageStore(db).list(direction="out", kind="business")
    stuf = parse_envelope(MessageStore(db).parts(sent.pk)[0].data)
    db.dispose()
    assert stuf.stuurgegevens.zender.applicatie == "Wmo Zaaksysteem"
    assert stuf.stuurgegevens.ontvanger.applicatie == "GGk"
    again = run(config, "messages", "retry", str(sent.pk))
    assert again.exit_code == 1 and "still queued" in again.output


def test_submit_refuses_what_a_gemeente_does_not_send(config: Path) -> None:
    example = require_shared("spec", "istandaarden", "iwmo_3_2", "berichten", "WMO305.xml")
    result = run(config, "submit", str(example))
    assert result.exit_code == 1
    assert "is sent by a aanbieder, not by a gemeente" in result.output


def test_outbox_moves_files_to_done_and_failed(config: Path) -> None:
    from ggk_ebms.config import load

    settings = load(config)
    run(config, "cpa", "import", str(config.parent / "cpa" / "dev-osb-rm.xml"))
    outbox = settings.outbox_dir
    outbox.mkdir(parents=True)
    shutil.copy(require_shared("spec", "istandaarden", "ijw_3_2", "berichten", "JW319.xml"), outbox / "a.xml")
    (outbox / "b.xml").write_bytes(b"not xml at all")
    db = database(config)

    class Clock:
        def now(self) -> datetime:
            return datetime.now(UTC)

    assert scan_outbox(settings, db, ids=UuidIdGenerator(), clock=Clock()) == 2
    db.dispose()
    assert (outbox / "done" / "a.xml").is_file()
    assert "queued Di01 JW319" in (outbox / "done" / "a.xml.reason.txt").read_text()
    assert (outbox / "failed" / "b.xml").is_file()
    assert "not XML" in (outbox / "failed" / "b.xml.reason.txt").read_text()
    assert not list(outbox.glob("*.xml"))


def test_outbox_takes_upper_case_xml_refuses_other_files_and_zip_without_aanleveren(config: Path) -> None:
    from ggk_ebms.config import load

    settings = load(config)
    run(config, "cpa", "import", str(config.parent / "cpa" / "dev-osb-rm.xml"))
    outbox = settings.outbox_dir
    outbox.mkdir(parents=True)
    shutil.copy(require_shared("spec", "istandaarden", "ijw_3_2", "berichten", "JW319.xml"), outbox / "A.XML")
    (outbox / "notes.txt").write_text("niet voor het GGk", encoding="utf-8")
    (outbox / "batch.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty ZIP archive
    (outbox / ".half-written.xml").write_bytes(b"<")
    db = database(config)

    class Clock:
        def now(self) -> datetime:
            return datetime.now(UTC)

    assert scan_outbox(settings, db, ids=UuidIdGenerator(), clock=Clock()) == 3
    assert (outbox / "done" / "A.XML").is_file()
    assert "queued Di01 JW319" in (outbox / "done" / "A.XML.reason.txt").read_text()
    assert (
        "takes .xml (or .XML) files and .zip batches only"
        in (outbox / "failed" / "notes.txt.reason.txt").read_text()
    )
    try:
        import ggk_ebms.services.aanleveren  # noqa: F401
    except ModuleNotFoundError:
        assert (
            "ZIP batches need the aanleveren service"
            in (outbox / "failed" / "batch.zip.reason.txt").read_text()
        )
    assert (outbox / ".half-written.xml").is_file()  # dot-files are still being written
    # The operator takes the file out of failed/, fixes it and puts it back as an .xml: the stale
    # reason file goes, and the file is judged afresh.
    shutil.move(outbox / "failed" / "notes.txt", outbox / "notes.xml")
    shutil.copy(
        require_shared("spec", "istandaarden", "ijw_3_2", "berichten", "JW319.xml"), outbox / "notes.xml"
    )
    assert scan_outbox(settings, db, ids=UuidIdGenerator(), clock=Clock()) == 1
    db.dispose()
    assert not (outbox / "failed" / "notes.txt.reason.txt").exists()
    assert (outbox / "done" / "notes.xml").is_file()


def test_outbox_zip_for_a_portaal_exchange_is_not_sent_automatically(config: Path, tmp_path: Path) -> None:
    import zipfile

    from ggk_ebms.config import load
    from ggk_ebms.store.exchanges import ExchangeStore
    from ggk_ebms.store.messages import MessageStore

    settings = load(config)
    run(config, "cpa", "import", str(config.parent / "cpa" / "dev-osb-rm.xml"))
    outbox = settings.outbox_dir
    outbox.mkdir(parents=True)
    example = require_shared("spec", "istandaarden", "ijw_3_2", "berichten", "JW319.xml")
    with zipfile.ZipFile(outbox / "batch.zip", "w") as archive:
        archive.write(example, "JW319.xml")
    db = database(config)
    ExchangeStore(db).set("JW319", {"via": "Portaal"})

    class Clock:
        def now(self) -> datetime:
            return datetime.now(UTC)

    scan_outbox(settings, db, ids=UuidIdGenerator(), clock=Clock())
    sent = [m for m in MessageStore(db).list(direction="out") if m.kind == "business"]
    db.dispose()
    assert sent == []
    verslag = (outbox / "failed" / "batch.zip.verslag.json").read_text(encoding="utf-8")
    assert "Portaal" in verslag
