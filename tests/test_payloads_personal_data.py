"""iStandaarden privacy elements, docs/rules.md: nothing we log
(reprs, findings, errors, validation texts) carries a BSN or name."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from conftest import require_shared
from ggk_ebms.clock import SequenceIdGenerator
from ggk_ebms.errors import StufError
from ggk_ebms.payloads.detect import check_against_envelope, detect
from ggk_ebms.payloads.validate import PayloadSchemas
from ggk_ebms.stuf.envelope import build_di01, parse_envelope
from ggk_ebms.stuf.model import Systeem

BSN = re.compile(rb"<((?:\w+:)?)Bsn>(\d{9})</")
ACHTERNAAM = re.compile(rb"<(?:\w+:)?Achternaam>([^<]+)</")


def test_no_bsn_or_name_in_anything_we_would_log() -> None:
    folder = require_shared("spec", "istandaarden")
    schemas = PayloadSchemas(folder)
    checked = 0
    for path in sorted(folder.glob("*/berichten/*.xml")):
        payload = path.read_bytes()
        secrets = {bsn.decode() for _, bsn in BSN.findall(payload)}
        secrets |= {naam.decode() for naam in ACHTERNAAM.findall(payload)}
        # a wrong BSN, so validation has something to say about client data
        broken = BSN.sub(rb"<\1Bsn>98076543</", payload, count=1)
        secrets.add("98076543")
        info = detect(payload)
        envelope = parse_envelope(
            build_di01(
                zender=Systeem("0363", "Zaaksysteem"),
                ontvanger=Systeem("42420001", "GGk"),
                functie=info.berichttype,
                payload=payload,
                ids=SequenceIdGenerator(),
                tijdstip=datetime(2026, 1, 1, tzinfo=UTC),
                functie_versie=1,
                functie_subversie=0,
            ).data
        )
        texts = [repr(envelope), str(envelope), repr(info), *envelope.warnings]
        texts += [repr(f) for f in check_against_envelope(info, envelope)]
        texts += schemas.validate(payload, info) + schemas.validate(broken, detect(broken))
        try:
            detect(payload.replace(b"<", b"<!", 1))
        except StufError as exc:
            texts.append(str(exc))
        for text in texts:
            for secret in secrets:
                assert secret not in text, (path.name, text)
        checked += 1
    assert checked == 46


def test_payload_repr_shows_size_and_hash_only() -> None:
    data = require_shared(
        "spec", "stuf-ggk", "constructed", "constructed_Di01_WMO301_iwmo3_2.xml"
    ).read_bytes()
    message = parse_envelope(data)
    assert message.payload is not None
    assert "999900006" in message.payload.data.decode()
    text = repr(message)
    assert "999900006" not in text
    assert f"bytes={len(message.payload.data)}" in text
